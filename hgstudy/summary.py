"""Parameter and FLOP counts of a model configuration (`hgstudy summary`)."""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from hgstudy.model import HourglassConfig, StackedHourglass


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
    parser.add_argument("--stacks", type=int, default=8)
    parser.add_argument("--modules", type=int, default=1)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--joints", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--input-res", type=int, default=256)
    parser.add_argument("--stem-channels", type=int, nargs=2, metavar=("C1", "C2"), default=None)
    parser.add_argument("--decoder-heads", action="store_true", help="HG-Int: heatmap heads inside the decoder")
    parser.add_argument("--json", action="store_true", help="print a JSON object with keys params, gflops")


def main(args) -> None:
    config = HourglassConfig(
        stacks=args.stacks, modules=args.modules, features=args.features, joints=args.joints,
        depth=args.depth, input_res=args.input_res,
        stem_channels=tuple(args.stem_channels) if args.stem_channels else None,
        decoder_heads=args.decoder_heads,
    )
    result = summarize(config)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"parameters  {result['params']:,}")
        print(f"GFLOPs      {result['gflops']:.2f}  (forward, one {config.input_res}x{config.input_res} image)")
