"""Each run's settings: training (the profile's, then the variant's, then seed and overrides) and evaluation."""

from __future__ import annotations

import dataclasses

from hgstudy.core.errors import UserError
from hgstudy.engine.config import TrainConfig, load_config
from hgstudy.engine.evaluate import EvaluateConfig
from hgstudy.study.params import Study, check_name


def variant_config(params: dict, variant: str, seed: int, overrides: dict | None = None) -> TrainConfig:
    if check_name(variant, "variant") not in params["models"]:
        raise UserError(f"variant: {variant!r} names no model; defined in params.yaml models: "
                        f"{', '.join(params['models'])}")
    profile = params["profile"]
    return load_config(params, [f"profiles.{profile}.train", f"models.{variant}"],
                       {"seed": seed, **(overrides or {})})


def evaluate_config(study: Study, overrides: dict | None = None) -> EvaluateConfig:
    """The profile's `evaluate` settings, then the overrides; errors name the key."""
    section = f"profiles.{study.profile}.evaluate"
    config = EvaluateConfig.from_dict(study.section("evaluate"), f"params.yaml {section}", f"{section}.")
    return EvaluateConfig.from_dict({**dataclasses.asdict(config), **(overrides or {})}, "overrides", "overrides.")


def check_every_run(study: Study) -> Study:
    """`study` after every run's training configuration and the evaluation settings were checked (the first
    stage does this, before any download)."""
    params = study.params
    for name in params["variants"]:
        variant_config(params, name, params["seeds"][0])
    for name in params.get("flic", []):
        variant_config(params, name, 0, {"dataset": "flic"})
    evaluate_config(study)
    return study
