import copy

import numpy as np
import pytest
import yaml

from hgstudy.core.errors import UserError
from hgstudy.scoring.annotations import make_annotations
from hgstudy.study.configs import check_every_run, variant_config
from hgstudy.study.params import ROOT, open_study


@pytest.fixture(scope="module")
def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_committed_params_are_valid_and_hold_the_papers_variants(params):
    study = check_every_run(open_study(params=params)).params
    # Equal parameters: stacks x modules is 8 in every variant, as in the paper's ablations.
    for name in study["variants"]:
        config = variant_config(study, name, 0)
        assert config.stacks * config.modules == 8, name
    assert variant_config(study, "hg_int", 0).decoder_heads
    assert variant_config(study, "s8x1_last", 0).stack_loss_weights() == [0.0] * 7 + [1.0]
    assert variant_config(study, "s8x1", 3).seed == 3


def test_the_default_study_trains_every_variant_with_three_seeds_and_validates_on_the_ablations_measure(params):
    study = check_every_run(open_study(params=params)).params
    assert len(set(study["seeds"])) >= 3 and len(study["variants"]) == 7
    config = variant_config(study, "hg", 0)
    # curves of >= 4 validations (the trend rule reads their later half); the final numbers of every run come from
    # the evaluate stage: all validation people with the flip test
    assert config.steps / config.val_every >= 4 and config.val_samples >= 500
    evaluate = study["profiles"][study["profile"]]["evaluate"]
    assert evaluate["flip"] is True and evaluate["limit"] is None


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.update(profile="gpu"), r"profile: must be one of cpu, paper, got 'gpu'"),
    (lambda p: p["variants"].append("hg_x"), r"variants\[7\]: 'hg_x' names no model"),
    (lambda p: p["models"]["hg"].update(stacks=0), r"stacks"),
    (lambda p: p["profiles"]["cpu"]["train"].update(dataset="coco"), r"dataset: must be one of .*coco"),
    (lambda p: p.update(seeds=[-1]), r"seeds: must be a non-empty list"),
    (lambda p: p.update(flic=["s16x1"]), r"flic\[0\]: 's16x1' names no model"),
    (lambda p: p.update(profile="paper") or p["profiles"]["paper"].update(data={"miror": "http://x"}),
     r"profiles.paper.data: may hold mirror .* got \{'miror'"),
])
def test_bad_params_name_the_key(params, edit, message):
    bad = copy.deepcopy(params)
    edit(bad)
    with pytest.raises(UserError, match=message):
        check_every_run(open_study(params=bad))


def test_paper_profile_is_the_papers_recipe(params):
    paper = dict(params, profile="paper")
    config = variant_config(paper, "s8x1", 0)
    assert (config.dataset, config.input_res, config.features, config.batch_size) == ("mpii", 256, 256, 6)
    assert (config.optimizer, config.lr) == ("rmsprop", 2.5e-4)


def test_annotations_take_keeps_image_groups():
    joints = np.arange(4 * 16 * 2, dtype=float).reshape(4, 16, 2) + 1
    ann = make_annotations(joints, np.ones((4, 16), bool), np.ones(4), image_index=np.array([7, 7, 9, 4]),
                           dataset="mpii")
    sub = ann.take([1, 0, 2])
    assert np.array_equal(sub.joints, joints[[1, 0, 2]])
    assert list(sub.image_index) == [0, 0, 1] and sub.n_images == 2  # people 0 and 1 share image 7
