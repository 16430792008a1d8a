"""What the network predicts, and how a prediction becomes an sRGB image (paper section 4.8).

The paper trains the same network three ways and compares them (Figure 9):

* ``lab``: a* and b* of CIE L*a*b* (its choice, and every shipped model's but the comparison's);
  the output joins the photo's own L* (:mod:`colorlib.lab`).
* ``yuv``: U and V of YUV (ITU-R BT.601, the matrix ``skimage.color.rgb2yuv`` uses); the output
  joins the photo's own Y.
* ``rgb``: R, G and B (three outputs). At test time the prediction is converted to YUV and its Y
  replaced by the photo's, "so that the output images of all the models have the same
  luminance" (section 4.8).

Every target is normalised to ``[0, 1]``, the range of the network's sigmoid. In all three the
network sees the same input, the photo's L*/100, so that only the output differs between them
(the paper gives its grayscale input as the Y channel; for a gray photo Y and L* are the same
information). Shapes: ``(N, C, H, W)`` or ``(C, H, W)`` float tensors; sRGB in ``[0, 1]``. Like
:mod:`colorlib.lab`, an RGB argument that is not a floating tensor with 3 channels raises
``TypeError`` or ``ValueError``.
"""

from __future__ import annotations

import torch

from .lab import (
    _check,
    _mix,
    denormalize_ab,
    join_lab,
    lab_to_rgb_in_gamut,
    normalize_ab,
    rgb_to_L,
    rgb_to_lab,
)
from .model import COLOR_SPACES

# ITU-R BT.601 luma and chroma from gamma-encoded sRGB (skimage.color's yuv_from_rgb).
_YUV_FROM_RGB = (
    (0.299, 0.587, 0.114),
    (-0.14714119, -0.28886916, 0.43601035),
    (0.61497538, -0.51496512, -0.10001026),
)
_RGB_FROM_YUV = (  # its inverse (skimage.color's rgb_from_yuv)
    (1.0, 0.0, 1.13988303),
    (1.0, -0.394642334, -0.58062185),
    (1.0, 2.03206185, 0.0),
)
#: The largest |U| and |V| of sRGB colours: U and V are mapped to [0, 1] by ``v / (2 * max) + 0.5``.
UV_MAX = (0.43601035, 0.61497538)


def check_space(space: str) -> str:
    """``space`` if it is one of :data:`colorlib.model.COLOR_SPACES`, else ``ValueError``."""
    if space not in COLOR_SPACES:
        raise ValueError(f"colour space must be one of {COLOR_SPACES}, got {space!r}")
    return space


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(N, 3, H, W)`` in ``[0, 1]`` -> YUV (BT.601): Y in ``[0, 1]``, U in about
    ``[-0.436, 0.436]``, V in about ``[-0.615, 0.615]``. Agrees with ``skimage.color.rgb2yuv``."""
    return _mix(_YUV_FROM_RGB, _check(rgb, "rgb"))


def yuv_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    """YUV (BT.601) -> sRGB, not clipped; the inverse of :func:`rgb_to_yuv`."""
    return _mix(_RGB_FROM_YUV, _check(yuv, "yuv"))


def _uv_scale(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(UV_MAX, dtype=x.dtype, device=x.device)[:, None, None] * 2


def luminance(rgb: torch.Tensor, space: str) -> torch.Tensor:
    """The luminance a prediction in ``space`` joins: L* in ``[0, 100]`` for ``lab`` (as
    :func:`colorlib.lab.rgb_to_L`), Y in ``[0, 1]`` for ``yuv`` and ``rgb``. ``(N, 1, H, W)``."""
    if check_space(space) == "lab":
        return rgb_to_L(_check(rgb, "rgb"))
    return rgb_to_yuv(rgb)[..., :1, :, :]


def target(rgb: torch.Tensor, space: str) -> torch.Tensor:
    """The network's training target for sRGB ``(N, 3, H, W)``: normalised a*b*, U and V, or
    R, G and B, each in ``[0, 1]`` (section 4.8), at the photo's size ``(N, C, H, W)``."""
    rgb = _check(rgb, "rgb")
    if check_space(space) == "lab":
        return normalize_ab(rgb_to_lab(rgb)[..., 1:, :, :])
    if space == "yuv":
        uv = rgb_to_yuv(rgb)[..., 1:, :, :]
        return uv / _uv_scale(uv) + 0.5
    return rgb


def denormalize(out01: torch.Tensor, space: str) -> torch.Tensor:
    """The network's output in ``[0, 1]`` -> a*b* (about ``[-128, 127]``), U and V, or R, G, B
    in ``[0, 1]``: the inverse of :func:`target`'s normalisation."""
    if check_space(space) == "lab":
        return denormalize_ab(out01)
    if space == "yuv":
        return (out01 - 0.5) * _uv_scale(out01)
    return out01


def to_rgb(luma: torch.Tensor, pred: torch.Tensor, space: str, saturation: float = 1.0) -> torch.Tensor:
    """A prediction joined with the photo's luminance -> sRGB ``(N, 3, H, W)`` in ``[0, 1]``.

    ``luma``: :func:`luminance` of the photo ``(N, 1, H, W)``; ``pred``: :func:`denormalize`'s
    output at the same H x W. ``saturation`` multiplies the chrominance (a*b*, or U and V).
    ``lab``: colours outside sRGB lose chroma at constant L* and hue
    (:func:`colorlib.lab.lab_to_rgb_in_gamut`); ``yuv`` and ``rgb``: the photo's Y with the
    predicted U and V (for ``rgb``, those of the predicted colour), brought into sRGB at constant
    Y (:func:`yuv_in_gamut`).
    """
    want = 3 if check_space(space) == "rgb" else 2
    if pred.dim() < 3 or pred.shape[-3] != want:
        raise ValueError(f"a {space} prediction has {want} channels, got shape {tuple(pred.shape)}")
    if space == "lab":
        return lab_to_rgb_in_gamut(join_lab(luma, pred * saturation))
    uv = pred if space == "yuv" else rgb_to_yuv(pred)[..., 1:, :, :]
    return yuv_in_gamut(luma.float(), uv.float() * saturation)


def yuv_in_gamut(Y: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Y ``(N, 1, H, W)`` in ``[0, 1]`` and U, V ``(N, 2, H, W)`` -> sRGB in ``[0, 1]`` with that Y:
    where the colour falls outside sRGB, U and V are scaled towards 0 (constant Y and hue in the
    UV plane) just enough to bring it in, as :func:`colorlib.lab.lab_to_rgb_in_gamut` does at
    constant L*, instead of clipping each channel (which would change Y).

    Each channel is ``Y + k * c`` with ``c`` linear in U and V, so the largest ``k`` in ``[0, 1]``
    that keeps every channel in ``[0, 1]`` has a closed form."""
    Y = Y.clamp(0, 1)
    chroma = _mix(_RGB_FROM_YUV, torch.cat((torch.zeros_like(Y), uv), dim=-3))  # (R, G, B) - Y
    room = torch.where(chroma > 0, (1 - Y) / chroma.clamp(min=1e-12), Y / (-chroma).clamp(min=1e-12))
    k = room.amin(dim=-3, keepdim=True).clamp(max=1.0)
    return (Y + k * chroma).clamp_(0, 1)  # the clamp only removes float rounding
