"""Scoring colorizers on held-out photos: colour metrics and scene classification.

Two entry points:

* :func:`score` (fast, torch only, any device; used during training) runs a model, or the
  trivial gray answer (``model=None``), over uint8 images and returns per-image PSNR, AuC,
  colourfulness and top-1/top-5 hits; :func:`summarise` turns them into means.
* :func:`score_set` (``colorlib evaluate``) scores several answers on one
  :class:`EvalSet`, adding SSIM and CIEDE2000 (scikit-image) and the class-rebalanced AuC,
  and skipping images whose truth is gray for every colour metric.

Every answer is judged on the 8-bit RGB image a user would see (L* of the input joined with
the predicted a*b*, rounded to uint8), against the 8-bit truth.
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import metrics as M
from .colorspace import SPACES
from .data import DataError, ImageSet, decode, load_images, read_categories
from .imageio import to_uint8
from .infer import eval_mode, predict, resolve_saturation
from .lab import join_lab, lab_to_rgb_in_gamut, rgb_to_L, rgb_to_lab
from .model import Colorizer

#: Per-image figures of :func:`score_set`, in the order of the report's table.
METRICS = ("psnr", "ssim", "ciede2000", "auc", "auc_rebalanced", "cf_pred", "cf_true", "top1", "top5")
#: Figures reported in percent by :func:`summarise`.
PERCENT = ("auc", "auc_rebalanced", "top1", "top5")


@torch.no_grad()
def score(model: Colorizer | None, pixels: torch.Tensor, labels: torch.Tensor | None = None,
          batch_size: int = 250, saturation: float | None = 1.0) -> dict[str, torch.Tensor]:
    """Per-image PSNR, AuC, colourfulness (prediction and truth) and top-1/top-5 hits.

    ``pixels``: uint8 ``(N, 3, H, W)`` colour photos (the truth); the model sees their L*.
    ``model=None`` scores the gray answer (a*b* = 0). Metrics are on 8-bit RGB, as files.
    ``saturation``: the factor on a*b*, as in :func:`colorlib.infer.colorize_batch` (1.0: the
    network's own output; None: the model's own, as ``colorize`` outputs it).
    """
    if model is None:
        return _score(None, pixels, labels, batch_size, 0.0)
    saturation = resolve_saturation(model, saturation)
    with eval_mode(model):
        return _score(model, pixels, labels, batch_size, saturation)


def _score(model: Colorizer | None, pixels: torch.Tensor, labels: torch.Tensor | None,
           batch_size: int, saturation: float) -> dict[str, torch.Tensor]:
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("psnr", "auc", "cf_pred", "cf_true", "top1", "top5")}
    for i in range(0, len(pixels), batch_size):
        truth = pixels[i : i + batch_size]
        lab = rgb_to_lab(truth.float() / 255.0)
        L, ab_true = lab[:, :1], lab[:, 1:]
        pred, logits = _answer_rgb(model, truth, L, saturation)
        pred = to_uint8(pred)
        # a*b* of the 8-bit prediction, so AuC judges the image a user sees
        ab_pred = rgb_to_lab(pred.float() / 255.0)[:, 1:]
        rows["psnr"].append(M.psnr_uint8(pred, truth))
        rows["auc"].append(M.ab_auc(ab_pred, ab_true))
        rows["cf_pred"].append(M.colourfulness(pred.float()))
        rows["cf_true"].append(M.colourfulness(truth.float()))
        for k in (1, 5):
            y = None if logits is None or labels is None else labels[i : i + batch_size].to(logits.device)
            rows[f"top{k}"].append(torch.full((len(truth),), math.nan, device=truth.device) if y is None
                                   else M.topk_accuracy(logits.float(), y, k))
    return {k: torch.cat(v).cpu() for k, v in rows.items()}


def summarise(per_image: dict[str, torch.Tensor | np.ndarray]) -> dict[str, float]:
    """Means over images of every figure; AuC and top-k in percent;
    ``cf_gap = |mean CF(pred) - mean CF(truth)|``; ``images``: rows given.

    NaN marks a figure that does not apply (a gray truth, no label, no classifier) and is
    left out of its mean, as is an infinite PSNR (identical images).
    """
    s: dict[str, float] = {}
    for k, v in per_image.items():
        v = torch.as_tensor(v, dtype=torch.float64)
        mean = float(v[torch.isfinite(v)].mean()) if torch.isfinite(v).any() else math.nan
        s[k] = mean * 100 if k in PERCENT else mean
    cf = (torch.as_tensor(per_image[k], dtype=torch.float64) for k in ("cf_pred", "cf_true"))
    s["cf_gap"] = M.colourfulness_gap(*cf)
    s["images"] = len(per_image["psnr"])
    return s


# -- the evaluated set ------------------------------------------------------------------------
@dataclass
class EvalSet:
    """Photos decoded once to uint8 ``(N, 3, S, S)``, with what the report needs of each."""

    pixels: torch.Tensor
    names: list[str]  # file name (or tar member) per image
    label_names: list[str | None]  # true class name per image, None where unknown
    gray: torch.Tensor  # bool (N,): the truth is gray or low-colour (colour metrics skip it)
    cell_counts: torch.Tensor  # true a*b* pixels per grid cell over the colour images
    source: str = ""
    unreadable: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def labels_for(self, classes: list[str] | None) -> torch.Tensor:
        """Class indices in ``classes`` (a model's), -1 where unknown or not among them.

        A label matches a class by name or by its end (folder ``a/church/outdoor``
        is the class ``church/outdoor``)."""
        index = {c: i for i, c in enumerate(classes or [])}

        def lookup(name: str | None) -> int:
            parts = (name or "").split("/")
            return next((index[s] for s in ("/".join(parts[k:]) for k in range(len(parts))) if s in index), -1)

        return torch.tensor([lookup(n) for n in self.label_names], dtype=torch.long)


def read_file_list(path: Path, limit: int | None = None) -> tuple[ImageSet, list[str | None]]:
    """A ``.txt`` list of images, one per line: ``PATH`` or ``PATH LABEL`` (LABEL: a class
    name, or an index into a ``categories.txt`` beside the list). Relative paths are
    relative to the list's folder."""
    cats = path.parent / "categories.txt"
    classes = read_categories(cats) if cats.exists() else []
    blobs, names, label_names = [], [], []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, label = line, None
        if not (path.parent / name).is_file() and len(line.split()) > 1:  # PATH LABEL
            name, label = line.split()[:2]
            if label.lstrip("-").isdigit():
                label = classes[int(label)] if 0 <= int(label) < len(classes) else None
        file = path.parent / name  # an absolute name stays as it is
        if not file.is_file():
            raise DataError(f"{path}:{i}: no such image file {file}")
        blobs, names, label_names = blobs + [file.read_bytes()], names + [name], label_names + [label]
        if limit is not None and len(blobs) >= limit:
            break
    if not blobs:
        raise DataError(f"{path} lists no images")
    return ImageSet(blobs, names), label_names


def load_eval_set(data: str | os.PathLike, size: int, limit: int | None = None,
                  progress: bool = True, batch_size: int = 250) -> EvalSet:
    """Read and decode the photos to score, once, at ``size`` x ``size``.

    ``data``: MiniPlaces ``val.tar.gz`` (labels from ``val.txt`` beside it), a MiniPlaces
    folder (its val split), a folder of images (labelled when their parent folders are
    named after classes, e.g. ``abbey/1.jpg``), or a ``.txt`` list of files. Unreadable
    files are listed, not fatal; a set with no colour image is a :class:`DataError`.
    """
    p = Path(data)
    if not p.exists():
        raise DataError(f"{p} does not exist")
    if p.is_file() and p.suffix == ".txt":
        images, label_names = read_file_list(p, limit)
    else:
        images = load_images(p, split="val", limit=limit)
        if images.labels is not None and images.classes:
            label_names = [images.classes[y] for y in images.labels]
        else:  # class folders: abbey/1.jpg; matched against each model's classes later
            folders = [Path(n).parent.as_posix() for n in images.names]
            label_names = [None if f == "." else f for f in folders]
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        arrays = list(tqdm(pool.map(lambda b: decode(b, size), images.blobs), total=len(images),
                           desc=f"decoding {len(images)} images", unit="image", disable=not progress))
        ok = [i for i, a in enumerate(arrays) if a is not None]
        unreadable = [images.names[i] for i, a in enumerate(arrays) if a is None]
        if not ok:
            raise DataError(f"none of the {len(images)} files in {p} is an image that can be read")
        pixels = torch.from_numpy(np.stack([arrays[i] for i in ok])).permute(0, 3, 1, 2).contiguous()
        gray = torch.cat([M.gray_truth(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)])
        if gray.all():
            raise DataError(f"none of the {len(ok)} images in {p} is a colour image ({len(ok)} gray or "
                            "low colour): colour metrics need colour photos as the truth")
        # a*b* frequencies of the colour truths, for the rebalanced AuC
        counts = torch.zeros(M.AB_CELLS_PER_AXIS**2, dtype=torch.long)
        colour = [arrays[i] for i, g in zip(ok, gray.tolist()) if not g]
        for i in range(0, len(colour), batch_size):
            counts += M.ab_cell_counts(_ab(list(pool.map(M.image_lab, colour[i : i + batch_size]))))
    return EvalSet(pixels, [images.names[i] for i in ok], [label_names[i] for i in ok], gray,
                   counts, str(p), unreadable)


# -- scoring several answers on one set -------------------------------------------------------
_SATURATION_SUFFIX = re.compile(r"(.+)@(raw|\d+(?:\.\d*)?)")


def split_saturation(spec: str) -> tuple[str, float | None]:
    """``NAME`` -> (NAME, None: the model's own saturation, as colorize outputs it); ``NAME@raw``
    -> (NAME, 1.0: the network's own output); ``NAME@1.3`` -> (NAME, saturation 1.3)."""
    m = _SATURATION_SUFFIX.fullmatch(spec)
    if m is None:
        return spec, None
    return m[1], 1.0 if m[2] == "raw" else float(m[2])


@dataclass
class Candidate:
    """A colorization to score, one row of the report: a (batch-norm-folded) model, or
    ``net=None`` for the gray answer a*b* = 0. (Not :class:`colorlib.study.Answer`, a participant's row.)"""

    name: str
    net: Colorizer | None = None
    classes: list[str] | None = None  # the model's scene classes; None without a classifier
    saturation: float = 1.0  # factor on a*b*, as colorize applies it (colorlib.infer.default_saturation)


def _ab(labs: list[np.ndarray]) -> torch.Tensor:
    """a*b* of (H, W, 3) L*a*b* images -> ``(N, 2, H, W)``."""
    return torch.from_numpy(np.stack(labs)[..., 1:]).permute(0, 3, 1, 2)


def _colour_scores(pred: np.ndarray, true: np.ndarray, true_lab: np.ndarray):
    """scikit-image's PSNR, SSIM and CIEDE2000 of one 8-bit prediction, and its L*a*b*."""
    pred_lab = M.image_lab(pred)
    return (M.image_psnr(pred, true), M.image_ssim(pred, true),
            M.image_ciede2000(pred_lab, true_lab), pred_lab)


@dataclass
class _Truth:
    """The truth side of one batch, computed once for every answer."""

    rows: np.ndarray  # indices into the set of the batch's colour images
    rgb: np.ndarray  # their uint8 (C, H, W, 3)
    lab: list[np.ndarray]  # their L*a*b* (scikit-image)
    ab: torch.Tensor  # (C, 2, H, W) a*b* of ``lab``
    weights: torch.Tensor  # (C, H, W) rebalancing weight of each pixel
    cf: np.ndarray  # (C,) colourfulness


@torch.inference_mode()
def _colour_figures(row: dict[str, np.ndarray], pred: torch.Tensor, truth: _Truth, pool) -> None:
    """Every colour figure of 8-bit predictions ``(C, 3, H, W)`` of ``truth``'s images, into ``row``."""
    scores = list(pool.map(_colour_scores, pred.permute(0, 2, 3, 1).cpu().numpy(), truth.rgb, truth.lab))
    for c, k in enumerate(("psnr", "ssim", "ciede2000")):
        row[k][truth.rows] = [r[c] for r in scores]
    ab_pred = _ab([r[3] for r in scores]).to(truth.ab.device)
    row["auc"][truth.rows] = M.ab_auc(ab_pred, truth.ab).cpu().numpy()
    row["auc_rebalanced"][truth.rows] = M.ab_auc(ab_pred, truth.ab, weights=truth.weights).cpu().numpy()
    row["cf_pred"][truth.rows] = M.colourfulness(pred.float()).cpu().numpy()
    row["cf_true"][truth.rows] = truth.cf


@torch.inference_mode()
def score_set(answers: list[Candidate], images: EvalSet, batch_size: int = 100,
              device: str | torch.device = "cpu", progress: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Per-image figures of every answer: ``{name: {metric: (N,) array, "predicted": (N,)}}``.

    The images are visited once, a batch at a time; in each batch the truth side (L*,
    L*a*b*, rebalancing weights) is computed once and every answer runs on it. Every colour
    figure comes from scikit-image's L*a*b* of the 8-bit images (AuC included, so an exact
    pixel is exactly 0 away). Colour metrics are NaN for gray truths; top-k is NaN without a
    label or a classifier; ``predicted`` is the top-1 class index (-1 without a classifier).

    The colour figures of one answer are computed (in a thread) while the next answer's
    network runs, so neither waits for the other on a CPU.
    """
    device = torch.device(device)
    n = len(images)
    out = {a.name: {**{k: np.full(n, np.nan) for k in METRICS}, "predicted": np.full(n, -1, dtype=np.int64)}
           for a in answers}
    labels = {a.name: images.labels_for(a.classes).to(device) for a in answers}
    cell_w = M.rebalancing_weights(images.cell_counts).float().to(device)
    bar = tqdm(total=n * len(answers), desc="evaluating", unit="image", disable=not progress)
    pending = []  # the colour figures in flight: one answer's at a time
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool, ThreadPoolExecutor(1) as scorer:
        for i in range(0, n, batch_size):
            j = min(i + batch_size, n)
            L, ci, truth = _batch_truth(images, i, j, device, cell_w, pool)
            for a in answers:
                pred, logits = _answer_rgb(a.net, images.pixels[i:j], L, a.saturation)
                if logits is not None:
                    _class_figures(out[a.name], logits, labels[a.name][i:j], slice(i, j))
                for f in pending:
                    f.result()
                pending = [] if truth is None else [scorer.submit(_colour_figures, out[a.name],
                                                                  to_uint8(pred[ci]), truth, pool)]
                bar.update(j - i)
                bar.set_postfix_str(a.name)
        for f in pending:
            f.result()
    bar.close()
    return out


def _batch_truth(images: EvalSet, i: int, j: int, device: torch.device, cell_w: torch.Tensor, pool):
    """L* ``(B, 1, H, W)`` of images ``i:j`` on ``device``, the indices of their colour truths,
    and those truths' figures (:class:`_Truth`; None when the batch has no colour image)."""
    x = images.pixels[i:j]
    ci = torch.from_numpy(np.flatnonzero(~images.gray[i:j].numpy()))  # CPU indices serve any device
    L = rgb_to_L(x.to(device))
    if not len(ci):
        return L, ci, None
    truth_rgb = x.permute(0, 2, 3, 1).numpy()[ci.numpy()]
    true_lab = list(pool.map(M.image_lab, truth_rgb))
    ab_true = _ab(true_lab).to(device)
    truth = _Truth(i + ci.numpy(), truth_rgb, true_lab, ab_true, cell_w[M.ab_cells(ab_true)],
                   M.colourfulness(x[ci].float()).numpy())
    return L, ci, truth


def _answer_rgb(net: Colorizer | None, pixels: torch.Tensor, L: torch.Tensor,
                saturation: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """An answer's float RGB for the uint8 photos ``pixels`` ``(B, 3, H, W)`` of L* ``L``, its
    chrominance times ``saturation``, and its scene logits (None without a classifier).
    ``net=None`` is the gray answer (a*b* = 0); a model of another colour space keeps the photos'
    Y (section 4.8), the only case that reads ``pixels``."""
    if net is None:
        return lab_to_rgb_in_gamut(join_lab(L, torch.zeros_like(L).expand(-1, 2, -1, -1))), None
    pred, logits = predict(net, L)
    space = SPACES[net.cfg.color_space]
    return space.to_rgb(space.luminance(pixels.to(L.device), L), pred, saturation), logits


def _class_figures(row: dict[str, np.ndarray], logits: torch.Tensor, y: torch.Tensor, rows: slice) -> None:
    """Top-1/top-5 hits (NaN where the label is unknown) and the top-1 class, into ``row``."""
    known = (y >= 0).cpu().numpy()
    for k in (1, 5):
        hits = M.topk_accuracy(logits.float(), y, k).cpu().numpy()
        row[f"top{k}"][rows] = np.where(known, hits, np.nan)
    row["predicted"][rows] = logits.argmax(1).cpu().numpy()
