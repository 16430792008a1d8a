"""Turning what the library returns (tensors, arrays, PIL images) into images a page shows."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..imageio import to_uint8
from ..infer import lightness
from ..lab import normalize_L

#: Anything :func:`to_pil` accepts.
ImageData = Image.Image | np.ndarray | torch.Tensor


def to_pil(x: ImageData) -> Image.Image:
    """An image as PIL, for drawing and encoding.

    Accepts a PIL image (returned as it is), a tensor ``(3, H, W)``, ``(1, H, W)`` or with a
    leading batch dimension (the first image is taken), or an array ``(H, W)``, ``(H, W, 1)``
    or ``(H, W, 3)``. uint8 values are 0..255; any other dtype is read as floats in [0, 1]
    (clipped). One channel gives a mode ``L`` image, three an ``RGB`` one.
    """
    if isinstance(x, Image.Image):
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dim() == 4:
            x = x[0]
        if x.dim() == 3 and x.shape[0] in (1, 3):
            x = x.permute(1, 2, 0)
        x = x.numpy()
    a = to_uint8(np.asarray(x))  # values outside [0, 1] clipped: a page shows what it is given
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return Image.fromarray(a)


def gray(x: ImageData) -> Image.Image:
    """What the network sees: the L* channel of a photo (L* in [0, 100], section 3), as a mode
    ``L`` image of the same size (L* = 100 is white)."""
    return to_pil(normalize_L(lightness(to_pil(x))[0, 0]).clamp(0, 1).numpy())


def fit(img: Image.Image, longest: int) -> Image.Image:
    """``img`` shrunk (Lanczos) so that its longest side is at most ``longest`` pixels, aspect
    ratio kept; smaller images are returned as they are."""
    if max(img.size) <= longest:
        return img
    s = longest / max(img.size)
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)
