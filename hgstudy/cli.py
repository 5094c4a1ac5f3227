"""`hgstudy` command line: one subcommand per module, each exposing add_arguments(parser) and main(args)."""

from __future__ import annotations

import argparse
import importlib
import sys

from hgstudy.errors import UserError

# name -> (module, one-line help). Modules are imported only when their subcommand runs,
# so `hgstudy score` does not pay for importing torch.
COMMANDS = {
    "summary": ("hgstudy.summary", "parameters and forward GFLOPs of a model configuration"),
    "import-weights": ("hgstudy.weights", "convert a published PyTorch checkpoint into an hgstudy checkpoint"),
    "render": ("hgstudy.data.render_cli", "draw rendered dataset samples with their joints, and a contact sheet"),
    "download": ("hgstudy.download", "fetch, verify and extract MPII or FLIC from their official locations"),
    "bench": ("hgstudy.bench", "benchmarks: `bench data` (data pipeline samples/s), `bench model` (images/s)"),
    "score": ("hgstudy.score", "score a prediction file on MPII (PCKh, AUC) or FLIC (PCK, PDJ)"),
    "train": ("hgstudy.train", "train a stacked hourglass model (resumes from --out; torchrun for several GPUs)"),
    "evaluate": ("hgstudy.evaluate", "predict a split with flip test and score it (every stack); save preds"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hgstudy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(func=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        status = args.func(args)
    except UserError as exc:
        print(f"hgstudy {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
