"""The training configuration: one flat dataclass, read from params.yaml sections, CLI flags and notebooks.

Sources are merged in order, later ones winning: the defaults (the paper's recipe), each `params.yaml`
section named (a dotted path such as `train` or `models.hg`), then explicit overrides (`--lr 1e-3` on the
command line, a dict from a notebook's parameters). Every value is checked and coerced here, and each
error names the key and what it allows, so the training loop only ever sees a valid configuration.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hgstudy.errors import UserError
from hgstudy.model import HourglassConfig

# Joints per dataset; `hgstudy.data.registry.register_dataset` adds entries.
DATASET_JOINTS = {"mannequin": 16, "mpii": 16, "flic": 11}


def _meta(kind: str, help: str, allowed=None, minimum=None) -> dict:
    """A field's kind (how `_coerce` checks it), its help text, allowed choices and minimum."""
    return {"kind": kind, "help": help, "allowed": allowed, "minimum": minimum}


@dataclass
class TrainConfig:
    # data
    dataset: str = field(default="mannequin",
        metadata=_meta("dataset", "training and validation data (mannequin|mpii|flic)"))
    data_root: str = field(default="data", metadata=_meta("str", "folder of `hgstudy download` (mpii, flic)"))
    data_options: dict = field(default_factory=dict,
        metadata=_meta("dict", "extra dataset arguments (a value {train: .., val: ..} differs per split)"))
    augment: str = field(default="paper",
        metadata=_meta("choice", "training augmentation", allowed=("paper", "official", "none")))
    sigma: float = field(default=1.0, metadata=_meta("float", "target Gaussian sigma in heatmap pixels", minimum=1e-6))
    # model
    stacks: int = field(default=8, metadata=_meta("int", "hourglasses", minimum=1))
    modules: int = field(default=1, metadata=_meta("int", "residual modules per position", minimum=1))
    features: int = field(default=256, metadata=_meta("int", "channels inside the hourglasses", minimum=2))
    depth: int = field(default=4, metadata=_meta("int", "2x poolings per hourglass", minimum=1))
    input_res: int = field(default=256, metadata=_meta("int", "input crop side in pixels", minimum=16))
    stem_channels: list | None = field(default=None,
        metadata=_meta("pair", "stem channels [c1, c2]; null = the paper's [64, 128]"))
    decoder_heads: bool = field(default=False,
        metadata=_meta("bool", "HG-Int: extra heatmap supervision inside the decoder"))
    # supervision
    supervision: str = field(default="all",
        metadata=_meta("choice", "which stacks' outputs the loss uses", allowed=("all", "last", "weights")))
    stack_weights: list | None = field(default=None,
        metadata=_meta("floats", "per-stack loss weights (supervision: weights)"))
    decoder_weight: float = field(default=1.0,
        metadata=_meta("float", "weight of each HG-Int decoder loss", minimum=0.0))
    # optimiser and schedule
    optimizer: str = field(default="rmsprop",
        metadata=_meta("choice", "paper: rmsprop; the PyTorch port: adam", allowed=("rmsprop", "adam")))
    lr: float = field(default=2.5e-4, metadata=_meta("float", "learning rate", minimum=0.0))
    weight_decay: float = field(default=0.0, metadata=_meta("float", "L2 weight decay", minimum=0.0))
    schedule: str = field(default="plateau",
        metadata=_meta("choice", "learning-rate drops", allowed=("plateau", "steps", "constant")))
    lr_drop: float = field(default=0.2, metadata=_meta("float", "factor applied at each drop", minimum=0.0))
    lr_steps: list = field(default_factory=list, metadata=_meta("ints", "steps at which to drop (schedule: steps)"))
    plateau_patience: int = field(default=5,
        metadata=_meta("int", "validations without improvement before a drop", minimum=0))
    plateau_min_delta: float = field(default=0.1,
        metadata=_meta("float", "improvement in PCKh points that counts", minimum=0.0))
    # run
    batch_size: int = field(default=6, metadata=_meta("int", "global batch (split over torchrun processes)", minimum=1))
    steps: int = field(default=800_000, metadata=_meta("int", "optimiser steps in all (can grow on resume)", minimum=1))
    seed: int = field(default=0, metadata=_meta("int", "model init, data order and augmentation", minimum=0))
    precision: str = field(default="auto",
        metadata=_meta("choice", "auto = bf16 where supported", allowed=("auto", "fp32", "bf16")))
    channels_last: object = field(default="auto",
        metadata=_meta("auto_bool", "channels_last memory format (auto: on)"))
    compile: bool = field(default=False, metadata=_meta("bool", "torch.compile the model"))
    device: str = field(default="auto", metadata=_meta("choice", "where to train", allowed=("auto", "cpu", "cuda")))
    sync_bn: bool = field(default=True,
        metadata=_meta("bool", "BatchNorm statistics over the global batch under torchrun"))
    num_workers: int = field(default=0, metadata=_meta("int", "data-loading processes per training process", minimum=0))
    val_every: int = field(default=8000, metadata=_meta("int", "validate every N steps (and at the end)", minimum=1))
    val_samples: int | None = field(default=None,
        metadata=_meta("opt_int", "validate on the first N people (null = all)", minimum=1))
    val_flip: bool = field(default=False, metadata=_meta("bool", "flip test during training-time validation"))
    checkpoint_every: int = field(default=1000,
        metadata=_meta("int", "write a checkpoint every N steps (and at the end)", minimum=1))
    log_every: int = field(default=50, metadata=_meta("int", "write a train.tsv row every N steps", minimum=1))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f, getattr(self, f.name)))
        if self.supervision == "weights":
            if self.stack_weights is None or len(self.stack_weights) != self.stacks:
                raise UserError(f"stack_weights: supervision 'weights' needs {self.stacks} weights (one per stack), "
                                f"got {self.stack_weights!r}")
        elif self.stack_weights is not None:
            raise UserError(f"stack_weights: given, but supervision is {self.supervision!r}; set supervision: weights")
        if self.schedule == "steps" and not self.lr_steps:
            raise UserError("lr_steps: schedule 'steps' needs a non-empty list of steps")
        self.model_config()  # the model's own checks (divisibility, decoder depth), named by key

    @property
    def joints(self) -> int:
        return DATASET_JOINTS.get(self.dataset, 16)

    def model_config(self) -> HourglassConfig:
        return HourglassConfig(stacks=self.stacks, modules=self.modules, features=self.features,
                               joints=self.joints, depth=self.depth, input_res=self.input_res,
                               stem_channels=tuple(self.stem_channels) if self.stem_channels else None,
                               decoder_heads=self.decoder_heads)

    def loss_weights(self) -> list[float]:
        if self.supervision == "all":
            return [1.0] * self.stacks
        if self.supervision == "last":
            return [0.0] * (self.stacks - 1) + [1.0]
        return list(self.stack_weights)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "configuration") -> TrainConfig:
        if not isinstance(values, dict):
            raise UserError(f"{source}: expected a mapping of keys to values, got {type(values).__name__}")
        unknown = [k for k in values if k not in FIELDS]
        if unknown:
            hints = [f"{k!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(str(k), FIELDS, 1))
                                 else "") for k in unknown]
            raise UserError(f"{source}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(FIELDS)}")
        return cls(**values)

    def identity(self) -> dict:
        """The values that decide a run's results (what a checkpoint must match to be resumed)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUN_ONLY}

    def differences(self, other: dict) -> list[str]:
        """'key: checkpoint X, now Y' for each identity value that differs from a stored configuration."""
        mine, theirs = self.identity(), {k: v for k, v in other.items() if k not in RUN_ONLY}
        return [f"{k}: checkpoint {theirs.get(k, '<absent>')!r}, now {mine.get(k, '<absent>')!r}"
                for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]


FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
# Values that change how fast or where a run goes, not where it ends up (steps may grow to extend a run).
RUN_ONLY = frozenset({"data_root", "steps", "device", "compile", "num_workers", "checkpoint_every", "log_every"})


def _coerce(f: dataclasses.Field, value):
    """Check one value against its field's kind; YAML and the CLI give strings for some numbers (1e-3)."""
    kind, allowed, minimum = f.metadata["kind"], f.metadata["allowed"], f.metadata["minimum"]
    name = f.name

    def bad(expected):
        return UserError(f"{name}: expected {expected}, got {value!r}")

    def number(v, integer: bool):
        if isinstance(v, bool):
            raise bad("a number")
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise bad("an integer" if integer else "a number") from None
        if integer:
            if not isinstance(v, (int, float)) or v != int(v):
                raise bad("an integer")
            v = int(v)
        elif not isinstance(v, (int, float)):
            raise bad("a number")
        if minimum is not None and v < minimum:
            raise UserError(f"{name}: must be at least {minimum}, got {v!r}")
        return v if integer else float(v)

    if kind in ("opt_int", "pair", "floats") and value in (None, "null", "none", "None"):
        return None
    if kind == "dataset":
        if value not in DATASET_JOINTS:
            raise UserError(f"{name}: must be one of {', '.join(DATASET_JOINTS)}, got {value!r}")
        return value
    if kind == "choice":
        if value not in allowed:
            raise UserError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, (str, Path)):
            raise bad("a string")
        return str(value)
    if kind in ("int", "opt_int"):
        return number(value, True)
    if kind == "float":
        return number(value, False)
    if kind in ("bool", "auto_bool"):
        if kind == "auto_bool" and value == "auto":
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise bad("true or false" + (" or auto" if kind == "auto_bool" else ""))
        return value
    if kind == "dict":
        if not isinstance(value, dict):
            raise bad("a mapping")
        return dict(value)
    # lists
    if not isinstance(value, (list, tuple)):
        raise bad("a list")
    if kind == "pair":
        if len(value) != 2:
            raise bad("two integers")
        return [number(v, True) for v in value]
    return [number(v, kind == "ints") for v in value]


# ----------------------------------------------------------------------------------------------- loading
def read_params(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file {path} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"params file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"params file {path}: expected a mapping of sections at the top level")
    return data


def params_section(params: dict, section: str, source: str = "params") -> dict:
    """The mapping at a dotted path (`models.hg`) of a params dict."""
    node = params
    for i, part in enumerate(section.split(".")):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(section.split(".")[:i]) or "the top level"
            have = sorted(node) if isinstance(node, dict) else []
            raise UserError(f"{source}: no section {section!r} (no key {part!r} under {where}; found {have})")
        node = node[part]
    if not isinstance(node, dict):
        raise UserError(f"{source}: section {section!r} is not a mapping of keys to values")
    return node


def load_config(params=None, sections=(), overrides: dict | None = None) -> TrainConfig:
    """Defaults, then each params section in order, then the overrides (None values are ignored)."""
    values: dict = {}
    if sections and params is None:
        raise UserError("sections were named without a params file")
    if params is not None:
        data = params if isinstance(params, dict) else read_params(params)
        source = "params" if isinstance(params, dict) else str(params)
        for section in sections:
            section_values = params_section(data, section, source)
            TrainConfig.from_dict({**values, **section_values}, f"{source} section {section!r}")
            values.update(section_values)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return TrainConfig.from_dict(values)


def add_config_arguments(parser) -> None:
    """--params, --section and one --<key> flag per configuration field (values parsed as YAML)."""
    parser.add_argument("--params", help="YAML file with configuration sections (e.g. params.yaml)")
    parser.add_argument("--section", action="append", default=[],
                        help="dotted section of --params to apply (repeatable, later ones win), e.g. train")
    group = parser.add_argument_group("configuration (override params; values are YAML: 1e-3, [1, 2], true)")
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f.metadata["help"] + (f" ({'|'.join(f.metadata['allowed'])})" if f.metadata["allowed"] else "")
        group.add_argument("--" + f.name.replace("_", "-"), dest="cfg_" + f.name, type=_yaml_value, default=None,
                           metavar="V", help=f"{help_text}; default {default!r}")


def _yaml_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def config_from_args(args) -> TrainConfig:
    overrides = {name: getattr(args, "cfg_" + name) for name in FIELDS}
    return load_config(args.params, args.section, overrides)
