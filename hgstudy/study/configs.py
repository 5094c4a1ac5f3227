"""Each run's training configuration: the profile's settings, then the variant's, then seed and overrides."""

from __future__ import annotations

from hgstudy.core.errors import UserError
from hgstudy.engine.config import TrainConfig, load_config
from hgstudy.study.params import Study, check_name, read_study


def variant_config(params: dict, variant: str, seed: int, overrides: dict | None = None) -> TrainConfig:
    if check_name(variant, "variant") not in params["models"]:
        raise UserError(f"variant: {variant!r} names no model; defined in params.yaml models: "
                        f"{', '.join(params['models'])}")
    profile = params["profile"]
    return load_config(params, [f"profiles.{profile}.train", f"models.{variant}"],
                       {"seed": seed, **(overrides or {})})


def load_study(params=None) -> dict:
    """params.yaml checked for the study's structure and for every run's configuration (before anything trains)."""
    data = read_study(params)
    for name in data["variants"]:
        variant_config(data, name, data["seeds"][0])
    for name in data.get("flic", []):
        variant_config(data, name, 0, {"dataset": "flic"})
    return data


def check_runs(study: Study) -> Study:
    """`study` after every run's configuration was checked (the first stage does this, before any download)."""
    load_study(study.params)
    return study
