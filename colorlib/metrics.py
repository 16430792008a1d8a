"""Colour and classification metrics, per image.

Batched in torch (any device), written here and tested against hand-computed cases: the AuC of
Zhang et al. 2016 (:func:`ab_auc`, class-rebalanced with :func:`rebalancing_weights`), Hasler and
Suesstrunk's colourfulness, PSNR of 8-bit RGB, top-k scene accuracy. Per image with scikit-image
(numpy uint8 ``(H, W, 3)``; called, not rewritten): :func:`image_psnr`, :func:`image_ssim`,
:func:`image_ciede2000`. Images whose truth is gray (:func:`gray_truth`) have no colour to judge:
the evaluation skips them for colour metrics and counts them.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .data import LOW_COLOUR_STD, colour_std

AUC_MAX_T = 150

#: Side of a cell of the a*b* grid used for class rebalancing, in a*b* units (Zhang et al.).
AB_CELL = 10.0
#: The grid: 26 x 26 cells of 10 x 10 with edges at multiples of 10, covering [-130, 130)^2
#: (a*b* of sRGB colours stay inside about [-110, 100]).
AB_CELLS_PER_AXIS = 26
_AB_ORIGIN = -AB_CELL * AB_CELLS_PER_AXIS / 2


def ab_auc(pred_ab: torch.Tensor, true_ab: torch.Tensor, max_t: int = AUC_MAX_T,
           weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image AuC of the ab-error CDF over thresholds ``0..max_t`` (Zhang et al. 2016).

    ``pred_ab``, ``true_ab``: a*b* ``(N, 2, H, W)`` in L*a*b* units. A pixel at distance
    ``d`` is within threshold ``t`` for ``t >= d``, i.e. for ``max_t + 1 - ceil(d)`` of
    the ``max_t + 1`` thresholds, so the area is a mean over pixels. ``weights``
    ``(N, H, W)``: per-pixel weights (class rebalancing), else uniform. Returns ``(N,)``
    in [0, 1].
    """
    diff = pred_ab.float() - true_ab.float()
    d = torch.hypot(diff[:, 0], diff[:, 1])  # as norm(dim=1), without its slow strided reduction
    within = (max_t + 1 - torch.ceil(d)).clamp(0, max_t + 1) / (max_t + 1)
    if weights is None:
        return within.flatten(1).mean(1)
    w = weights.float().flatten(1)
    return (within.flatten(1) * w).sum(1) / w.sum(1).clamp(min=1e-12)


def ab_cells(ab: torch.Tensor) -> torch.Tensor:
    """The a*b* grid cell of every pixel: ``(N, 2, H, W)`` -> int64 ``(N, H, W)`` in
    ``[0, 26 * 26)``. Cell ``(i, j)`` holds ``a*`` in ``[-130 + 10 i, -120 + 10 i)`` and
    ``b*`` likewise with ``j``; the index is ``26 i + j``. Values outside are clamped in."""
    ij = ((ab.float() - _AB_ORIGIN) / AB_CELL).floor().long().clamp(0, AB_CELLS_PER_AXIS - 1)
    return ij[:, 0] * AB_CELLS_PER_AXIS + ij[:, 1]


def ab_cell_counts(true_ab: torch.Tensor) -> torch.Tensor:
    """Pixel count per a*b* cell of truth a*b* ``(N, 2, H, W)`` -> int64 ``(676,)``; add the
    counts of several batches to estimate the frequencies over a whole evaluated set."""
    return torch.bincount(ab_cells(true_ab).flatten().cpu(), minlength=AB_CELLS_PER_AXIS**2)


def rebalancing_weights(counts: torch.Tensor) -> torch.Tensor:
    """Per-cell weights ``1 / p(cell)`` from pixel counts (``p`` = count / total); 0 for
    empty cells (no truth pixel can fall in them).

    Class-rebalanced AuC: each pixel weighs ``1 / p`` of the cell of its *true* a*b*, with
    ``p`` estimated on the evaluated set, so a rare colour (a red car) counts as much in
    total as a common one (gray road, blue sky). The per-image figure is the weighted mean
    of :func:`ab_auc`; the scale of the weights cancels in it.
    """
    counts = counts.double()
    p = counts / counts.sum().clamp(min=1)
    return torch.where(counts > 0, 1.0 / p.clamp(min=1e-300), torch.zeros_like(p))


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk's colourfulness of RGB ``(N, 3, H, W)`` in [0, 255] -> ``(N,)``.

    ``rg = R - G``, ``yb = (R + G)/2 - B``;
    ``CF = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` (population std).
    Gray images score 0; the paper's scale calls about 33 "moderately", 59 "quite" colourful.
    """
    x = rgb.double()
    R, G, B = x.unbind(1)
    rg = (R - G).flatten(1)
    yb = (0.5 * (R + G) - B).flatten(1)
    std = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    mean = (rg.mean(1) ** 2 + yb.mean(1) ** 2).sqrt()
    return (std + 0.3 * mean).float()


def colourfulness_gap(cf_pred: torch.Tensor, cf_true: torch.Tensor) -> float:
    """``|mean CF(pred) - mean CF(truth)|`` over the images (NaN entries, skipped images,
    left out): how far a model is from the truth's colourfulness on average, >= 0."""
    return abs(float(cf_pred[~cf_pred.isnan()].mean()) - float(cf_true[~cf_true.isnan()].mean()))


def psnr_uint8(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of 8-bit images ``(N, 3, H, W)`` (uint8 or values in 0..255) -> ``(N,)``.

    Identical images give ``inf``, as in scikit-image.
    """
    mse = (pred.double() - true.double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(255.0**2 / mse)).float()


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per-sample hit (1.0 / 0.0): is the true label among the ``k`` highest logits?"""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels[:, None]).any(1).float()


def confused_pairs(true: np.ndarray, pred: np.ndarray, classes: list[str],
                   k: int = 10) -> list[dict]:
    """The ``k`` most frequent mistakes ``true -> predicted`` with their counts.

    ``true``, ``pred``: class indices per image (``true < 0``: unlabelled, ignored).
    Ties are broken by class index, so the list is deterministic.
    """
    pairs = Counter((int(t), int(p)) for t, p in zip(true, pred) if t >= 0 and t != p)
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [{"true": classes[t], "predicted": classes[p], "count": n} for (t, p), n in ranked]


def gray_truth(rgb: torch.Tensor) -> torch.Tensor:
    """Which images of uint8 ``(N, 3, H, W)`` are gray or low-colour (bool ``(N,)``):
    ``std(a*) + std(b*) <`` :data:`colorlib.data.LOW_COLOUR_STD`, the training filter."""
    return colour_std(rgb) < LOW_COLOUR_STD


# -- scikit-image, per image: numpy uint8 (H, W, 3) -----------------------------------------
def image_psnr(pred: np.ndarray, true: np.ndarray) -> float:
    """PSNR in dB of two 8-bit RGB images (``skimage.metrics.peak_signal_noise_ratio``,
    data range 255); ``inf`` for identical images."""
    return float(peak_signal_noise_ratio(true, pred, data_range=255))


def image_ssim(pred: np.ndarray, true: np.ndarray) -> float:
    """SSIM in [-1, 1] (1 = identical) of two 8-bit RGB images, the mean over the three
    channels (``skimage.metrics.structural_similarity``, ``channel_axis=-1``, range 255)."""
    # float32 in: computed in float32, 2.5 times faster than from uint8 (float64), same to 1e-6
    return float(structural_similarity(true.astype(np.float32), pred.astype(np.float32),
                                       channel_axis=-1, data_range=255))


def image_lab(rgb: np.ndarray) -> np.ndarray:
    """``skimage.color.rgb2lab`` of an 8-bit RGB image, float32 (L* in [0, 100])."""
    return rgb2lab(rgb.astype(np.float32) / 255)  # float32 in, float32 out: a quarter faster


def image_ciede2000(pred_lab: np.ndarray, true_lab: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (>= 0; about 2.3 is just noticeable) of two
    L*a*b* images (:func:`image_lab` of the 8-bit prediction and truth), with
    ``skimage.color.deltaE_ciede2000``."""
    return float(deltaE_ciede2000(true_lab, pred_lab).mean())
