"""Typed settings: dataclass fields that declare their type, range and help once.

A settings class (the model's `ModelFields`, the engine's `TrainConfig`) is a frozen dataclass whose fields are
made with `setting(...)`. Its type annotation says what a value may be (int, float, bool, str, a Literal of
choices, `X | None`, list[int], list[float], tuple[int, int], dict); `check_value` checks and coerces one value
from YAML, the command line or a notebook, and every error names the value's full path (`models.s8x1.stacks`,
`profiles.cpu.train.lr`). Numbers must be finite; ranges are inclusive (`minimum`, `maximum`) or exclusive
(`above`). `read_params` / `params_section` read YAML files of sections; `add_arguments` /
`arguments_given` turn the same fields into command-line flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path

import yaml

from hgstudy.core.errors import UserError


def setting(default=dataclasses.MISSING, help: str = "", *, minimum=None, maximum=None, above=None,
            default_factory=dataclasses.MISSING):
    """A dataclass field with its help text and range (applied to each element of a list or tuple)."""
    meta = {"help": help, "minimum": minimum, "maximum": maximum, "above": above}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def field_types(cls) -> dict[str, object]:
    return typing.get_type_hints(cls)


_NOUNS = {int: "integer", float: "number", bool: "boolean", str: "string", dict: "mapping"}


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " or ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return f"a list of {_NOUNS.get(args[0], args[0])}s"
    if origin is tuple:
        count = {2: "two", 3: "three"}.get(len(args), str(len(args)))
        return f"{count} {_NOUNS.get(args[0], args[0])}s"
    if tp is bool:
        return "true or false"
    return {int: "an integer", float: "a number", str: "a string", dict: "a mapping"}.get(tp, str(tp))


def check_value(name: str, tp, value, meta: dict | None = None):
    """`value` checked against type `tp` and the range in `meta`, coerced (e.g. "1e-3" -> 0.001)."""
    meta = meta or {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad(extra: str = ""):
        return UserError(f"{name}: expected {_describe(tp)}{extra}, got {value!r}")

    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return check_value(name, option, value, meta)
            except UserError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else bad()
    if origin is typing.Literal:
        if any(type(value) is type(a) and value == a for a in args):  # True is not 1, "1" is not 1
            return value
        raise UserError(f"{name}: must be one of {', '.join(map(str, args))}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise bad()
        if origin is tuple and len(value) != len(args):
            raise bad()
        element = args[0]
        items = [check_value(f"{name}[{i}]", element, v, meta) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp in (int, float):
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad() from None
        if not isinstance(value, int | float):
            raise bad()
        if not math.isfinite(value):
            raise UserError(f"{name}: must be a finite number, got {value!r}")
        if tp is int:
            if value != int(value):
                raise bad()
            value = int(value)
        else:
            value = float(value)
        return _in_range(name, value, meta)
    if tp is str:
        if not isinstance(value, str | Path):
            raise bad()
        return str(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise bad()
        return dict(value)
    raise TypeError(f"{name}: settings of type {tp} are not supported")


def _in_range(name: str, value, meta: dict):
    low, high, above = meta.get("minimum"), meta.get("maximum"), meta.get("above")
    if low is not None and value < low:
        raise UserError(f"{name}: must be at least {low}, got {value!r}")
    if above is not None and value <= above:
        raise UserError(f"{name}: must be greater than {above}, got {value!r}")
    if high is not None and value > high:
        raise UserError(f"{name}: must be at most {high}, got {value!r}")
    return value


def check_fields(obj, prefix: str = "") -> None:
    """Check and coerce every field of a (frozen) settings dataclass instance in place."""
    hints = field_types(type(obj))
    for f in dataclasses.fields(obj):
        value = check_value(prefix + f.name, hints[f.name], getattr(obj, f.name), dict(f.metadata))
        object.__setattr__(obj, f.name, value)


def check_mapping(cls, values, source: str, prefix: str = "") -> dict:
    """The entries of `values` (a section of a params file, overrides) checked against `cls`'s fields.

    Errors name `prefix + key` (e.g. `profiles.cpu.train.lr`); unknown keys are refused with a suggestion.
    """
    if not isinstance(values, dict):
        raise UserError(f"{source}: expected a mapping of keys to values, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), list(fields), 1)
            hints.append(repr(key) + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UserError(f"{source}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(fields)}")
    hints = field_types(cls)
    return {k: check_value(prefix + k, hints[k], v, dict(fields[k].metadata)) for k, v in values.items()}


# ------------------------------------------------------------------------------------------- params files
class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error, not silently the last."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class explains it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice in one mapping",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep)


def read_params(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file {path} not found")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeys) or {}  # a SafeLoader: plain data only
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


# ------------------------------------------------------------------------------------------ command line
def yaml_value(text: str):
    """A flag's value read as YAML (1e-3, [1, 2], true, null); text that is not YAML stays text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def add_arguments(parser, cls, exclude=(), title: str | None = None) -> None:
    """One `--name` flag per field of `cls` (values are YAML; a bool flag alone means true)."""
    group = parser.add_argument_group(title or f"{cls.__name__} (values are YAML: 1e-3, [16, 32], true)")
    hints = field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = typing.get_args(hints[f.name]) if typing.get_origin(hints[f.name]) is typing.Literal else None
        help_text = f.metadata.get("help", "") + (f" ({'|'.join(map(str, kind))})" if kind else "")
        flag = "--" + f.name.replace("_", "-")
        extra = {"nargs": "?", "const": True} if hints[f.name] is bool else {}
        group.add_argument(flag, dest="cfg_" + f.name, type=yaml_value, default=None, metavar="V",
                           help=f"{help_text}; default {default!r}", **extra)


def arguments_given(args, cls) -> dict:
    """The flags of `add_arguments` that were given on the command line, by field name."""
    given = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, "cfg_" + f.name, None)
        if value is not None:
            given[f.name] = value
    return given
