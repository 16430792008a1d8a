"""``colorlib benchmark``: seconds per image by size, beside the paper's Table 3.

    colorlib benchmark --sizes 224 512 --json runtime.json
"""

from __future__ import annotations

import argparse

from ..benchmark import DEFAULT_SIZES, format_table, run_benchmark
from ..checkpoint import CheckpointError, resolve_model_path
from ..device import DEVICE_HELP, resolve_device
from .common import UserError, check_outputs, device_option, write_strict_json


def cmd_benchmark(a: argparse.Namespace) -> None:
    """Time the network at each of ``a.sizes``; print the table, and write it as JSON (``--json``)."""
    if any(s < 8 for s in a.sizes):
        raise UserError("--sizes must be at least 8 pixels")
    if a.repeats < 1:
        raise UserError("--repeats must be at least 1")
    if a.model != "paper":
        try:
            resolve_model_path(a.model)
        except CheckpointError as e:
            raise UserError(str(e)) from None
    check_outputs(a.json)
    device = resolve_device(a.device)
    result = run_benchmark(a.model, a.sizes, a.repeats, str(device), a.budget, progress=not a.quiet)
    print(format_table(result))
    if a.json:
        write_strict_json(a.json, result)
        print(f"wrote {a.json}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib benchmark`` and its options."""
    b = sub.add_parser("benchmark", help="seconds per image by size, beside the paper's Table 3",
                       description="Time the network (with and without batch norm folded) at each "
                                   "size, each size in a fresh process for its peak memory.")
    b.add_argument("--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    b.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), metavar="N",
                   help="square image sides (default: the paper's 224 512 1024 2048)")
    b.add_argument("--model", default="paper",
                   help="'paper' (Table 1 network, random weights, real batch-norm statistics) or a "
                        "shipped model name / weights file")
    b.add_argument("--repeats", type=int, default=10, help="timed runs per size after a warm-up (default 10)")
    b.add_argument("--budget", type=float, default=30.0,
                   help="seconds of timed runs per size and variant before stopping early (default 30)")
    b.add_argument("--json", help="write the figures here")
    b.add_argument("-q", "--quiet", action="store_true")
    b.set_defaults(func=cmd_benchmark)
