"""GENERATOR, not part of the test suite: writes the fixtures in this folder by running the real
princeton-vl/pytorch_stacked_hourglass model code, which it imports from a checkout given on the command line
(nothing of that project is copied here; the project is not a dependency of hgstudy).

    python tests/data/pytorch_stacked_hourglass/make_fixture.py CHECKOUT --commit HASH

CHECKOUT holds the project's `models/posenet.py`, `models/layers.py` and `task/loss.py` (a clone, or just those
files). Real checkpoints of these models are tens of MB, so a fixture stores how to rebuild one instead: the
model's state-dict keys, shapes and dtypes as the real code creates them, and for each tensor a range from which
its values are drawn by a seeded generator (`draw`, repeated in tests/model/test_weights.py). Every BatchNorm gets
random running statistics, so a wrong mapping cannot hide behind defaults. Each `<name>.json` (manifest) comes
with `<name>_heatmaps.npy`, the real model's output in eval mode for the input `draw` gives (stream 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # fixture_state.py, shared by the generators
from fixture_state import SEED, draw, dump, random_state  # noqa: E402

REPOSITORY = "https://github.com/princeton-vl/pytorch_stacked_hourglass"


def manifest_of(model: torch.nn.Module, description: str, commit: str, input_shape) -> tuple[dict, dict]:
    entries, state, digest = random_state(model)
    manifest = {
        "repository": REPOSITORY, "commit": commit, "license": "BSD-3-Clause", "model": description,
        "generator": "tests/data/pytorch_stacked_hourglass/make_fixture.py", "seed": SEED,
        "checkpoint": {"prefix": "model.module.", "entries": ["state_dict", "optimizer", "epoch"]},
        "input": {"shape": list(input_shape), "layout": "NHWC", "low": 0.0, "high": 1.0, "stream": 0},
        "state": entries, "sha256": digest,
    }
    return manifest, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="folder with models/posenet.py of pytorch_stacked_hourglass")
    parser.add_argument("--commit", required=True, help="commit of the checkout (recorded in the manifests)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))
    from models.posenet import PoseNet  # the real code

    torch.manual_seed(0)
    model = PoseNet(2, 64, 16)
    manifest, state = manifest_of(model, "PoseNet(nstack=2, inp_dim=64, oup_dim=16)", args.commit, (2, 64, 64, 3))
    model.load_state_dict(state, strict=True)
    model.eval()
    images = draw(0, (2, 64, 64, 3), 0.0, 1.0, "float32")
    with torch.no_grad():
        heatmaps = model(images)  # (2, stacks, 16, 16, 16)
    manifest["output_shape"] = list(heatmaps.shape)
    np.save(args.out / "posenet_2x64_heatmaps.npy", heatmaps.numpy())
    (args.out / "posenet_2x64.json").write_text(dump(manifest))

    # `increase` > 0 widens the hourglass inside: hgstudy must refuse it by name (only the layout is needed).
    wide, _ = manifest_of(PoseNet(1, 32, 16, increase=16), "PoseNet(nstack=1, inp_dim=32, oup_dim=16, increase=16)",
                          args.commit, (1, 64, 64, 3))
    (args.out / "posenet_increase.json").write_text(dump(wide))
    print(f"wrote {args.out}: heatmaps {tuple(heatmaps.shape)}, max |value| {heatmaps.abs().max():.4g}")


if __name__ == "__main__":
    main()
