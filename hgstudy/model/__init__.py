"""The network: the stacked hourglass and its configuration, checkpoints, size counts, imported weights."""
