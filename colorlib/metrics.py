"""Colour metrics, per image, batched in torch (any device).

* :func:`ab_auc`: Zhang et al. 2016 ("Colorful Image Colorization"): the fraction of pixels
  whose predicted a*b* lies within distance ``t`` of the truth, averaged over
  ``t = 0, 1, ..., 150`` (the area under that curve, normalised to [0, 1]).
* :func:`colourfulness`: Hasler and Suesstrunk 2003, on 8-bit RGB.
* :func:`psnr_uint8`: PSNR of 8-bit RGB images (peak 255), as ``skimage.metrics``.
* :func:`topk_accuracy`: top-1 / top-5 scene classification.
"""

from __future__ import annotations

import torch

AUC_MAX_T = 150


def ab_auc(pred_ab: torch.Tensor, true_ab: torch.Tensor, max_t: int = AUC_MAX_T,
           weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image AuC of the ab-error CDF over thresholds ``0..max_t`` (Zhang et al. 2016).

    ``pred_ab``, ``true_ab``: a*b* ``(N, 2, H, W)`` in L*a*b* units. A pixel at distance
    ``d`` is within threshold ``t`` for ``t >= d``, i.e. for ``max_t + 1 - ceil(d)`` of
    the ``max_t + 1`` thresholds, so the area is a mean over pixels. ``weights``
    ``(N, H, W)``: per-pixel weights (class rebalancing), else uniform. Returns ``(N,)``.
    """
    d = (pred_ab.float() - true_ab.float()).norm(dim=1)
    within = (max_t + 1 - torch.ceil(d)).clamp(0, max_t + 1) / (max_t + 1)
    if weights is None:
        return within.flatten(1).mean(1)
    w = weights.float().flatten(1)
    return (within.flatten(1) * w).sum(1) / w.sum(1).clamp(min=1e-12)


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk's colourfulness of RGB ``(N, 3, H, W)`` in [0, 255] -> ``(N,)``.

    ``rg = R - G``, ``yb = (R + G)/2 - B``;
    ``CF = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``.
    Gray images score 0; the paper's scale calls about 33 "moderately", 59 "quite" colourful.
    """
    x = rgb.double()
    R, G, B = x.unbind(1)
    rg = (R - G).flatten(1)
    yb = (0.5 * (R + G) - B).flatten(1)
    std = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    mean = (rg.mean(1) ** 2 + yb.mean(1) ** 2).sqrt()
    return (std + 0.3 * mean).float()


def psnr_uint8(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of 8-bit images ``(N, 3, H, W)`` (uint8 or values in 0..255) -> ``(N,)``.

    Identical images give ``inf``, as in scikit-image.
    """
    mse = (pred.double() - true.double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(255.0**2 / mse)).float()


def to_uint8(rgb01: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] -> uint8 as an image file would store it."""
    return (rgb01 * 255).round().clamp(0, 255).to(torch.uint8)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per-sample hit (1.0 / 0.0): is the true label among the ``k`` highest logits?"""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels[:, None]).any(1).float()
