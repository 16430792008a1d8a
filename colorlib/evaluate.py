"""Scoring colorizers on held-out photos: colour metrics and scene classification.

:func:`score` runs a model (or the trivial gray answer, ``model=None``) over uint8 images
on any device and returns per-image figures; :func:`summarise` turns them into means.
"""

from __future__ import annotations

import math

import torch

from . import metrics as M
from .infer import predict_ab
from .lab import join_lab, lab_to_rgb, rgb_to_lab
from .model import Colorizer


@torch.no_grad()
def score(model: Colorizer | None, pixels: torch.Tensor, labels: torch.Tensor | None = None,
          batch_size: int = 250) -> dict[str, torch.Tensor]:
    """Per-image PSNR, AuC, colourfulness (prediction and truth) and top-1/top-5 hits.

    ``pixels``: uint8 ``(N, 3, H, W)`` colour photos (the truth); the model sees their L*.
    ``model=None`` scores the gray answer (a*b* = 0). Metrics are on 8-bit RGB, as files.
    """
    if model is not None:
        model.eval()
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in
                                           ("psnr", "auc", "cf_pred", "cf_true", "top1", "top5")}
    for i in range(0, len(pixels), batch_size):
        truth = pixels[i : i + batch_size]
        lab = rgb_to_lab(truth.float() / 255.0)
        L, ab_true = lab[:, :1], lab[:, 1:]
        if model is None:
            ab, logits = torch.zeros_like(ab_true), None
        else:
            ab = predict_ab(model, L)
            logits = model.global_branch(L / 100.0)[1] if model.global_features is not None else None
        pred = M.to_uint8(lab_to_rgb(join_lab(L, ab)))
        # a*b* of the 8-bit prediction, so AuC judges the image a user sees
        ab_pred = rgb_to_lab(pred.float() / 255.0)[:, 1:]
        rows["psnr"].append(M.psnr_uint8(pred, truth))
        rows["auc"].append(M.ab_auc(ab_pred, ab_true))
        rows["cf_pred"].append(M.colourfulness(pred.float()))
        rows["cf_true"].append(M.colourfulness(truth.float()))
        n = len(truth)
        nan = torch.full((n,), math.nan, device=truth.device)
        if logits is not None and labels is not None:
            y = labels[i : i + batch_size]
            rows["top1"].append(M.topk_accuracy(logits.float(), y, 1))
            rows["top5"].append(M.topk_accuracy(logits.float(), y, 5))
        else:
            rows["top1"].append(nan)
            rows["top5"].append(nan)
    return {k: torch.cat(v).cpu() for k, v in rows.items()}


def summarise(per_image: dict[str, torch.Tensor]) -> dict[str, float]:
    """Means over images; AuC in percent; ``cf_gap = |mean CF(pred) - mean CF(truth)|``."""
    s = {k: float(v[torch.isfinite(v)].mean()) if torch.isfinite(v).any() else math.nan
         for k, v in per_image.items()}
    s["auc"] *= 100
    s["top1"] *= 100
    s["top5"] *= 100
    s["cf_gap"] = abs(s["cf_pred"] - s["cf_true"])
    s["images"] = len(per_image["psnr"])
    return s
