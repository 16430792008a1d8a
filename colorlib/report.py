"""The evaluation report: per-answer means, confusions and per-image rows as JSON, and the
Markdown table of ``colorlib evaluate``, naming the machine that produced it
(:func:`colorlib.device.machine_info`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from . import metrics as M
from .data import DataError, data_root
from .device import machine_info
from .evaluate import METRICS, Candidate, EvalSet, split_saturation, summarise

#: (key, column title, format) of the Markdown table, in order.
COLUMNS = (
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("ciede2000", "CIEDE2000", "{:.2f}"),
    ("auc", "AuC (%)", "{:.2f}"),
    ("auc_rebalanced", "AuC rebal. (%)", "{:.2f}"),
    ("cf_pred", "CF", "{:.1f}"),
    ("cf_gap", "CF gap", "{:.1f}"),
    ("top1", "top-1 (%)", "{:.1f}"),
    ("top5", "top-5 (%)", "{:.1f}"),
    ("images", "images", "{:d}"),
    ("skipped_gray", "skipped gray", "{:d}"),
)

METRIC_NOTES = {
    "psnr": "PSNR of 8-bit RGB, dB, per image (skimage.metrics.peak_signal_noise_ratio), mean over images",
    "ssim": "SSIM of 8-bit RGB, per image (skimage structural_similarity, channel_axis=-1, "
            "data_range=255), mean over images",
    "ciede2000": "mean CIEDE2000 per image (skimage deltaE_ciede2000 on rgb2lab), mean over images; lower is better",
    "auc": "Zhang et al. 2016 AuC: fraction of pixels with a*b* error <= t, averaged over t = 0..150, percent",
    "auc_rebalanced": "AuC with pixel weights 1/p(cell of the true a*b*), p estimated on the evaluated colour "
                      "images over a grid of 10x10 a*b* cells; per image, then mean; percent",
    "cf_pred": "Hasler and Suesstrunk colourfulness of the prediction (8-bit RGB), mean over images",
    "cf_true": "colourfulness of the truth, mean over the same images",
    "cf_gap": "|mean CF(prediction) - mean CF(truth)|; lower is better",
    "top1": "scene classification top-1 accuracy on the gray input, percent of labelled images",
    "top5": "top-5 accuracy, percent",
    "images": "images scored for colour (colour truth)",
    "skipped_gray": "images whose truth is gray or low colour (std a* + std b* < 3): left out of colour "
                    "metrics, kept for top-1/top-5",
    "classified": "labelled images counted for top-1/top-5",
    "saturation": "factor on the network's a*b* output, as colorize applies it (the model's own; 1.0 "
                  "for NAME@raw and the gray answer, S for NAME@S)",
}


def finite(x, digits: int | None = None):
    """JSON-like data for strict JSON, which has no NaN or infinity (the PSNR of an exact answer):
    a figure that is not a number is unknown, ``None``; numpy scalars -> Python; floats rounded to
    ``digits`` decimals when given."""
    if isinstance(x, dict):
        return {k: finite(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v, digits) for v in x]
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return (x if digits is None else round(x, digits)) if math.isfinite(x) else None
    return x


def build_report(images: EvalSet, answers: list[Candidate], scores: dict[str, dict[str, np.ndarray]],
                 *, size: int, wall_s: float, cpu_s: float | None = None, device: str = "cpu",
                 per_image: bool = False, command: str = "") -> dict:
    """Everything ``colorlib evaluate`` writes to JSON (NaN written as null).

    ``models``: per answer the means of :data:`colorlib.evaluate.METRICS` (AuC and top-k in
    percent), ``cf_gap``, ``images`` (colour truths scored), ``skipped_gray``, ``classified``.
    ``confusion``: per classifier, the 10 most frequent true -> predicted mistakes (once per model:
    ``NAME@raw``/``NAME@S`` classify as ``NAME`` does).
    ``rows`` (``per_image=True``): every image's file, label and figures per answer.
    """
    gray = images.gray.numpy()
    models, confusion, listed = {}, {}, set()
    for a in answers:
        s = scores[a.name]
        models[a.name] = {**summarise({k: s[k] for k in METRICS}), "images": int((~gray).sum()),
                          "skipped_gray": int(gray.sum()), "classified": int((~np.isnan(s["top1"])).sum()),
                          "saturation": a.saturation}
        base = split_saturation(a.name)[0]
        if a.classes and base not in listed:  # NAME, NAME@raw, NAME@S classify alike: listed once
            listed.add(base)
            labels = images.labels_for(a.classes).numpy()
            confusion[a.name] = M.confused_pairs(labels, s["predicted"], a.classes)
    data = portable_path(images.source)
    report = {"data": data, "size": size, "images": len(images), "colour_images": int((~gray).sum()),
              "skipped_gray": int(gray.sum()), "unreadable": images.unreadable,
              "labelled": int(sum(n is not None for n in images.label_names)), "wall_s": round(wall_s, 1),
              "cpu_s": None if cpu_s is None else round(cpu_s, 1),  # this process, all threads
              "machine": machine_info(device), "command": command.replace(str(images.source), data),
              "metrics": METRIC_NOTES, "models": models, "confusion": confusion}
    if per_image:
        report["rows"] = [
            {"file": images.names[i], "label": images.label_names[i], "gray": bool(gray[i]),
             "scores": {a.name: {**{k: scores[a.name][k][i] for k in METRICS},
                                 "predicted": a.classes[scores[a.name]["predicted"][i]]
                                 if a.classes and scores[a.name]["predicted"][i] >= 0 else None}
                        for a in answers}}
            for i in range(len(images))
        ]
    return finite(report, 4)


def portable_path(path: str | os.PathLike) -> str:
    """How a report names its data without the machine's own paths: relative to the data folder
    (``$COLORLIB_DATA``, else ``../shared/data``) as ``<data>/miniplaces/val.tar.gz``, else relative
    to the working folder, else the bare file name."""
    p = Path(path).resolve()
    roots = [(None, Path.cwd().resolve())]
    try:
        roots.insert(0, ("<data>", data_root().resolve()))
    except DataError:
        pass
    for label, root in roots:
        if p == root or root in p.parents:
            rel = p.relative_to(root).as_posix()
            return f"{label}/{rel}" if label else rel
    return p.name


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def _saturations(models: dict) -> str:
    saturations = {name: s["saturation"] for name, s in models.items() if name != "gray"}
    if len(set(saturations.values())) == 1:
        return f"{next(iter(saturations.values())):g} for every model here"
    return ", ".join(f"{name} {g:g}" for name, g in saturations.items()) or "none"


def markdown(report: dict) -> str:
    """The report as Markdown: a header naming the data and machine, the table (one row per
    answer and one for the truth's colourfulness), and the confusion summaries."""
    m = report["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['cpu_cores']} cores, {m['torch_threads']} torch threads"
    lines = [
        "# Colorization results",
        "",
        (f"{report['images']} images from `{report['data']}` at {report['size']}x{report['size']}: "
         f"{report['colour_images']} scored for colour, {report['skipped_gray']} gray truths skipped "
         f"for colour metrics, {report['labelled']} labelled. {report['wall_s']:.0f} s on {where}."),
        "",
        "| Model | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    models = report["models"]
    if models:
        first = next(iter(models.values()))
        truth = {"cf_pred": first["cf_true"], "cf_gap": 0.0, "images": first["images"],
                 "skipped_gray": first["skipped_gray"]}
        lines.append("| ground truth | " + " | ".join(_cell(truth.get(k), f) for k, _, f in COLUMNS) + " |")
    for name, s in models.items():
        label = "gray (a\\*b\\* = 0)" if name == "gray" else name
        lines.append(f"| {label} | " + " | ".join(_cell(s.get(k), f) for k, _, f in COLUMNS) + " |")
    lines += [
        "",
        ("Higher is better except CIEDE2000 and CF gap. AuC: Zhang et al. 2016 (thresholds 0..150); "
         "rebalanced: pixels weighted by the inverse frequency of their true a\\*b\\* (10x10 cells, "
         "estimated on these images). CF: Hasler and Suesstrunk colourfulness. top-k: scene classes "
         "from the gray input (– where a model has no classifier or the data no labels). "
         "Models are scored as `colorize` outputs them: a\\*b\\* times the model's saturation "
         f"({_saturations(models)}); NAME@raw is the network's own output, NAME@S its output at saturation S."),
    ]
    for name, pairs in report.get("confusion", {}).items():
        if not pairs:
            continue
        lines += ["", f"## Most confused classes: {name}", "", "| true | predicted | count |",
                  "|---|---|---:|"]
        lines += [f"| {p['true']} | {p['predicted']} | {p['count']} |" for p in pairs]
    return "\n".join(lines) + "\n"
