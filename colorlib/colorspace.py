"""What the network predicts, and how a prediction becomes an sRGB image (paper section 4.8).

The paper trains the same network three ways and compares them (Figure 9); :data:`SPACES` holds
one :class:`ColorSpace` for each, and every user of a colour space (the model's output channels,
the training target, the inference join, the evaluation, the command line) reads it there:

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
``TypeError`` or ``ValueError``. Adding a space is one entry of :data:`SPACES` and its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

Tensor = torch.Tensor

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


@dataclass(frozen=True)
class ColorSpace:
    """One output colour space of section 4.8: everything the package knows of it."""

    name: str  # ModelConfig.color_space and --color-space
    label: str  # what the network predicts, in words (colorlib info, --help)
    channels: int  # the network's output channels
    luminance: Callable[..., Tensor]  # (sRGB float or uint8, its L* if known) -> what a prediction joins
    target: Callable[[Tensor], Tensor]  # sRGB -> the training target, each channel in [0, 1]
    denormalize: Callable[[Tensor], Tensor]  # the network's [0, 1] output -> the prediction to_rgb joins
    join: Callable[[Tensor, Tensor, float], Tensor]  # (luminance, prediction, saturation) -> sRGB

    def to_rgb(self, luma: Tensor, pred: Tensor, saturation: float = 1.0) -> Tensor:
        """A prediction (:attr:`denormalize`'s output) joined with the photo's luminance
        (:attr:`luminance`, ``(N, 1, H, W)``, same H x W) -> sRGB ``(N, 3, H, W)`` in ``[0, 1]``;
        ``saturation`` multiplies the chrominance (a*b*, or U and V). ``ValueError`` for a
        prediction with another number of channels."""
        if pred.dim() < 3 or pred.shape[-3] != self.channels:
            raise ValueError(f"a {self.name} prediction has {self.channels} channels, got shape {tuple(pred.shape)}")
        return self.join(luma, pred, saturation)


def rgb_to_yuv(rgb: Tensor) -> Tensor:
    """sRGB ``(N, 3, H, W)`` in ``[0, 1]`` -> YUV (BT.601): Y in ``[0, 1]``, U in about
    ``[-0.436, 0.436]``, V in about ``[-0.615, 0.615]``. Agrees with ``skimage.color.rgb2yuv``."""
    return _mix(_YUV_FROM_RGB, _check(rgb, "rgb"))


def yuv_to_rgb(yuv: Tensor) -> Tensor:
    """YUV (BT.601) -> sRGB, not clipped; the inverse of :func:`rgb_to_yuv`."""
    return _mix(_RGB_FROM_YUV, _check(yuv, "yuv"))


def yuv_in_gamut(Y: Tensor, uv: Tensor) -> Tensor:
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


def _uv_scale(x: Tensor) -> Tensor:
    return torch.tensor(UV_MAX, dtype=x.dtype, device=x.device)[:, None, None] * 2


def _Y(rgb: Tensor, L: Tensor | None = None) -> Tensor:
    """Y in ``[0, 1]`` of sRGB (float in ``[0, 1]``, or uint8)."""
    return rgb_to_yuv(rgb.float() / 255 if rgb.dtype == torch.uint8 else rgb)[..., :1, :, :]


def _join_uv(Y: Tensor, uv: Tensor, saturation: float) -> Tensor:
    return yuv_in_gamut(Y.float(), uv.float() * saturation)


class _Spaces(dict):
    def __missing__(self, name):
        raise ValueError(f"colour space must be one of {tuple(self)}, got {name!r}")


#: The colour spaces a network can predict, by name (another name: ``ValueError``). The luminance
#: is L* in ``[0, 100]`` for ``lab`` (the caller's own when it has it), Y in ``[0, 1]`` for the
#: others; ``rgb`` joins the photo's Y with the U and V of the predicted colour.
SPACES: dict[str, ColorSpace] = _Spaces((s.name, s) for s in (
    ColorSpace("lab", "a*b* (L*a*b*)", 2, lambda rgb, L=None: rgb_to_L(rgb) if L is None else L,
               lambda rgb: normalize_ab(rgb_to_lab(_check(rgb, "rgb"))[..., 1:, :, :]), denormalize_ab,
               lambda L, ab, s: lab_to_rgb_in_gamut(join_lab(L, ab * s))),
    ColorSpace("yuv", "U, V (YUV)", 2, _Y, lambda rgb: rgb_to_yuv(rgb)[..., 1:, :, :] / _uv_scale(rgb) + 0.5,
               lambda x: (x - 0.5) * _uv_scale(x), _join_uv),
    ColorSpace("rgb", "R, G, B", 3, _Y, lambda rgb: _check(rgb, "rgb"), lambda x: x,
               lambda Y, rgb, s: _join_uv(Y, rgb_to_yuv(rgb)[..., 1:, :, :], s)),
))
#: The paper's choice: every model's default, and the one space the ONNX graphs carry.
DEFAULT_SPACE = "lab"

