"""``colorlib benchmark``: seconds per image by size, beside the paper's Table 3.

    colorlib benchmark --sizes 224 512 --json runtime.json
"""

from __future__ import annotations

import argparse
import math

from ..benchmark import DEFAULT_SIZES, format_table, run_benchmark
from ..checkpoint import CheckpointError, resolve_model_path
from ..device import DEVICE_HELP, resolve_device
from .common import UserError, available_memory, check_outputs, device_option, write_strict_json


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
    if not (math.isfinite(a.budget) and a.budget >= 0):  # 0: one timed run after the warm-up
        raise UserError(f"--budget must be a number of seconds, 0 or more, got {a.budget}")
    check_outputs(a.json)
    device = resolve_device(a.device)
    if device.type == "cpu":
        _check_memory(a.model, a.sizes)
    result = run_benchmark(a.model, a.sizes, a.repeats, str(device), a.budget, progress=not a.quiet)
    print(format_table(result))
    if a.json:
        write_strict_json(a.json, result)
        print(f"wrote {a.json}")


def _check_memory(spec: str, sizes: list[int]) -> None:
    """Refuse a size whose network needs more memory than this machine has free now
    (:func:`colorlib.infer.estimate_memory`): its worker would be killed, or take the machine's
    memory from everything else, after the smaller sizes had been timed (found by a break test:
    ``--sizes 100000`` asks for about 2 TB)."""
    free = available_memory()
    if free is None:
        return
    import torch

    from ..checkpoint import load_model
    from ..infer import estimate_memory
    from ..model import Colorizer, ModelConfig

    if spec == "paper":
        with torch.device("meta"):  # only its config and dtype count
            net = Colorizer(ModelConfig())
    else:
        net = load_model(spec)
    for size in sorted(set(sizes), reverse=True):
        need = estimate_memory(net, size, size, None)
        if need > free:
            raise UserError(f"--sizes {size}: the network on a {size}x{size} image needs about "
                            f"{need / 1e9:,.1f} GB; this machine has {free / 1e9:,.1f} GB free")


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
