import json

import numpy as np
import pandas as pd

from hgstudy.study.files import read_baselines, read_train_results, write_baselines, write_train_results


def test_train_results_keep_the_configured_learning_rate_and_leave_speed_and_schedule_out_of_the_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.tsv").write_text("step\tloss\n16\t0.5\n")
    (run / "val.tsv").write_text("step\tpckh\n48\t7.5\n")
    info = {"variant": "hg", "seed": 0, "lr": 2e-3, "lr_drop": 0.2, "lr_steps": [320]}
    final = {"step": 384, "val_pckh": 18.0, "lr": 4e-4, "samples_per_s": 79.5}
    write_train_results(tmp_path / "results", run, info, final)
    values, val = read_train_results(tmp_path / "results")
    assert values["lr"] == 2e-3 and values["final_lr"] == 4e-4  # 2e-3 dropped x0.2 once
    assert json.loads((tmp_path / "results" / "metrics.json").read_text()) == {"step": 384, "val_pckh": 18.0}
    pd.testing.assert_frame_equal(val, pd.DataFrame({"step": [48], "pckh": [7.5]}))


def test_baselines_are_read_back_for_the_people_asked_for_and_not_for_others(tmp_path):
    people = np.array([0, 1, 2])
    mean_pose = np.arange(3 * 16 * 2, dtype=float).reshape(3, 16, 2)  # person k's values start at 32 k
    write_baselines(tmp_path, people, {"mean_pose": mean_pose})
    assert read_baselines(tmp_path)["mean_pose"][2, 0, 0] == 64.0
    assert read_baselines(tmp_path, [2, 0])["mean_pose"][:, 0, 0].tolist() == [64.0, 0.0]
    assert read_baselines(tmp_path, [2, 5]) == {}  # person 5 was not scored: no baseline rather than a wrong one
    assert read_baselines(tmp_path / "absent", [0]) == {}
