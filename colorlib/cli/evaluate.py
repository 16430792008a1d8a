"""``colorlib evaluate``: score models (and the gray answer) on held-out photos.

    colorlib evaluate --data ../shared/data/miniplaces/val.tar.gz --gray --model miniplaces-full \\
        --out report.json --markdown report.md

OpenMP's wait policy for this command is set in :mod:`colorlib.cli`, before torch loads.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..data import DataError
from ..device import DEVICE_HELP, resolve_device
from ..evaluate import Candidate, load_eval_set, score_set, split_saturation
from ..infer import resolve_saturation
from ..io import write_text
from ..model import fold_batchnorm
from ..report import build_report, markdown
from .common import UserError, available_memory, check_outputs, device_option, open_model, write_strict_json


def command_line(a: argparse.Namespace) -> str:
    """The ``colorlib evaluate`` command that repeats this run, as the report records it."""
    parts = ["colorlib evaluate", "--data", str(a.data)] + [f"--model {m}" for m in a.model]
    parts += ["--gray"] * a.gray + ["--out", a.out] + (["--markdown", a.markdown] if a.markdown else [])
    for flag in ("limit", "size", "batch_size"):
        if getattr(a, flag) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(a, flag))]
    return " ".join(parts + ["--per-image"] * a.per_image + [f"--device {a.device}"])


def _check_evaluate_options(a: argparse.Namespace) -> None:
    if not a.model and not a.gray:
        raise UserError("nothing to evaluate: give --model NAME (once per model) and/or --gray")
    outputs = [Path(a.out)] + ([Path(a.markdown)] if a.markdown else [])
    for p in outputs:
        if p.exists() and not a.force:
            raise UserError(f"{p} exists; pass --force to overwrite it")
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise UserError("--out and --markdown name the same file")
    check_outputs(*outputs)
    for flag, low in (("limit", 1), ("batch_size", 1), ("size", 8)):
        if getattr(a, flag) is not None and getattr(a, flag) < low:
            raise UserError(f"--{flag.replace('_', '-')} must be at least {low}")
    if len(set(a.model)) != len(a.model) or (a.gray and "gray" in a.model):
        raise UserError("a model is named twice")
    if a.size is not None and resolve_device(a.device).type == "cpu":
        _check_memory(a)


def _check_memory(a: argparse.Namespace) -> None:
    """Refuse a ``--size`` that needs more memory than this machine has free (found by a break
    test: ``--size 100000`` decoded photos at 30 GB each until it was killed). A lower bound:
    the photos decoded (``--limit`` of them, else one) at 3 bytes a pixel, and with a model
    a batch of them through the network (:func:`colorlib.infer.estimate_memory`, shipped width)."""
    free = available_memory()
    if free is None:
        return
    import torch

    from ..infer import estimate_memory
    from ..model import Colorizer, ModelConfig

    n = a.limit or 1
    need = a.size * a.size * 3 * n
    if a.model:
        with torch.device("meta"):  # only its width and dtype count
            net = Colorizer(ModelConfig.preset("miniplaces"))
        need += estimate_memory(net, a.size, a.size, None) * min(a.batch_size, a.limit or a.batch_size)
    if need > free:
        raise UserError(f"--size {a.size}: this evaluation needs at least {need / 1e9:,.1f} GB; this machine "
                        f"has {free / 1e9:,.1f} GB free (give a smaller --size, --batch-size or --limit)")


def _answers(a: argparse.Namespace, device) -> list[Candidate]:
    """The gray answer (with --gray) and each --model NAME[@S], batch norm folded, on ``device``."""
    answers = [Candidate("gray")] if a.gray else []
    for spec in a.model:
        name, saturation = model_spec(spec)
        model = open_model(name)
        classes = model.meta.get("classes") if model.classifier is not None else None
        try:
            saturation = resolve_saturation(model, saturation)
        except ValueError as e:
            raise UserError(f"{spec}: {e}") from None
        answers.append(Candidate(spec, fold_batchnorm(model).to(device), classes, saturation))
    return answers


def cmd_evaluate(a: argparse.Namespace) -> None:
    """Score every answer on the images of ``a.data``; write the JSON report (and Markdown table)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    _check_evaluate_options(a)
    device = resolve_device(a.device)
    answers = _answers(a, device)
    nets = [x.net for x in answers if x.net is not None]
    size = a.size or (nets[0].cfg.global_size if nets else 224)
    try:
        images = load_eval_set(a.data, size, a.limit, progress=not a.quiet)
    except DataError as e:
        raise UserError(str(e)) from None
    scores = score_set(answers, images, a.batch_size, device, progress=not a.quiet)
    report = build_report(images, answers, scores, size=size, wall_s=time.perf_counter() - start,
                          cpu_s=time.process_time() - cpu_start, device=str(device),
                          per_image=a.per_image, command=command_line(a))
    table = markdown(report)
    write_strict_json(a.out, report, indent=None if a.per_image else 1)
    if a.markdown:
        write_text(a.markdown, table)
    if not a.quiet:
        print(table)
        also = f" and {a.markdown}" if a.markdown else ""
        print(f"wrote {a.out}{also} in {report['wall_s']:.0f} s")


def model_spec(spec: str) -> tuple[str, float | None]:
    """``--model NAME[@S]`` -> (name, saturation or None): :func:`colorlib.evaluate.split_saturation`,
    except that an existing file or folder is taken whole (a run folder may be called ``seed@1``)."""
    return (spec, None) if Path(spec).exists() else split_saturation(spec)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib evaluate`` and its options."""
    e = sub.add_parser(
        "evaluate", help="score models (and the gray answer) on held-out photos: PSNR, SSIM, "
                         "CIEDE2000, AuC, colourfulness, top-1/top-5",
        description="Decode the photos once, run every model on their L* (batch norm folded) and "
                    "score the 8-bit results against the originals. Images with a gray truth are "
                    "skipped for colour metrics (and counted); top-1/top-5 use every labelled image.")
    e.add_argument("--data", required=True,
                   help="MiniPlaces val.tar.gz (labels from val.txt beside it), a MiniPlaces folder, "
                        "a folder of images (labelled by class-named subfolders), or a .txt list of files")
    e.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="shipped model name, weights file or run folder; repeat for several. Scored "
                        "as colorize outputs it (a*b* times the model's saturation); NAME@raw "
                        "scores the network's own output (saturation 1.0), NAME@1.3 any other saturation")
    e.add_argument("--gray", action="store_true", help="also score the trivial answer a*b* = 0")
    e.add_argument("--out", required=True, help="JSON report (not overwritten without --force)")
    e.add_argument("--markdown", help="also write the table as Markdown here")
    e.add_argument("--per-image", action="store_true", help="add every image's figures to the JSON")
    e.add_argument("--limit", type=int, help="only the first N images")
    e.add_argument("--size", type=int, help="evaluate at SIZE x SIZE (default: the first model's "
                                            "global size, 128 for the shipped models; 224 with --gray only)")
    e.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    e.add_argument("--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    e.add_argument("--force", action="store_true", help="overwrite existing output files")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)
