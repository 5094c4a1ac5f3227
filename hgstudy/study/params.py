"""The study's layout: which profile, variants and seeds params.yaml asks for, and the name of each run.

params.yaml holds `profile` (cpu | paper), `variants` and `seeds` (the matrix of runs), `flic` (variants also
trained on FLIC in the paper profile), `models` (one section per variant: what differs between the
ablation's networks) and `profiles.<name>.train` / `.evaluate` (what the profile shares). A run is one
variant trained with one seed, named `<variant>-<seed>` (DVC's matrix key). This module checks the
structure only and imports no engine code, so that the report stages stay light; `hgstudy.study.configs`
builds and checks each run's training configuration.
"""

from __future__ import annotations

import re
from pathlib import Path

from hgstudy.core.errors import UserError
from hgstudy.core.fields import read_params

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("cpu", "paper")
# Variant names become run keys, stage names, folders and command-line words: nothing a shell or a path reads
# specially (no quotes, `$`, `/`, spaces, leading `-` or `.`).
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
NAME_RULE = "letters, digits, '_' and '-' (not first), at most 64 characters"


def check_name(name, key: str) -> str:
    """`name` if it is a safe variant name; else a UserError naming `key` and the rule."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UserError(f"{key}: {name!r} is not a valid name: use {NAME_RULE} (it names folders and pipeline stages)")
    return name


def _names(data: dict, key: str, models: dict, allow_empty: bool) -> list:
    names = data.get(key, [] if allow_empty else None)
    if not isinstance(names, list) or (not names and not allow_empty):
        raise UserError(f"params.yaml {key}: must be a {'' if allow_empty else 'non-empty '}list of names from "
                        f"models ({', '.join(models)}), got {names!r}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in models:
            raise UserError(f"params.yaml {key}[{i}]: {name!r} names no model; defined in models: {', '.join(models)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"params.yaml {key}: {', '.join(repeated)} listed more than once")
    return names


def check_structure(params) -> dict:
    """params.yaml (a path or an already-read dict) with its structure checked; errors name the key."""
    data = params if isinstance(params, dict) else read_params(params)
    profile = data.get("profile")
    if profile not in PROFILES:
        raise UserError(f"params.yaml profile: must be one of {', '.join(PROFILES)}, got {profile!r}")
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or not isinstance(profiles.get(profile), dict):
        raise UserError(f"params.yaml profiles.{profile}: missing or not a mapping; it holds the profile's settings")
    for section in ("train", "evaluate"):
        value = profiles[profile].get(section, {})
        if not isinstance(value, dict) or (section == "train" and not value):
            raise UserError(f"params.yaml profiles.{profile}.{section}: must be a mapping of settings, got {value!r}")
    at_once = profiles[profile].get("runs_at_once", 1)
    if not isinstance(at_once, int) or isinstance(at_once, bool) or at_once < 1:
        raise UserError(f"params.yaml profiles.{profile}.runs_at_once: must be a count >= 1 (training runs side by "
                        f"side, one core each), got {at_once!r}")
    source = profiles[profile].get("data") or {}  # where the data stage downloads from (the paper profile)
    if not isinstance(source, dict) or set(source) - {"mirror", "mirror_pins"}:
        raise UserError(f"params.yaml profiles.{profile}.data: may hold mirror (a URL) and mirror_pins (tests only: "
                        f"a synthetic mirror's ledger), got {source!r}")
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise UserError(f"params.yaml models: must map variant names to their settings, got {models!r}")
    for name, values in models.items():
        check_name(name, f"params.yaml models.{name!r}")
        if not isinstance(values, dict):
            raise UserError(f"params.yaml models.{name}: must be a mapping of settings, got {values!r}")
    _names(data, "variants", models, allow_empty=False)
    _names(data, "flic", models, allow_empty=True)
    seeds = data.get("seeds")
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise UserError(f"params.yaml seeds: must be a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"params.yaml seeds: {seeds} repeats a seed")
    return data


def run_name(variant: str, seed: int) -> str:
    return f"{check_name(variant, 'variant')}-{seed}"  # DVC's matrix key for (variant, seed)


class Study:
    """params.yaml of a checkout (`root`), read once: what every notebook starts from."""

    def __init__(self, root: Path, params: dict):
        self.root, self.params = Path(root), params

    @property
    def profile(self) -> str:
        return self.params["profile"]

    def path(self, relative) -> Path:
        """A path given relative to the checkout (what the pipeline passes to the notebooks)."""
        return self.root / relative

    def run_keys(self) -> dict[str, list[str]]:
        """{variant: [run keys, one per seed]} of the matrix in params.yaml."""
        return {v: [run_name(v, s) for s in self.params["seeds"]] for v in self.params["variants"]}

    def section(self, name: str) -> dict:
        """The profile's `train` or `evaluate` settings."""
        return self.params["profiles"][self.profile].get(name, {})


def open_study(root=ROOT, params=None) -> Study:
    """The study of the checkout at `root` (default: this package's): its params.yaml, or `params` (a path or a
    dict) instead, with the structure checked. `configs.check_every_run` checks each run's settings too."""
    return Study(root, check_structure(Path(root) / "params.yaml" if params is None else params))
