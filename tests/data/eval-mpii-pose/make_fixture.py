"""GENERATOR, not part of the test suite: writes the scoring fixtures in this folder and the PCKh numbers the
real evaluation code gives for them. Nothing of the public projects is copied here; their code is run from
checkouts given on the command line, in a scratch folder.

    python tests/data/eval-mpii-pose/make_fixture.py --eval-mpii-pose CHECKOUT1 --pytorch-pose CHECKOUT2 \\
        --commits HASH1 HASH2 [--valid ../shared/data/mpii/valid.h5] [--scratch DIR] [--octave octave-cli]

CHECKOUT1 (anibali/eval-mpii-pose) needs evalMPII.m, getExpParamsNew.m, eval/ and preds/reference/;
CHECKOUT2 (bearpaw/pytorch-pose) needs evaluation/eval_PCKh.py and evaluation/utils.py.

Writes, for the people PEOPLE of the MPII validation split (pose-hg-train's valid.h5, rows 0, 30, ..., 2940):
- detections_our_format.mat: their ground truth in the layout of pytorch-pose's
  evaluation/data/detections_our_format.mat (the same variables, dtypes and joint names, thorax spelled `thor`;
  `pos_pred_src` holds the Tompson predictions, as in that file). Head boxes: valid.h5 has only the head size
  (`normalize`), so each box is the square centred between upper neck and head top whose 0.6 x diagonal is it.
- tompson.h5, newell.h5, bearpaw-hg_s8_b1.mat: the same rows of eval-mpii-pose's preds/reference files,
  written in the layout of each (h5 2 x 16 x n float32, h5 n x 16 x 2 float64, MATLAB v5 n x 16 x 2 float32).
- expected_pckh.json: for each prediction file, the numbers of
  * the official protocol: eval-mpii-pose's evalMPII.m, unmodified, run in GNU Octave on a RELEASE struct and
    valid.h5 holding these people (its plotting, plotCurveNew, is replaced by a no-op). `per_joint` is its
    pck(end, :) (14 joints in evalMPII order, then UBody and Total); the table's columns are taken from it as
    genTablePCK does, `auc` is area_under_curve(scale01(range), pck(:, end)), and `printed` its own table row.
  * the Tompson protocol: pytorch-pose's evaluation/eval_PCKh.py, unmodified, run on these files
    (`skimage`, imported only for its debug display, is stubbed). `per_joint` is its PCKh (16 joints, MPII
    order) read from its frame, `printed` the line it prints. It reads .mat predictions only, so the h5
    files are given to it as the n x 16 x 2 array evalMPII reads from them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import h5py
import numpy as np
import scipy.io

HERE = Path(__file__).resolve().parent
PEOPLE = np.arange(0, 2958, 30)
PREDICTIONS = {"tompson.h5": 1, "newell.h5": 2, "bearpaw-hg_s8_b1.mat": 5}  # evalMPII.m's PRED_IDS
JOINTS = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor",
          "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri")  # as dataset_joints spells them
OFFICIAL_COLUMNS = {"head": (12, 13), "shoulder": (8, 9), "elbow": (7, 10), "wrist": (6, 11), "hip": (2, 3),
                    "knee": (1, 4), "ankle": (0, 5)}  # genTablePCK, 0-based into evalMPII's 14 joints
TOMPSON_COLUMNS = {"head": (9,), "shoulder": (13, 12), "elbow": (14, 11), "wrist": (15, 10), "hip": (3, 2),
                   "knee": (4, 1), "ankle": (5, 0)}  # eval_PCKh.py's print, into dataset_joints


def matlab_view(path: Path) -> np.ndarray:
    """`preds` as evalMPII.m sees it: n x 16 x 2 (it loads, or h5reads with axes reversed, then permutes)."""
    if path.suffix == ".mat":
        preds = scipy.io.loadmat(path)["preds"]
    else:
        with h5py.File(path, "r") as f:
            preds = f["preds"][()].T
    return preds.transpose(2, 1, 0) if preds.shape[0] == 2 else preds


def write_fixtures(eval_checkout: Path, valid: Path, out: Path) -> dict:
    with h5py.File(valid, "r") as f:
        part, head_size = f["part"][()][PEOPLE], f["normalize"][()][PEOPLE]
        visible, center = f["visible"][()][PEOPLE], f["center"][()][PEOPLE]
    reference = eval_checkout / "preds" / "reference"
    for name in PREDICTIONS:
        if name.endswith(".mat"):
            scipy.io.savemat(out / name, {"preds": scipy.io.loadmat(reference / name)["preds"][PEOPLE]})
            continue
        with h5py.File(reference / name, "r") as f:
            preds = f["preds"][()]
        with h5py.File(out / name, "w") as f:
            f["preds"] = preds[..., PEOPLE] if preds.shape[0] == 2 else preds[PEOPLE]
    missing = (part == 0).all(axis=2)
    middle = (part[:, 8] + part[:, 9]) / 2
    half = (head_size / (0.6 * 2 * np.sqrt(2)))[:, None]
    boxes = np.stack([middle - half, middle + half])  # (corner, person, x/y)
    names = np.empty((1, 16), dtype=object)
    names[0, :] = [np.array([n]) for n in JOINTS]
    scipy.io.savemat(out / "detections_our_format.mat", {
        "jnt_missing": missing.T.astype(np.uint8),
        "pos_pred_src": matlab_view(out / "tompson.h5").transpose(1, 2, 0).astype(np.float64),
        "pos_gt_src": part.transpose(1, 2, 0).astype(np.float64),
        "headboxes_src": boxes.transpose(0, 2, 1),
        "dataset_joints": names,
    })
    return {"part": part, "missing": missing, "visible": visible, "center": center, "boxes": boxes}


def struct_array(fields, rows) -> np.ndarray:
    arr = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        arr[0, i] = tuple(row)
    return arr


def run_official(eval_checkout: Path, gt: dict, out: Path, scratch: Path, octave: str) -> dict:
    """evalMPII.m in Octave, on a RELEASE annolist with one image per person (index k, person 0)."""
    run = scratch / "eval-mpii-pose"
    shutil.rmtree(run, ignore_errors=True)
    (run / "annot").mkdir(parents=True)
    (run / "preds" / "reference").mkdir(parents=True)
    for name in ("evalMPII.m", "getExpParamsNew.m"):
        shutil.copy(eval_checkout / name, run / name)
    shutil.copytree(eval_checkout / "eval", run / "eval")
    (run / "plotCurveNew.m").write_text("function plotCurveNew(varargin)\nend\n")  # no display here
    for name in PREDICTIONS:
        shutil.copy(out / name, run / "preds" / "reference" / name)
    annolist = []
    for k in range(len(PEOPLE)):
        points = [(j, float(gt["part"][k, j, 0]), float(gt["part"][k, j, 1]), int(gt["visible"][k, j]))
                  for j in range(16) if not gt["missing"][k, j]]
        (x1, y1), (x2, y2) = gt["boxes"][0, k], gt["boxes"][1, k]
        rect = (x1, y1, x2, y2, {"point": struct_array(("id", "x", "y", "is_visible"), points)},
                {"x": float(gt["center"][k, 0]), "y": float(gt["center"][k, 1])})
        annorect = struct_array(("x1", "y1", "x2", "y2", "annopoints", "objpos"), [rect])
        annolist.append(({"name": f"person{PEOPLE[k]}.jpg"}, annorect))
    single = np.empty((len(PEOPLE), 1), dtype=object)
    single[:, 0] = [np.array([[1.0]])] * len(PEOPLE)
    release = {"annolist": struct_array(("image", "annorect"), annolist), "single_person": single}
    scipy.io.savemat(run / "annot" / "mpii_human_pose_v1_u12_1.mat", {"RELEASE": release})
    with h5py.File(run / "annot" / "valid.h5", "w") as f:
        f["index"] = np.arange(len(PEOPLE), dtype=np.float64)
        f["person"] = np.zeros(len(PEOPLE))
    script = ("evalMPII; for i = 1:numel(PRED_IDS), p = getExpParamsNew(PRED_IDS(i)); "
              "printf('RESULT %s', p.predFilename); printf(' %.12f', pckAll(end, :, i)); "
              "printf(' %.12f\\n', area_under_curve(scale01(range), pckAll(:, end, i))); end")
    done = subprocess.run([octave, "--no-gui", "--quiet", "--eval", script], cwd=run, capture_output=True,
                          text=True, check=True)
    rows = re.findall(r"^(.+?)& ([\d. &]+) \\\\", done.stdout, flags=re.M)
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            _, path, *numbers = line.split()
            values = [float(v) for v in numbers]
            per_joint, auc = values[:16], values[16]
            table = {k: (per_joint[a] + per_joint[b]) / 2 for k, (a, b) in OFFICIAL_COLUMNS.items()}
            table.update(ubody=per_joint[14], total=per_joint[15], auc=auc)
            results[Path(path).name] = {"per_joint": per_joint, "table": table}
    for (label, numbers), name in zip(rows, PREDICTIONS):
        printed = [float(v) for v in numbers.split("&")]
        table = results[name]["table"]
        assert np.allclose(printed, [table[k] for k in list(table)[:9]], atol=0.051), (label, printed, table)
        results[name]["printed"] = f"{label.strip()}& {numbers}"
    assert sorted(results) == sorted(PREDICTIONS), done.stdout
    return results


def run_tompson(pose_checkout: Path, out: Path, scratch: Path) -> dict:
    """eval_PCKh.py's main() in a scratch folder laid out as it expects (evaluation/data/...)."""
    run = scratch / "pytorch-pose"
    shutil.rmtree(run, ignore_errors=True)
    (run / "evaluation" / "data").mkdir(parents=True)
    shutil.copy(out / "detections_our_format.mat", run / "evaluation" / "data")
    index = (PEOPLE + 1).astype(np.uint16)[None]
    scipy.io.savemat(run / "evaluation" / "data" / "detections.mat", {"RELEASE_img_index": index})  # debug only
    skimage = types.ModuleType("skimage")
    skimage.io = types.ModuleType("skimage.io")
    sys.modules.update({"skimage": skimage, "skimage.io": skimage.io})
    sys.path.insert(0, str(pose_checkout / "evaluation"))
    import eval_PCKh  # the real code

    results = {}
    for name in PREDICTIONS:
        mat = run / f"{Path(name).stem}.mat"
        scipy.io.savemat(mat, {"preds": matlab_view(out / name)})
        seen = {}

        def keep_locals(frame, event, arg, seen=seen):
            if event == "return" and frame.f_code is eval_PCKh.main.__code__:
                seen.update(frame.f_locals)

        printed = io.StringIO()
        with contextlib.chdir(run), contextlib.redirect_stdout(printed):
            sys.setprofile(keep_locals)
            try:
                eval_PCKh.main(argparse.Namespace(result=str(mat)))
            finally:
                sys.setprofile(None)
        per_joint = [float(v) for v in np.ma.getdata(seen["PCKh"])]
        table = {k: float(np.mean([per_joint[j] for j in idx])) for k, idx in TOMPSON_COLUMNS.items()}
        table["mean"] = float(np.mean(seen["PCKh"]))
        line = printed.getvalue().strip().splitlines()[-1]
        assert np.allclose([float(v) for v in line.split()], list(table.values()), atol=0.0051), (line, table)
        results[name] = {"per_joint": per_joint, "table": table, "printed": line}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-mpii-pose", type=Path, required=True, help="checkout of anibali/eval-mpii-pose")
    parser.add_argument("--pytorch-pose", type=Path, required=True, help="checkout of bearpaw/pytorch-pose")
    parser.add_argument("--commits", nargs=2, required=True, metavar=("EVAL_MPII_POSE", "PYTORCH_POSE"))
    parser.add_argument("--valid", type=Path, default=HERE.parents[3] / "shared" / "data" / "mpii" / "valid.h5")
    parser.add_argument("--scratch", type=Path, default=None, help="where the evaluations run (default: temp)")
    parser.add_argument("--octave", default="octave-cli")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="hgstudy-parity-"))
    gt = write_fixtures(args.eval_mpii_pose.resolve(), args.valid, args.out)
    official = run_official(args.eval_mpii_pose.resolve(), gt, args.out, scratch, args.octave)
    tompson = run_tompson(args.pytorch_pose.resolve(), args.out, scratch)
    expected = {
        "people": "rows 0, 30, ..., 2940 of pose-hg-train's MPII valid.h5 (PEOPLE in make_fixture.py)",
        "official": {"code": "evalMPII.m of https://github.com/anibali/eval-mpii-pose (GNU Octave)",
                     "commit": args.commits[0], "results": official},
        "tompson": {"code": "evaluation/eval_PCKh.py of https://github.com/bearpaw/pytorch-pose",
                    "commit": args.commits[1], "results": tompson},
    }
    (args.out / "expected_pckh.json").write_text(json.dumps(expected, indent=1) + "\n")
    for name in PREDICTIONS:
        print(name, "official", official[name]["printed"], "| tompson", tompson[name]["printed"])


if __name__ == "__main__":
    main()
