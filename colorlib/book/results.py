"""The stored evaluation of the shipped models (``colorlib/models/results.json``, written by
``colorlib evaluate``) as Markdown for a page: narrow tables that fit the page column, every
column explained, and sentences generated from the numbers (never typed in by hand).
"""

from __future__ import annotations

import json
from pathlib import Path

#: Column headers of the two tables and what each means, in the order shown.
COLUMNS = {
    "psnr": ("PSNR (dB)", "peak signal-to-noise ratio of the 8-bit RGB result against the photo; "
                          "higher is closer"),
    "ssim": ("SSIM", "structural similarity of the RGB result and the photo, 0 to 1; higher is closer"),
    "ciede2000": ("CIEDE2000", "mean colour difference per pixel in the CIE's 2000 formula; "
                               "about 2.3 is just noticeable; lower is better"),
    "auc": ("AuC (%)", "share of pixels whose a\\*b\\* lies within a distance t of the truth, "
                       "averaged over t = 0..150 (Zhang et al. 2016); 100 is perfect"),
    "auc_rebalanced": ("AuC rebal. (%)", "the same, with each pixel weighted by how rare its true "
                                         "colour is, so that gray-ish pixels, the most common, "
                                         "count less"),
    "cf_pred": ("colourfulness", "Hasler and Süsstrunk's colourfulness of the result (gray is 0, "
                                 "a moderately colourful image about 33)"),
    "cf_gap": ("CF gap", "colourfulness of the photos minus that of the result: how much duller "
                         "the result is (0 would be as colourful as the photos)"),
    "top1": ("top-1 (%)", "the scene class predicted from the gray image is the true one"),
    "top5": ("top-5 (%)", "the true scene class is among the five most likely"),
}
TABLES = (("psnr", "ssim", "ciede2000", "auc", "auc_rebalanced"), ("cf_pred", "cf_gap", "top1", "top5"))


def read_results(models: Path, name: str = "results.json") -> dict | None:
    """``results.json`` (or another ``colorlib evaluate`` output, ``name``: the colour-space
    comparison's ``results-colorspace.json``) from the folder of shipped ``models``, or None when
    it is missing."""
    path = models / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def model_label(name: str) -> str:
    """A model name for a table row, its ``@`` variant in words: ``miniplaces-full@raw`` ->
    ```miniplaces-full` (saturation 1.0)``, ``miniplaces-full@1.1`` -> ```miniplaces-full` (saturation 1.1)``."""
    base, _, variant = name.partition("@")
    return f"`{base}` (saturation {'1.0' if variant == 'raw' else variant})" if variant else f"`{base}`"


def _cell(value: float | None, digits: int) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def results_tables(results: dict, names: list[str] | None = None) -> str:
    """Two Markdown tables (colour fidelity; colourfulness and scenes) of the models ``names``
    (default: every model in ``results``, gray first), each with a saturation column (the
    factor the predicted a\\*b\\* are multiplied by, chapter 6), followed by what each column means and on
    which photos and hardware it was measured. No path and no load of the machine appears."""
    models = results["models"]
    names = names or list(models)
    digits = {"psnr": 2, "ssim": 3, "ciede2000": 2, "auc": 2, "auc_rebalanced": 2, "cf_pred": 1, "cf_gap": 1,
              "top1": 1, "top5": 1}
    m = results.get("machine", {})
    parts = [
        f"On the {results['images']:,} photos of the MiniPlaces validation split, never trained on "
        f"({results['colour_images']:,} in colour are scored for colour; the "
        f"{results['skipped_gray']} gray ones only for their scene), computed by `colorlib evaluate` "
        f"on a CPU ({m.get('cpu', 'unknown')}, {m.get('cpu_cores', '?')} cores)."
    ]
    for columns in TABLES:
        head = ["model", "saturation", *(COLUMNS[c][0] for c in columns)]
        rows = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for n in names:
            r = models[n]
            saturation = "–" if n == "gray" else f"{r.get('saturation', 1.0):.1f}"
            label = "gray answer (a\\*b\\* = 0)" if n == "gray" else model_label(n)
            rows.append("| " + " | ".join([label, saturation, *(_cell(r.get(c), digits[c]) for c in columns)]) + " |")
        parts.append("\n".join(rows))
    parts.append("\n".join(f"**{COLUMNS[c][0]}**\n: {COLUMNS[c][1]}\n" for cols in TABLES for c in cols))
    return "\n\n".join(parts)


def ranking_sentence(results: dict, prefix: str = "sweep-alpha-", metric: str = "auc",
                     close: float = 0.05) -> str:
    """A sentence ranking the models whose names start with ``prefix`` by ``metric`` (higher
    first) on the full evaluation set, with the values, saying so when the first two are
    less than ``close`` apart; empty when there are none."""
    models = {n: r for n, r in results["models"].items() if n.startswith(prefix) and "@" not in n}
    if not models:
        return ""
    order = sorted(models, key=lambda n: models[n][metric], reverse=True)
    listed = ", ".join(f"`{n}` {models[n][metric]:.3f}" for n in order)
    text = (f"On all {results['colour_images']:,} colour photos of the validation split the "
            f"{COLUMNS[metric][0]} ranks them: {listed}.")
    if len(order) > 1 and models[order[0]][metric] - models[order[1]][metric] < close:
        text += (f" The first two are within {close} points of each other: too close to call on "
                 "this many photos.")
    return text
