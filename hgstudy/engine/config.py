"""The training configuration: one flat frozen dataclass, read from params.yaml sections, CLI flags and notebooks.

Sources are merged in order, later ones winning: the defaults (the paper's recipe), each `params.yaml`
section named (a dotted path such as `profiles.cpu.train` or `models.hg`), then explicit overrides
(`--lr 1e-3` on the command line, a dict from a notebook's parameters). Every value is checked where it comes
from (`hgstudy.core.fields`), so an error names its full path (`profiles.cpu.train.lr: must be greater than
0`), and the training loop only ever sees a valid configuration. The model's fields are `ModelFields`'.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from hgstudy.core.errors import UserError
from hgstudy.core.fields import (
    add_arguments,
    arguments_given,
    check_fields,
    check_mapping,
    params_section,
    read_params,
    setting,
)
from hgstudy.datasets import DATASETS, dataset_spec
from hgstudy.engine.runtime import Device, Precision
from hgstudy.model.network import HourglassConfig, ModelFields

DatasetName = Literal[tuple(DATASETS)]


@dataclass(frozen=True)
class TrainConfig(ModelFields):
    # data
    dataset: DatasetName = setting("mannequin", "training and validation data")
    data_root: str = setting("data", "folder of `hgstudy download` (mpii, flic)")
    data_options: dict = setting(help="extra dataset arguments (a value {train: .., val: ..} differs per split)",
                                 default_factory=dict)
    augment: Literal["paper", "official", "none"] = setting("paper", "training augmentation")
    sigma: float = setting(1.0, "target Gaussian sigma in heatmap pixels", above=0.0, maximum=64.0)
    # supervision
    supervision: Literal["all", "last", "weights"] = setting("all", "which stacks' outputs the loss uses")
    stack_weights: list[float] | None = setting(None, "per-stack loss weights (supervision: weights)", minimum=0.0)
    decoder_weight: float = setting(1.0, "weight of each HG-Int decoder loss", minimum=0.0)
    # optimiser and schedule
    optimizer: Literal["rmsprop", "adam", "sgd"] = setting("rmsprop", "paper: rmsprop; the PyTorch port: adam; "
                                                           "sgd: Nesterov, momentum 0.9")
    lr: float = setting(2.5e-4, "learning rate", above=0.0, maximum=10.0)
    weight_decay: float = setting(0.0, "L2 weight decay", minimum=0.0, maximum=1.0)
    schedule: Literal["plateau", "steps", "constant", "linear"] = setting(
        "plateau", "learning-rate drops; linear: down to zero at the last step (`steps` decides where)")
    warmup: int = setting(0, "steps over which the learning rate ramps up to lr (0: none)", minimum=0)
    lr_drop: float = setting(0.2, "factor applied at each drop", above=0.0, maximum=1.0)
    lr_steps: list[int] = setting(help="steps at which to drop (schedule: steps)", minimum=1, default_factory=list)
    plateau_patience: int = setting(5, "validations without improvement before a drop", minimum=0)
    plateau_min_delta: float = setting(0.1, "improvement in PCKh points that counts", minimum=0.0)
    # run
    batch_size: int = setting(6, "global batch (split over torchrun processes)", minimum=1, maximum=65536)
    steps: int = setting(800_000, "optimiser steps in all (can grow on resume)", minimum=1, maximum=10**9)
    seed: int = setting(0, "model init, data order and augmentation", minimum=0, maximum=2**31 - 1)
    precision: Precision = setting("auto", "auto = the fastest correct precision here")
    channels_last: bool | Literal["auto"] = setting("auto", "channels_last memory format (auto: where faster)")
    compile: bool = setting(False, "torch.compile the training step")
    device: Device = setting("auto", "where to train")
    sync_bn: bool = setting(True, "BatchNorm statistics over the global batch under torchrun")
    num_workers: int | Literal["auto"] = setting("auto", "data-loading processes per training process (auto: "
                                                 "engine.runtime.resolve_loading)", minimum=0, maximum=256)
    val_every: int = setting(8000, "validate every N steps (and at the end)", minimum=1)
    val_samples: int | None = setting(None, "validate on the first N people (null = all)", minimum=1)
    val_flip: bool = setting(False, "flip test during training-time validation")
    ema: float = setting(0.0, "decay of an exponential moving average of the weights, which validation, model.pt "
                         "and evaluation then use (0: none; the paper: none)", minimum=0.0, maximum=0.99999)
    checkpoint_every: int = setting(1000, "write a checkpoint every N steps (and at the end)", minimum=1)
    log_every: int = setting(50, "write a train.tsv row every N steps", minimum=1)

    def __post_init__(self):
        check_fields(self)
        if self.supervision == "weights":
            if self.stack_weights is None or len(self.stack_weights) != self.stacks:
                raise UserError(f"stack_weights: supervision 'weights' needs {self.stacks} weights (one per stack), "
                                f"got {self.stack_weights!r}")
            if not any(self.stack_weights):
                raise UserError("stack_weights: at least one weight must be positive, or nothing is trained")
        elif self.stack_weights is not None:
            raise UserError(f"stack_weights: given, but supervision is {self.supervision!r}; set supervision: weights")
        if self.schedule == "steps" and not self.lr_steps:
            raise UserError("lr_steps: schedule 'steps' needs a non-empty list of steps")
        if self.schedule == "linear" and self.warmup >= self.steps:
            raise UserError(f"warmup: {self.warmup} steps leave none of the {self.steps} to decay over")
        if any(b <= a for a, b in zip(self.lr_steps, self.lr_steps[1:])):
            raise UserError(f"lr_steps: must be increasing, got {self.lr_steps}")
        self.check_model("model")  # the model's own checks (divisibility, decoder depth), named by key

    @property
    def joints(self) -> int:
        return dataset_spec(self.dataset).joints

    def model_config(self) -> HourglassConfig:
        return HourglassConfig(**self.model_fields(), joints=self.joints)

    def stack_loss_weights(self) -> list[float]:
        """The loss weight of each stack's output (0: unsupervised)."""
        if self.supervision == "all":
            return [1.0] * self.stacks
        if self.supervision == "last":
            return [0.0] * (self.stacks - 1) + [1.0]
        return list(self.stack_weights)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "configuration") -> TrainConfig:
        return cls(**check_mapping(cls, values, source))

    def run_only(self) -> frozenset:
        """RUN_ONLY, less `steps` where the schedule ends at the last step (linear): there it decides results."""
        return RUN_ONLY - {"steps"} if self.schedule == "linear" else RUN_ONLY

    def identity(self) -> dict:
        """The values that decide a run's results (what a checkpoint must match to be resumed)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.run_only()}

    def differences(self, other: dict) -> list[str]:
        """'key: checkpoint X, now Y' for each identity value that differs from a stored configuration; a key
        the stored configuration lacks (written before the setting existed) counts as its default."""
        defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                    for f in dataclasses.fields(self)}
        theirs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in {**defaults, **other}.items()
                  if k not in self.run_only()}
        mine = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.identity().items()}
        return [f"{k}: checkpoint {theirs.get(k, '<absent>')!r}, now {mine.get(k, '<absent>')!r}"
                for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]


# Values that change how fast or where a run goes, not where it ends up (steps may grow to extend a run).
RUN_ONLY = frozenset({"data_root", "steps", "device", "compile", "num_workers", "checkpoint_every", "log_every",
                      "channels_last"})


# ----------------------------------------------------------------------------------------------- loading
def load_config(params=None, sections=(), overrides: dict | None = None, prefix: str = "overrides.") -> TrainConfig:
    """Defaults, then each params section in order, then the overrides (None values are ignored).

    Each value is checked where it comes from: an error names `<section>.<key>` or `<prefix><key>`.
    """
    values: dict = {}
    origin: dict = {}  # key -> the prefix of the source that set it last, to name it in a cross-key error
    if sections and params is None:
        raise UserError("sections were named without a params file")
    if params is not None:
        data = params if isinstance(params, dict) else read_params(params)
        source = "params" if isinstance(params, dict) else str(params)
        for section in sections:
            values.update(check_mapping(TrainConfig, params_section(data, section, source),
                                        f"{source} section {section!r}", prefix=f"{section}."))
            origin.update(dict.fromkeys(params_section(data, section, source), f"{section}."))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(check_mapping(TrainConfig, given, prefix.rstrip(".") or "overrides", prefix=prefix))
    origin.update(dict.fromkeys(given, prefix))
    try:
        return TrainConfig(**values)
    except UserError as exc:  # "lr_steps: must be increasing" -> "models.hg.lr_steps: must be increasing"
        key = str(exc).split(":", 1)[0]
        if key in origin:
            raise UserError(origin[key] + str(exc)) from exc
        raise


def add_config_arguments(parser) -> None:
    """--params, --section and one --<key> flag per configuration field (values parsed as YAML)."""
    parser.add_argument("--params", help="YAML file with configuration sections (e.g. params.yaml)")
    parser.add_argument("--section", action="append", default=[],
                        help="dotted section of --params to apply (repeatable, later ones win), e.g. models.hg")
    add_arguments(parser, TrainConfig, title="configuration (overrides params; values are YAML: 1e-3, [1, 2], true)")


def config_from_args(args) -> TrainConfig:
    return load_config(args.params, args.section, arguments_given(args, TrainConfig), prefix="--")
