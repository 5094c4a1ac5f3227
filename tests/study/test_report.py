import pandas as pd
import pytest

from hgstudy.study import report


def runs_table(accuracies: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"variant": v, "seed": s, "accuracy": a, "dataset": "mannequin", "input_res": 64, "features": 32,
             "steps": 384, "batch_size": 16, "optimizer": "rmsprop", "lr": 2e-3, "schedule": "steps",
             "params": 409104 + 1000 * k}
            for k, (v, accs) in enumerate(accuracies.items()) for s, a in enumerate(accs)]
    return pd.DataFrame(rows)


BASELINES = {"mean_pose_ablation": 11.9, "nearest_neighbour_ablation": 17.5, "baseline_people": 2958}


@pytest.mark.parametrize(("accuracies", "range_text", "ending"), [
    ({"hg": [12.0, 13.0, 14.0], "s8x1": [11.0, 11.5, 12.0]}, "between 11.5% and 13.0%",
     "little more than the average pose"),
    ({"hg": [20.0, 22.0], "s8x1": [14.0, 16.0]}, "between 15.0% and 21.0%", "still below the nearest-neighbour"),
    ({"hg": [30.0], "s8x1": [25.0]}, "between 25.0% and 30.0%", "above both baselines"),
])
def test_standing_places_the_seed_means_against_the_baselines(accuracies, range_text, ending):
    text = report.standing(runs_table(accuracies), BASELINES, people=2958)
    assert range_text in text and ending in text  # means by hand: (12+13+14)/3 = 13.0, (11+11.5+12)/3 = 11.5, ...
    assert "11.9% (the training poses' mean pose) and 17.5% (nearest neighbour) on the same people" in text


def test_standing_says_nothing_without_baselines_and_does_not_claim_other_people_are_the_same():
    table = runs_table({"hg": [30.0]})
    assert report.standing(table, None, 2958) == "" and report.standing(table, {"x": 1}, 2958) == ""
    assert "same people" not in report.standing(table, BASELINES, people=1000)


def test_scope_states_the_configured_learning_rate_samples_and_seeds():
    families = {"supervision": 4, "stacks": 4, "extension": 1}
    text = report.scope(runs_table({"hg": [1.0, 2.0, 3.0], "s8x1": [1.0, 2.0, 3.0]}), 2958, families)
    assert "rmsprop at 0.002" in text and "384 steps of 16 = 6,144 samples, 0.13% of the paper's 4.8 M" in text
    assert "3 seeds per variant" in text and "0.41-0.41 M parameters" in text
    # 1 - 0.05 / 4 = 98.75%, 1 - 0.05 / 1 = 95%
    assert "9 claims in 3 families" in text and "98.75% in a family of 4" in text and "95.00% in a family of 1" in text


def test_hg_int_heads_say_their_size_against_the_papers():
    deep, shallow = runs_table({"hg_int": [1.0]}).assign(depth=4), runs_table({"hg_int": [1.0]}).assign(depth=2)
    # 64 px input -> 16 x 16 output; depth 4: heads at 1/2 and 1/4 (8 x 8, 4 x 4); depth 2: only 1/2
    assert "predict 8 x 8 and 4 x 4 maps here (output 16 x 16, hourglass depth 4)" in report.hg_int_heads(deep)
    assert "predict 8 x 8 maps here (output 16 x 16, hourglass depth 2)" in report.hg_int_heads(shallow)
    assert "the paper's predict 32 x 32 and 16 x 16" in report.hg_int_heads(shallow)


def test_the_conclusion_says_where_a_claims_paper_number_comes_from():
    row = {"better": "s8x1", "worse": "s4x2", "at_stack": "last", "verdict": "cannot tell at this budget",
           "claim": "8 x 1 beats 4 x 2", "acc_better": 25.0, "acc_worse": 26.0, "diff": -1.0, "ci95_low": -3.0,
           "ci95_high": 1.0, "family_low": -4.0, "family_high": 2.0, "detectable": 3.9, "seed_sd_better": 0.7,
           "seed_sd_worse": 1.0, "paper_diff": 0.3, "paper_diff_detectable": False, "source": "paper, Fig. 9"}
    curves = dict(row, better="hg_int", worse="hg", claim="HG-Int beats HG", paper_diff=float("nan"),
                  source="paper, Fig. 8")
    own = dict(curves, better="s8x1", worse="s8x1_last", claim="8 x 1 beats 8 x 1 last", verdict="contradicted",
               source="this study's extension")
    text = report.conclusion(pd.DataFrame([row, curves, own]))
    lines = text.splitlines()
    assert "the paper's +0.3 is below what this design detects (3.9)" in lines[0]
    assert "(the paper gives this figure as curves, no numbers)" in lines[1]
    assert "(this study's own comparison: the paper has no number for it)" in lines[2]
    assert lines[-1] == "In all, 2 claims: cannot tell at this budget, 1 claim: contradicted (of 3 judged)."
