"""`hgstudy` command line: one subcommand per module, each exposing add_arguments(parser) and main(args)."""

from __future__ import annotations

import argparse
import importlib
import sys

from hgstudy.core.errors import UserError

# name -> (module, one-line help). Modules are imported only when their subcommand runs,
# so `hgstudy score` does not pay for importing torch.
COMMANDS = {
    "summary": ("hgstudy.model.size", "parameters and forward GFLOPs of a model configuration"),
    "import-weights": ("hgstudy.model.weights", "convert a published PyTorch checkpoint into an hgstudy checkpoint"),
    "render": ("hgstudy.mannequin.cli", "draw rendered dataset samples with their joints, and a contact sheet"),
    "download": ("hgstudy.data.download", "fetch, verify and extract MPII or FLIC from their official locations"),
    "bench": (None, "benchmarks: `bench data` (data pipeline), `bench mannequin` (rendering), `bench model`"),
    "score": ("hgstudy.scoring.predictions", "score a prediction file on MPII (PCKh, AUC) or FLIC (PCK, PDJ)"),
    "train": ("hgstudy.engine.train", "train a stacked hourglass (resumes from --out; torchrun for several GPUs)"),
    "evaluate": ("hgstudy.engine.evaluate", "predict a split with flip test and score it (every stack); save preds"),
}

# `hgstudy bench <name>`: name -> (module, one-line help); each module has add_arguments(parser) and main(args).
BENCHMARKS = {
    "data": ("hgstudy.data.bench", "samples/s of the data pipeline on one core, against a naive per-pixel reference"),
    "mannequin": ("hgstudy.mannequin.cli", "samples/s of the mannequin renderer on one core"),
    "model": ("hgstudy.engine.bench", "training/inference images/s and peak memory of a model vs fp32 NCHW eager"),
}


def _add_benchmarks(parser, argv: list[str]) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name in argv:
            module = importlib.import_module(module_name)
            (module.add_bench_arguments if name == "mannequin" else module.add_arguments)(p)
            p.set_defaults(func=module.main_bench if name == "mannequin" else module.main)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hgstudy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted == "bench":
            _add_benchmarks(p, argv)
        elif name == wanted:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(func=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), "")  # as build_parser picks it
    try:
        args = build_parser(argv).parse_args(argv)  # imports the command's module: Ctrl-C may come here too
        status = args.func(args)
    except UserError as exc:
        print(f"hgstudy {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: the command's own line (where it stopped, what it kept), no traceback
        print(f"hgstudy {command}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
