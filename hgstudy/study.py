"""The study's layout: which profile and variants params.yaml asks for, and where each run's files go.

params.yaml holds `profile` (cpu | paper), `variants` and `seeds` (the matrix of runs), `models` (one
section per variant: what differs between the ablation's networks) and `profiles.<name>.train` /
`.evaluate` (what the profile shares). A run is one variant trained with one seed: `runs/<variant>-<seed>`
holds its checkpoints (DVC-cached), `results/train|evaluate/<variant>-<seed>` its metrics and plot data.
"""

from __future__ import annotations

from pathlib import Path

from hgstudy.config import TrainConfig, load_config, read_params
from hgstudy.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("cpu", "paper")


def load_study(params=None) -> dict:
    """params.yaml checked for the study's keys; every error names the key and what it allows."""
    data = params if isinstance(params, dict) else read_params(params or ROOT / "params.yaml")
    profile = data.get("profile")
    if profile not in PROFILES:
        raise UserError(f"params.yaml profile: must be one of {', '.join(PROFILES)}, got {profile!r}")
    profiles = data.get("profiles") or {}
    if not isinstance(profiles.get(profile), dict) or not isinstance(profiles[profile].get("train"), dict):
        raise UserError(f"params.yaml profiles.{profile}.train: missing; it holds the profile's training settings")
    models = data.get("models") or {}
    variants = data.get("variants")
    if not isinstance(variants, list) or not variants:
        raise UserError("params.yaml variants: must be a non-empty list of names from models")
    for i, name in enumerate(variants):
        if name not in models:
            raise UserError(f"params.yaml variants[{i}]: {name!r} names no model; defined in models: "
                            f"{', '.join(models)}")
    seeds = data.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise UserError(f"params.yaml seeds: must be a non-empty list of integers >= 0, got {seeds!r}")
    flic = data.get("flic", [])
    if not isinstance(flic, list) or any(name not in models for name in flic):
        raise UserError(f"params.yaml flic: must be a list of names from models ({', '.join(models)}), got {flic!r}")
    for name in variants:  # every run's configuration is valid before anything trains
        variant_config(data, name, seeds[0])
    return data


def variant_config(params: dict, variant: str, seed: int, overrides: dict | None = None) -> TrainConfig:
    """The training configuration of one run: profile settings, then the variant's, then seed and overrides."""
    profile = params["profile"]
    return load_config(params, [f"profiles.{profile}.train", f"models.{variant}"],
                       {"seed": seed, **(overrides or {})})


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-{seed}"  # DVC's matrix key for (variant, seed)


def runs(params: dict) -> list[tuple[str, int]]:
    return [(v, s) for v in params["variants"] for s in params["seeds"]]


def val_annotations(dataset: str, index=None, data_root="data"):
    """Ground truth of a validation split as `hgstudy.metrics` wants it, for people `index` (default all)."""
    if dataset == "mannequin":
        from hgstudy.data.poses import load_poses

        ann = load_poses().annotations("val")
    else:
        from hgstudy.annotations import read_split_h5

        ann = read_split_h5(Path(data_root) / dataset / "valid.h5")
    return ann if index is None else ann.take(index)
