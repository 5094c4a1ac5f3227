"""The engine: training configuration, runtime (device, precision, memory format), the training step and
loop, DDP, evaluation, logs and the model benchmark."""
