"""Evaluation: decoding, the flip test, per-stack predictions, scores and prediction files, checked by hand."""

import os

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from hgstudy.core.errors import UserError
from hgstudy.engine.evaluate import EvaluateConfig, InMemory, evaluate_checkpoint, predict, save_predictions, score
from hgstudy.mannequin.dataset import MannequinDataset
from hgstudy.model.checkpoint import save_checkpoint
from hgstudy.model.network import HourglassConfig, StackedHourglass, fold_batchnorm
from hgstudy.scoring.decode import argmax_quarter, flip_average
from hgstudy.scoring.predictions import read_predictions

# MPII left/right partners, written out from the joint list (r_ankle 0 ... l_wrist 15) rather than imported.
PARTNER = {0: 5, 1: 4, 2: 3, 10: 15, 11: 14, 12: 13}
PARTNER.update({v: k for k, v in list(PARTNER.items())})
FLIP = [PARTNER.get(j, j) for j in range(16)]
TINY = HourglassConfig(stacks=2, features=16, depth=3, input_res=64, stem_channels=(8, 16))


def test_argmax_quarter_pixel_shift_by_hand():
    hm = torch.zeros(4, 8, 8)
    hm[0, 3, 5], hm[0, 3, 6], hm[0, 3, 4], hm[0, 2, 5], hm[0, 4, 5] = 1.0, 0.5, 0.2, 0.1, 0.3  # right, down
    hm[1, 6, 2], hm[1, 6, 1], hm[1, 5, 2] = 1.0, 0.7, 0.4  # left, up
    hm[2, 0, 7], hm[2, 0, 6] = 1.0, 0.9  # border: no shift in x (no right neighbour) nor in y
    hm[3, 4, 4] = 1.0  # equal neighbours: no shift
    expected = [[5.25, 3.25], [1.75, 5.75], [7.0, 0.0], [4.0, 4.0]]
    np.testing.assert_array_equal(argmax_quarter(hm).numpy(), expected)


class OneSample(Dataset):
    """A single sample whose heatmap frame is the original image frame (identity matrix)."""

    layout, flip = "mpii", FLIP

    layout, flip = "mpii", FLIP

    def __init__(self, image):
        self.image = image

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return {"image": self.image, "matrix": np.array([[1.0, 0, 0], [0, 1.0, 0]]), "index": i,
                "joints": np.zeros((16, 2), np.float32), "annotated": np.ones(16, bool),
                "visible": np.ones(16, np.float32), "norm": 1.0}


def test_flip_test_of_a_mirror_symmetric_image_gives_mirrored_left_right_joints():
    torch.manual_seed(0)
    model = StackedHourglass(TINY).eval()
    half = np.random.default_rng(1).random((3, 64, 32), dtype=np.float32)
    image = np.concatenate([half, half[:, :, ::-1]], axis=2)  # symmetric about the vertical centre line
    w = TINY.output_res
    # Heatmaps: the flip-averaged map of each joint is the mirror image of its partner's (a centre joint's
    # own map is symmetric).
    with torch.no_grad():
        x = torch.from_numpy(image)[None]
        averaged = flip_average(model(x), model(x.flip(-1)), FLIP)[0]
    torch.testing.assert_close(averaged, averaged[:, FLIP].flip(-1), rtol=0, atol=0)
    # Coordinates: a left joint and its right partner are mirror images, x_j = w - 1 - x_partner, same y.
    # (Centre joints are left out: their symmetric maps have two equal maxima.)
    paired = sorted(PARTNER)
    flipped = predict(model, OneSample(image), flip=True, flip_perm=FLIP).preds_stacks[:, 0]  # (S, J, 2)
    np.testing.assert_allclose(flipped[:, paired, 0], w - 1 - flipped[:, FLIP][:, paired, 0])
    np.testing.assert_allclose(flipped[:, paired, 1], flipped[:, FLIP][:, paired, 1])
    # Without the flip test the random network is not symmetric, so the property comes from the averaging.
    plain = predict(model, OneSample(image), flip=False).preds_stacks[:, 0]
    assert not np.allclose(plain[:, paired, 0], w - 1 - plain[:, FLIP][:, paired, 0])


def by_hand_coords(model, image, matrix):
    """Flip-test coordinates (S, J, 2) in original pixels, with numpy loops and no project code."""
    with torch.no_grad():
        x = torch.from_numpy(image)[None]
        hm = model(x)[0].numpy()
        hmf = model(x.flip(-1))[0].numpy()
    S, J, h, w = hm.shape
    out = np.zeros((S, J, 2))
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))
    for s in range(S):
        for j in range(J):
            avg = (hm[s, j] + hmf[s, FLIP[j]][:, ::-1]) / 2
            y, x = divmod(int(np.argmax(avg)), w)
            px, py = float(x), float(y)
            if 0 < x < w - 1:
                px += 0.25 * np.sign(avg[y, x + 1] - avg[y, x - 1])
            if 0 < y < h - 1:
                py += 0.25 * np.sign(avg[y + 1, x] - avg[y - 1, x])
            out[s, j] = (inverse @ [px, py, 1.0])[:2]
    return out


def by_hand_pckh(pred, joints, annotated, norm):
    """Official MPII Total PCKh@0.5 and AUC (14 joints, <=), with plain loops."""
    def total(t):
        hit = n = 0
        for i in range(len(pred)):
            for j in range(16):
                if j in (6, 7) or not annotated[i, j]:
                    continue
                n += 1
                hit += np.hypot(*(pred[i, j] - joints[i, j])) / norm[i] <= t
        return 100.0 * hit / n

    curve = [total(t / 100) for t in range(51)]
    area = sum((curve[k] + curve[k + 1]) / 2 * 0.02 for k in range(50))
    return total(0.5), area


def test_predictions_match_a_hand_computation_of_every_stack():
    torch.manual_seed(0)
    model = StackedHourglass(TINY)
    data = Subset(MannequinDataset("val", input_res=64), range(5))
    p = predict(model, data, flip=True, batch_size=2)
    assert p.preds_stacks.shape == (2, 5, 16, 2)
    model.eval()
    for i in range(5):
        sample = data[i]
        np.testing.assert_allclose(p.preds_stacks[:, i], by_hand_coords(model, sample["image"], sample["matrix"]),
                                   atol=1e-6)
    np.testing.assert_array_equal(p.preds, p.preds_stacks[-1])


def test_a_validation_set_kept_in_memory_predicts_exactly_as_the_one_drawn_each_time():
    torch.manual_seed(0)
    model = StackedHourglass(TINY)
    data = Subset(MannequinDataset("val", input_res=64), range(6))
    kept = InMemory(data)
    drawn, again = predict(model, data, flip=True, batch_size=4), predict(model, kept, flip=True, batch_size=4)
    assert kept.layout == "mpii" and kept.flip == data.dataset.flip  # the flip test swaps left and right joints
    for key in ("heatmap_stacks", "matrices", "index", "joints", "annotated", "visible", "norm"):
        np.testing.assert_array_equal(getattr(again, key), getattr(drawn, key), err_msg=key)
    assert score(again) == score(drawn)


class OracleModel(nn.Module):
    """Returns each image's true target heatmaps plus noise (different per stack and per flip), so that the
    predictions are partly right and the score is neither 0 nor 100."""

    def __init__(self, dataset, noise: float):
        super().__init__()
        self.config = HourglassConfig(stacks=2, features=16, depth=3, input_res=64, stem_channels=(8, 16))
        self.table = {}
        for i in range(len(dataset)):
            s = dataset[i]
            self.table[s["image"].tobytes()] = (torch.from_numpy(s["target"]), i, False)
            self.table[np.ascontiguousarray(s["image"][:, :, ::-1]).tobytes()] = (
                torch.from_numpy(s["target"][FLIP][:, :, ::-1].copy()), i, True)
        self.noise = noise

    def forward(self, x):
        out = []
        for image in x:
            target, i, flipped = self.table[image.numpy().tobytes()]
            g = torch.Generator().manual_seed(2 * i + flipped)
            out.append(torch.stack([target + self.noise * torch.rand(target.shape, generator=g) for _ in range(2)]))
        return torch.stack(out)


def test_scores_match_pckh_computed_by_hand_from_the_heatmaps(tmp_path):
    data = Subset(MannequinDataset("val", input_res=64), range(12))
    model = OracleModel(data, noise=1.6)
    p = predict(model, data, flip=True, batch_size=5)
    joints = np.stack([data[i]["joints"] for i in range(12)])
    annotated = np.stack([data[i]["annotated"] for i in range(12)])
    norm = np.array([data[i]["norm"] for i in range(12)])
    hand = np.stack([by_hand_coords(model, data[i]["image"], data[i]["matrix"]) for i in range(12)], axis=1)
    np.testing.assert_allclose(p.preds_stacks, hand, atol=1e-6)
    pckh, auc = by_hand_pckh(hand[-1], joints, annotated, norm)
    assert 5 < pckh < 95  # the noise makes it a real test
    s = score(p)
    assert s["pckh"] == pytest.approx(pckh) and s["auc"] == pytest.approx(auc)
    assert s["pckh_stack1"] == pytest.approx(by_hand_pckh(hand[0], joints, annotated, norm)[0])
    # The prediction file is what `hgstudy score` reads.
    path = save_predictions(tmp_path / "preds.h5", p)
    np.testing.assert_array_equal(read_predictions(path, n_people=12, n_joints=16), p.preds)
    with h5py.File(path) as f:
        assert f["heatmap_stacks"].shape == (2, 12, 16, 2) and list(f["index"][()]) == list(range(12))
        np.testing.assert_allclose(f["preds"][()], p.preds, rtol=1e-6)  # float32 for other tools


def test_folding_batchnorm_keeps_the_function():
    torch.manual_seed(0)
    model = StackedHourglass(TINY)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics and affine parameters
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    folded = fold_batchnorm(model)
    # Each residual module keeps only bn1 (it reads the residual stream); stem_bn and lin_bn fold too.
    remaining = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert remaining == sum(type(m).__name__ == "Residual" for m in model.modules()) == 25
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


def test_evaluate_checkpoint_predicts_the_runs_dataset_as_computed_by_hand(tmp_path):
    """A run's model.pt says which dataset it learned; its validation people are predicted as by hand."""
    torch.manual_seed(0)
    model = StackedHourglass(TINY)
    save_checkpoint(model, tmp_path / "model.pt", train_config={"dataset": "mannequin", "seed": 0, "sigma": 1.0})
    ev = evaluate_checkpoint(tmp_path / "model.pt", EvaluateConfig(limit=3, precision="fp32", device="cpu",
                                                                       batch_size=2))
    assert ev.dataset_name == "mannequin" and len(ev.dataset) == 3
    data = MannequinDataset("val", input_res=64)
    model.eval()
    for i in range(3):  # BatchNorm folded inside: the same function up to rounding
        hand = by_hand_coords(model, data[i]["image"], data[i]["matrix"])
        np.testing.assert_allclose(ev.predictions.preds_stacks[:, i], hand, atol=0.3)
    ann = ev.annotations()
    np.testing.assert_allclose(np.nan_to_num(ann.joints), np.stack([data[i]["joints"] for i in range(3)]), atol=1e-3)
    on_train = EvaluateConfig(split="train", limit=2, precision="fp32", device="cpu")
    train = evaluate_checkpoint(tmp_path / "model.pt", on_train)
    with pytest.raises(UserError, match="val split only, not 'train'"):  # not the val people's ground truth
        train.annotations()
    with pytest.raises(UserError, match="predicts 16 joints; dataset flic has 11"):
        evaluate_checkpoint(tmp_path / "model.pt", EvaluateConfig(dataset="flic"))
    save_checkpoint(model, tmp_path / "bare.pt")
    with pytest.raises(UserError, match="does not say which dataset"):
        evaluate_checkpoint(tmp_path / "bare.pt")


def test_a_final_model_behind_the_runs_checkpoint_is_refused(tmp_path):
    """A run extended past its model.pt and stopped: that model.pt is not the run's result, so it is not scored."""
    model = StackedHourglass(TINY)
    trained = {"dataset": "mannequin", "seed": 0, "sigma": 1.0}
    save_checkpoint(model, tmp_path / "model.pt", train_config=trained, step=4)
    save_checkpoint(model, tmp_path / "checkpoint.pt", train_config=trained, step=43)
    one = EvaluateConfig(limit=1, precision="fp32", device="cpu")
    with pytest.raises(UserError, match=rf"^{tmp_path / 'model.pt'} is the final model of step 4, but "
                                        rf"{tmp_path / 'checkpoint.pt'} beside it is at step 43: the run was extended "
                                        r"and has not finished. Finish it \(run the same train command\) or evaluate"):
        evaluate_checkpoint(tmp_path / "model.pt", one)
    evaluate_checkpoint(tmp_path / "checkpoint.pt", one)  # what it says it is
    save_checkpoint(model, tmp_path / "checkpoint.pt", train_config=trained, step=4)  # a finished run: both agree
    evaluate_checkpoint(tmp_path / "model.pt", one)


def test_ctrl_c_during_evaluate_is_one_line_exit_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from hgstudy import cli

    save_checkpoint(StackedHourglass(TINY), tmp_path / "model.pt", train_config={"dataset": "mannequin"})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what Python raises on SIGINT

    monkeypatch.setattr("hgstudy.engine.evaluate.predict", interrupted)
    assert cli.main(["evaluate", str(tmp_path / "model.pt"), "--out", str(tmp_path / "p.h5"), "--limit", "2"]) == 130
    assert capsys.readouterr().err == "hgstudy evaluate: interrupted; nothing was written\n"
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
