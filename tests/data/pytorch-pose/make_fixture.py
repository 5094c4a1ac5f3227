"""GENERATOR, not part of the test suite: writes the model fixtures in this folder by running the real
bearpaw/pytorch-pose `hg` model (pose/models/hourglass.py), which it loads from a checkout given on the command
line (nothing of that project is copied here; the project is not a dependency of hgstudy).

    python tests/data/pytorch-pose/make_fixture.py CHECKOUT --commit HASH

CHECKOUT holds the project's `pose/models/hourglass.py` (a clone, or just that file; it is loaded by path, so
the rest of the `pose` package and its requirements are not needed). Real checkpoints of these models are tens
of MB, so a fixture stores how to rebuild one instead: the model's state-dict keys, shapes and dtypes as the
real code creates them, and for each tensor a range from which its values are drawn by a seeded generator
(`draw`, repeated in tests/model/test_weights.py). Every BatchNorm gets random running statistics, so a wrong
mapping cannot hide behind defaults. Each `<name>.json` (manifest) comes with `<name>_heatmaps.npy`, the real
model's outputs (stacked: batch, stack, joint, y, x) in eval mode for the input `draw` gives (stream 0).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # fixture_state.py, shared by the generators
from fixture_state import SEED, draw, dump, random_state  # noqa: E402

REPOSITORY = "https://github.com/bearpaw/pytorch-pose"


def manifest_of(model: torch.nn.Module, description: str, commit: str, input_shape) -> tuple[dict, dict]:
    entries, state, digest = random_state(model)
    manifest = {
        "repository": REPOSITORY, "commit": commit, "license": "GPL-3.0", "model": description,
        "generator": "tests/data/pytorch-pose/make_fixture.py", "seed": SEED,
        "checkpoint": {"prefix": "module.", "entries": ["epoch", "arch", "state_dict", "best_acc", "optimizer"]},
        "input": {"shape": list(input_shape), "layout": "NCHW", "low": 0.0, "high": 1.0, "stream": 0},
        "state": entries, "sha256": digest,
    }
    return manifest, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="folder with pose/models/hourglass.py of pytorch-pose")
    parser.add_argument("--commit", required=True, help="commit of the checkout (recorded in the manifests)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    path = args.checkout.resolve() / "pose" / "models" / "hourglass.py"
    spec = importlib.util.spec_from_file_location("pytorch_pose_hourglass", path)
    hourglass = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hourglass)  # the real code

    images = draw(0, (2, 3, 64, 64), 0.0, 1.0, "float32")
    for stacks, blocks in ((1, 1), (2, 1), (1, 2)):
        torch.manual_seed(0)
        model = hourglass.hg(num_stacks=stacks, num_blocks=blocks, num_classes=16)
        name = f"hg_s{stacks}_b{blocks}"
        manifest, state = manifest_of(model, f"hg(num_stacks={stacks}, num_blocks={blocks}, num_classes=16)",
                                      args.commit, tuple(images.shape))
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            heatmaps = torch.stack(model(images), 1)  # (2, stacks, 16, 16, 16)
        manifest["output_shape"] = list(heatmaps.shape)
        np.save(args.out / f"{name}_heatmaps.npy", heatmaps.numpy())
        (args.out / f"{name}.json").write_text(dump(manifest))
        print(f"wrote {name}: heatmaps {tuple(heatmaps.shape)}, max |value| {heatmaps.abs().max():.4g}")


if __name__ == "__main__":
    main()
