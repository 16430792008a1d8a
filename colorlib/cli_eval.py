"""``colorlib evaluate``, ``colorlib classify``, ``colorlib benchmark`` and ``colorlib study``.

    colorlib evaluate --data ../shared/data/miniplaces/val.tar.gz --gray --model miniplaces-full \\
        --out report.json --markdown report.md
    colorlib classify photo.jpg --json
    colorlib benchmark --sizes 224 512
    colorlib study class-answers/ --plot figure5.png      # merge a class's user-study CSVs

Registered by :func:`register` at the end of :mod:`colorlib.cli`; this module imports the
CLI's helpers inside the command functions, so importing it never cycles back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def register(extra_commands: list) -> None:
    """Add this module's commands to ``colorlib.cli._EXTRA_COMMANDS``."""
    extra_commands += [add_evaluate, add_classify, add_benchmark, add_study]


# -- evaluate ---------------------------------------------------------------------------------
def _command_line(a: argparse.Namespace) -> str:
    parts = ["colorlib evaluate", "--data", str(a.data)] + [f"--model {m}" for m in a.model]
    parts += ["--gray"] * a.gray + ["--out", a.out] + (["--markdown", a.markdown] if a.markdown else [])
    for flag in ("limit", "size", "batch_size"):
        if getattr(a, flag) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(a, flag))]
    return " ".join(parts + ["--per-image"] * a.per_image + [f"--device {a.device}"])


def cmd_evaluate(a: argparse.Namespace) -> None:
    # The metric threads (scikit-image) run between torch's parallel regions on the same cores;
    # OpenMP workers that spin after each region would take the cores from them (read when
    # torch is first imported, so this works from the command line).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .cli import UserError, _device, _load
    from .data import DataError
    from .evaluate import Answer, load_eval_set, score_set
    from .infer import output_gain
    from .model import fold_batchnorm
    from .report import build_report, markdown

    start, cpu_start = time.perf_counter(), time.process_time()
    if not a.model and not a.gray:
        raise UserError("nothing to evaluate: give --model NAME (once per model) and/or --gray")
    outputs = [Path(a.out)] + ([Path(a.markdown)] if a.markdown else [])
    for p in outputs:
        if p.exists() and not a.force:
            raise UserError(f"{p} exists; pass --force to overwrite it")
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise UserError("--out and --markdown name the same file")
    for flag, low in (("limit", 1), ("batch_size", 1), ("size", 8)):
        if getattr(a, flag) is not None and getattr(a, flag) < low:
            raise UserError(f"--{flag.replace('_', '-')} must be at least {low}")
    if len(set(a.model)) != len(a.model) or (a.gray and "gray" in a.model):
        raise UserError("a model is named twice")
    device = _device(a.device)
    answers = [Answer("gray")] if a.gray else []
    for spec in a.model:
        name, saturation = _model_spec(spec)
        model = _load(name)
        classes = model.meta.get("classes") if model.classifier is not None else None
        try:
            gain = output_gain(model, saturation)
        except ValueError as e:
            raise UserError(f"{spec}: {e}") from None
        answers.append(Answer(spec, fold_batchnorm(model).to(device), classes, gain))
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
    for p in outputs:
        p.parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=None if a.per_image else 1) + "\n")
    table = markdown(report)
    if a.markdown:
        Path(a.markdown).write_text(table)
    if not a.quiet:
        print(table)
        print(f"wrote {a.out}" + (f" and {a.markdown}" if a.markdown else "") + f" in {report['wall_s']:.0f} s")


def _model_spec(spec: str) -> tuple[str, float | None]:
    """:func:`colorlib.evaluate.split_gain`, except that an existing file or folder is taken
    whole (a run folder may be called ``seed@1``)."""
    from .evaluate import split_gain

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
    e.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    e.add_argument("--force", action="store_true", help="overwrite existing output files")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)


# -- classify ---------------------------------------------------------------------------------
def cmd_classify(a: argparse.Namespace) -> None:
    import torch

    from .cli import UserError, _device, _load
    from .infer import luminance
    from .lab import normalize_L
    from .model import fold_batchnorm

    if a.top < 1:
        raise UserError("--top must be at least 1")
    missing = [p for p in a.images if not Path(p).is_file()]
    if missing:
        raise UserError(f"no such image file: {missing[0]}")
    device = _device(a.device)
    model = _load(a.model, device)
    if model.classifier is None:
        raise UserError(f"{a.model} is a baseline model: it has no classifier (no global features); "
                        "use miniplaces-full or a sweep-alpha-* model")
    classes = model.meta.get("classes") or [str(i) for i in range(model.cfg.num_classes)]
    net = fold_batchnorm(model)
    k = min(a.top, len(classes))
    for path in a.images:
        try:
            L = luminance(path, device)
        except ValueError as e:
            raise UserError(str(e)) from None
        with torch.inference_mode():
            probs = net.global_branch(normalize_L(L))[1].float().softmax(1)[0]
        top = probs.topk(k)
        ranked = [[classes[i], round(float(p), 4)] for p, i in zip(top.values, top.indices)]
        if a.json:
            print(json.dumps({"file": path, f"top{k}": ranked}))
        else:
            print(path)
            for rank, (name, p) in enumerate(ranked, 1):
                print(f"  {rank}. {name:<28} {p:6.1%}")


def add_classify(sub) -> None:
    c = sub.add_parser("classify", help="scene classes of photos, from their grayscale version",
                       description="The classification head (section 3.3) on each image's L*: the "
                                   "top classes with their probabilities.")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("--model", default="miniplaces-full", help="a model with a classifier (default miniplaces-full)")
    c.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    c.add_argument("--json", action="store_true",
                   help='one line per image: {"file": ..., "top5": [[class, probability], ...]} '
                        "(the key is topK for --top K)")
    c.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    c.set_defaults(func=cmd_classify)


# -- benchmark --------------------------------------------------------------------------------
def cmd_benchmark(a: argparse.Namespace) -> None:
    from .benchmark import format_table, run_benchmark
    from .checkpoint import CheckpointError, resolve_model_path
    from .cli import UserError, _device

    if any(s < 8 for s in a.sizes):
        raise UserError("--sizes must be at least 8 pixels")
    if a.repeats < 1:
        raise UserError("--repeats must be at least 1")
    if a.model != "paper":
        try:
            resolve_model_path(a.model)
        except CheckpointError as e:
            raise UserError(str(e)) from None
    device = _device(a.device)
    result = run_benchmark(a.model, a.sizes, a.repeats, str(device), a.budget, progress=not a.quiet)
    print(format_table(result))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {a.json}")


def _benchmark_arguments(b: argparse.ArgumentParser) -> None:
    from .benchmark import DEFAULT_SIZES

    b.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
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


def add_benchmark(sub) -> None:
    b = sub.add_parser("benchmark", help="seconds per image by size, beside the paper's Table 3",
                       description="Time the network (with and without batch norm folded) at each "
                                   "size, each size in a fresh process for its peak memory.")
    _benchmark_arguments(b)


def benchmark_parser() -> argparse.ArgumentParser:
    """The options of ``colorlib benchmark`` for ``benchmarks/runtime.py``."""
    p = argparse.ArgumentParser(prog=Path(sys.argv[0]).name,
                                description="Run time per image size beside the paper's Table 3.")
    _benchmark_arguments(p)
    return p


# -- study ------------------------------------------------------------------------------------
def _finite(x: float) -> float | None:
    return None if x != x else round(x, 2)  # NaN (no trials of a condition) -> null


def cmd_study(a: argparse.Namespace) -> None:
    from .cli import UserError
    from .study import StudyError, load_answers, naturalness, plot_figure5

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
        fig = plot_figure5(result)
        Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=150, bbox_inches="tight")
        print(f"wrote {a.plot}")
    if a.json:
        report = dict(files=[str(f) for f in answers.files], skipped=answers.warnings,
                      median={c: _finite(v) for c, v in result.median.items()},
                      rates={p: {c: _finite(v) for c, v in r.items()} for p, r in result.rates.items()},
                      counts={p: {c: list(n) for c, n in cs.items()} for p, cs in result.counts.items()})
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n")
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
