import json

import pandas as pd

from hgstudy.study.files import read_train_results, write_train_results


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
