"""``colorlib evaluate``, ``colorlib benchmark`` and ``colorlib study``, and what every command
shares: :class:`UserError`, :func:`device_option` and :func:`open_model`.

    colorlib evaluate --data ../shared/data/miniplaces/val.tar.gz --gray --model miniplaces-full \\
        --out report.json --markdown report.md
    colorlib benchmark --sizes 224 512
    colorlib study class-answers/ --plot figure5.png      # merge a class's user-study CSVs

Added by :func:`colorlib.cli.build_parser` (:data:`COMMANDS`); :mod:`colorlib.cli` imports this
module, never the other way round. Every file written here goes through :mod:`colorlib.io`: it
appears whole or not at all, and its place is checked before any work.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .benchmark import DEFAULT_SIZES, format_table, run_benchmark
from .checkpoint import CheckpointError, load_model, resolve_model_path
from .data import DataError
from .device import DEVICE_HELP, resolve_device
from .evaluate import Answer, load_eval_set, score_set, split_gain
from .infer import output_gain
from .io import WriteError, check_writable, write_json, write_text
from .model import Colorizer, fold_batchnorm
from .report import build_report, markdown
from .study import StudyError, load_answers, naturalness, plot_figure5, save_figure


class UserError(Exception):
    """A mistake in the command line found before any work: printed as one line, exit status 2."""


def device_option(name: str) -> str:
    """argparse ``type=`` of every ``--device``: a name :func:`colorlib.device.resolve_device`
    accepts (``cpu``, ``cuda``, ``cuda:N``, ``auto``, ``mps`` where PyTorch has it), lower-cased.
    Any other name, or a GPU this PyTorch cannot see, is a usage error before any work."""
    try:
        resolve_device(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name.strip().lower()


def open_model(spec: str, device: str = "cpu") -> Colorizer:
    """:func:`colorlib.checkpoint.load_model`, with a file it refuses as a :class:`UserError`."""
    try:
        return load_model(spec, resolve_device(device))
    except CheckpointError as e:
        raise UserError(str(e)) from None


def check_outputs(*paths: str | Path | None) -> list[Path]:
    """The given output files, each checked now (:func:`colorlib.io.check_writable`); raises
    :class:`UserError` for a place that cannot be written or a file named twice."""
    given = [Path(p) for p in paths if p]
    for p in given:
        try:
            check_writable(p)
        except WriteError as e:
            raise UserError(str(e)) from None
    if len({p.resolve() for p in given}) < len(given):
        raise UserError("the same file is named for two outputs")
    return given


# -- evaluate ---------------------------------------------------------------------------------
def _command_line(a: argparse.Namespace) -> str:
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


def _answers(a: argparse.Namespace, device) -> list[Answer]:
    """The gray answer (with --gray) and each --model NAME[@GAIN], batch norm folded, on ``device``."""
    answers = [Answer("gray")] if a.gray else []
    for spec in a.model:
        name, saturation = _model_spec(spec)
        model = open_model(name)
        classes = model.meta.get("classes") if model.classifier is not None else None
        try:
            gain = output_gain(model, saturation)
        except ValueError as e:
            raise UserError(f"{spec}: {e}") from None
        answers.append(Answer(spec, fold_batchnorm(model).to(device), classes, gain))
    return answers


def cmd_evaluate(a: argparse.Namespace) -> None:
    # OMP_WAIT_POLICY=PASSIVE for this command is set where colorlib.cli starts, before torch loads.
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
                          per_image=a.per_image, command=_command_line(a))
    table = markdown(report)
    _write_json(a.out, report, indent=None if a.per_image else 1)
    if a.markdown:
        write_text(a.markdown, table)
    if not a.quiet:
        print(table)
        also = f" and {a.markdown}" if a.markdown else ""
        print(f"wrote {a.out}{also} in {report['wall_s']:.0f} s")


def _write_json(path: str | Path, obj, indent: int | None = 1) -> None:
    """:func:`colorlib.io.write_json`; a NaN or infinity in ``obj`` is a :class:`WriteError` too
    (strict JSON never holds them), so it is reported in one line like a full disk."""
    try:
        write_json(path, obj, indent=indent)
    except ValueError as e:
        raise WriteError(f"could not write {path}: {e} (NaN or infinity; strict JSON has neither)") from None


def _model_spec(spec: str) -> tuple[str, float | None]:
    """:func:`colorlib.evaluate.split_gain`, except that an existing file or folder is taken
    whole (a run folder may be called ``seed@1``)."""
    return (spec, None) if Path(spec).exists() else split_gain(spec)


def add_evaluate(sub) -> None:
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
                        "as colorize outputs it (a*b* times the model's saturation gain); NAME@raw "
                        "scores the network's own output (gain 1.0), NAME@1.3 any other gain")
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


# -- benchmark --------------------------------------------------------------------------------
def cmd_benchmark(a: argparse.Namespace) -> None:
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
        _write_json(a.json, result)
        print(f"wrote {a.json}")


def add_benchmark(sub) -> None:
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


# -- study ------------------------------------------------------------------------------------
def _finite(x: float) -> float | None:
    return None if x != x else round(x, 2)  # NaN (no trials of a condition) -> null


def _check_plot_format(path: str | None) -> None:
    if not path:
        return
    try:  # matplotlib is heavy and optional (only --plot needs it): imported here, when asked for
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UserError("--plot needs matplotlib (pip install matplotlib)") from None
    formats = FigureCanvasBase.get_supported_filetypes()
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in formats:
        raise UserError(f"cannot tell the image format of --plot {path}: give a name ending in "
                        f".png, .pdf or .svg (or any of {', '.join(sorted(formats))})")


def cmd_study(a: argparse.Namespace) -> None:
    check_outputs(a.plot, a.json)
    _check_plot_format(a.plot)
    try:
        answers = load_answers(a.answers)  # prints "warning: file:line: why" for each row skipped
    except StudyError as e:
        raise UserError(str(e)) from None
    if not answers.rows:
        raise UserError(f"no valid answers in {a.answers} ({len(answers.warnings)} rows skipped)")
    result = naturalness(answers)
    print(f"{len(answers.rows)} answers from {len(result.participants)} participants in "
          f"{len(answers.files)} file(s); {len(answers.warnings)} rows skipped\n")
    print(result)
    if a.plot:
        save_figure(plot_figure5(result), a.plot)
        print(f"wrote {a.plot}")
    if a.json:
        report = dict(files=[str(f) for f in answers.files], skipped=answers.warnings,
                      median={c: _finite(v) for c, v in result.median.items()},
                      rates={p: {c: _finite(v) for c, v in r.items()} for p, r in result.rates.items()},
                      counts={p: {c: list(n) for c, n in cs.items()} for p, cs in result.counts.items()})
        _write_json(a.json, report)
        print(f"wrote {a.json}")


def add_study(sub) -> None:
    s = sub.add_parser("study", help="analyse naturalness user-study answers (Figure 5), one CSV or a class",
                       description="Merge the answer CSVs of the naturalness user study (written by "
                                   "colorlib.study / the book's chapter 7; every *.csv under a folder, "
                                   "subfolders too) and print each participant's percentage of 'natural' "
                                   "answers per condition, the medians and the paper's (Figure 5). "
                                   "Damaged rows are skipped and reported as file:line.")
    s.add_argument("answers", metavar="CSV_OR_FOLDER")
    s.add_argument("--plot", metavar="PNG", help="save the Figure 5 box plot here")
    s.add_argument("--json", metavar="FILE", help="write rates, counts, medians and skipped rows here")
    s.set_defaults(func=cmd_study)


COMMANDS = (add_evaluate, add_benchmark, add_study)  # colorlib.cli.build_parser adds them
