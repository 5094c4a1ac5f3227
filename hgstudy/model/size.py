"""Parameter and FLOP counts of a model configuration (`hgstudy summary`)."""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from hgstudy.core.fields import add_arguments as add_arguments_for
from hgstudy.core.fields import arguments_given
from hgstudy.model.network import HourglassConfig, StackedHourglass


def summarize(config: HourglassConfig) -> dict:
    """{'params': int, 'gflops': float}: forward FLOPs of one image, 2 per multiply-add (convs only)."""
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = StackedHourglass(config).eval()
        image = torch.empty(1, 3, config.input_res, config.input_res)
    counter = FlopCounterMode(display=False)
    with counter:
        model(image, return_decoder=config.decoder_heads)
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "gflops": counter.get_total_flops() / 1e9}


def add_arguments(parser) -> None:
    add_arguments_for(parser, HourglassConfig, title="model (values are YAML: --stem-channels [16, 32])")
    parser.add_argument("--json", action="store_true", help="print a JSON object with keys params, gflops")


def main(args) -> None:
    config = HourglassConfig.from_dict(arguments_given(args, HourglassConfig), "model flags")
    result = summarize(config)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"parameters  {result['params']:,}")
        print(f"GFLOPs      {result['gflops']:.2f}  (forward, one {config.input_res}x{config.input_res} image)")
