"""``colorlib classify``: the scene classes the network sees in each photo's grayscale version.

    colorlib classify photo.jpg
    colorlib classify scans/ --json --top 3
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from ..device import DEVICE_HELP
from ..infer import classify
from ..model import fold_batchnorm
from .common import (
    DEFAULT_MODEL,
    Input,
    UserError,
    device_option,
    image_inputs,
    open_model,
    printable,
    run_each,
)


def cmd_classify(a: argparse.Namespace) -> None:
    """Print each input's top ``a.top`` classes (section 3.3's head on its L*); exit status 1 when
    any input failed (each named on stderr), 2 for a baseline model or ``--top`` below 1."""
    if a.top < 1:
        raise UserError("--top must be at least 1")
    inputs = image_inputs(a.images)
    model = fold_batchnorm(open_model(a.model, a.device))  # once for every photo (section 3.4)
    if model.classifier is None:
        raise UserError(f"{a.model} is a baseline model: it has no classifier (no global features); "
                        "use miniplaces-full or a sweep-alpha-* model")
    untrained = _untrained_head(model)
    if untrained:
        print(f"colorlib classify: note: {printable(a.model)} {untrained}: its classification head is "
              "untrained, so its classes mean nothing", file=sys.stderr)

    def work(item: Input) -> None:
        ranked = classify(model, item.source(), a.top)
        if not all(math.isfinite(p) for _, p in ranked):
            raise ValueError(f"{item.label}: the model gave a probability that is not a number (NaN)")
        ranked = [(name, round(p, 4)) for name, p in ranked]
        if a.json:
            # the key says what was asked (--top K), on every line alike, even where fewer classes exist
            print(json.dumps({"file": item.name, f"top{a.top}": ranked}, allow_nan=False))
        else:
            print(item.label)
            for rank, (name, p) in enumerate(ranked, 1):
                print(f"  {rank}. {printable(name):<28} {p:6.1%}")  # a model file's text, never raw

    failed = run_each("classify", inputs, work, progress=False)  # each result is its own progress
    if failed or len(inputs) > 1:
        print(f"colorlib classify: {len(inputs) - failed} classified, {failed} failed", file=sys.stderr)
    if failed:
        sys.exit(1)


def _untrained_head(model) -> str | None:
    """Why ``model``'s classifier was never trained (None when it was): a run on photos without
    class labels (a plain folder: no class names, the class loss off), or alpha 0 in Eq. 6."""
    meta = getattr(model, "meta", {}) or {}
    if meta.get("classes") == []:  # what train records for photos without labels
        return "was trained without class labels (no class names)"
    if (meta.get("train") or {}).get("alpha") == 0:
        return "was trained with alpha 0 (no classification loss, Eq. 6)"
    return None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib classify`` and its options."""
    c = sub.add_parser("classify", help="scene classes of photos, from their grayscale version",
                       description="The classification head (section 3.3) on each image's L*: the "
                                   "top classes with their probabilities. Every input that can be read "
                                   "is classified; each one that cannot gets one line on stderr, and "
                                   "the exit status is then 1.")
    c.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, folders (their image files), or - for one image from standard input")
    c.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"a model with a classifier (default {DEFAULT_MODEL})")
    c.add_argument("--top", type=int, default=5,
                   help="how many classes (default 5; at most the model's number of classes are listed)")
    c.add_argument("--json", action="store_true",
                   help='one line per image: {"file": ..., "top5": [[class, probability], ...]} '
                        "(the key is topK for --top K, as asked; a model with fewer than K classes "
                        "lists all of them under it); failures go to stderr")
    c.add_argument("--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    c.set_defaults(func=cmd_classify)
