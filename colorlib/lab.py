"""sRGB <-> CIE L*a*b* (D65) in torch, differentiable and batched.

Every function takes and returns tensors shaped ``(N, 3, H, W)`` (or ``(3, H, W)``)
on any device and in any floating dtype; the arithmetic runs in float32 at least.

Ranges, stated once here and again in each docstring:

* sRGB: each channel in ``[0, 1]`` (gamma-encoded, as stored in image files).
* L*: ``[0, 100]``.
* a*, b*: about ``[-128, 127]`` (real sRGB colours stay inside about
  ``[-86, 98]`` for a* and ``[-108, 95]`` for b*).
* normalised a*b* (the network's sigmoid output, paper section 3.2.5): ``[0, 1]``.

The constants are the ones scikit-image uses (``skimage.color.rgb2lab`` with the
D65 / 2 degree observer), so the two agree to well under ``1e-3``.
"""

from __future__ import annotations

import torch

# sRGB primaries -> CIE XYZ, D65 white (IEC 61966-2-1).
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)
# CIE 15:2004 (section 8.2.1), the L*a*b* function f(t) = t^(1/3) above EPSILON, else a line:
DELTA = 6 / 29  # where the cube root meets the line, in f's output
EPSILON = DELTA**3  # = 216/24389, about 0.008856: the same point in f's input (t = X/Xn, Y/Yn, Z/Zn)
KAPPA = 24389 / 27  # about 903.3: L* = KAPPA * Y/Yn below EPSILON (the line, scaled to L*)

#: a* and b* are mapped to [0, 1] by ``(ab + AB_SHIFT) / AB_SCALE`` (paper 3.2.5).
AB_SHIFT = 128.0
AB_SCALE = 255.0

# Pixels per block where whole photos are processed a block of rows at a time (about 20 MB of
# temporaries per block in rgb_to_L).
_BLOCK_PIXELS = 1 << 20


def _check(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"{name} must be shaped (N, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor (got {x.dtype}); divide uint8 images by 255")
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _mix(rows, x: torch.Tensor) -> torch.Tensor:
    """Channel mixing ``out_i = sum_j rows[i][j] * x_j`` for ``(..., 3, H, W)``."""
    c = x.unbind(-3)
    return torch.stack([r[0] * c[0] + r[1] * c[1] + r[2] * c[2] for r in rows], dim=-3)


def _inverse(rows) -> tuple:
    import numpy as np

    return tuple(map(tuple, np.linalg.inv(np.array(rows, dtype=np.float64)).tolist()))


_RGB_FROM_XYZ = _inverse(_XYZ_FROM_RGB)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in ``[0, 1]`` -> L*a*b* with L* in ``[0, 100]``, a*, b* in about ``[-128, 127]``.

    Composed of the standard's steps, as ``skimage.color.rgb2lab``:
    ``xyz_to_lab(rgb_to_xyz(rgb))``. Input outside ``[0, 1]`` is clipped first.
    Differentiable everywhere (the gradients of the gamma curve and of the cube root are
    finite at 0).
    """
    return xyz_to_lab(rgb_to_xyz(_check(rgb, "rgb").clamp(0.0, 1.0)))


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Gamma-encoded sRGB in ``[0, 1]`` -> linear-light RGB in ``[0, 1]`` (IEC 61966-2-1)."""
    return torch.where(rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def rgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in ``[0, 1]`` ``(..., 3, H, W)`` -> CIE XYZ relative to the D65 white (each of X/Xn,
    Y/Yn, Z/Zn is 1 for white)."""
    return _mix([[v / w for v in row] for row, w in zip(_XYZ_FROM_RGB, _D65_WHITE)], srgb_to_linear(rgb))


def _f(t: torch.Tensor) -> torch.Tensor:
    """CIE's f(t): the cube root above :data:`EPSILON`, the line ``(KAPPA t + 16) / 116`` below."""
    return torch.where(t > EPSILON, t.clamp(min=EPSILON) ** (1.0 / 3.0), (KAPPA * t + 16.0) / 116.0)


def xyz_to_lab(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ relative to the white (:func:`rgb_to_xyz`) -> L*a*b*: ``L* = 116 f(Y/Yn) - 16``,
    ``a* = 500 (f(X/Xn) - f(Y/Yn))``, ``b* = 200 (f(Y/Yn) - f(Z/Zn))`` (CIE 15:2004)."""
    fx, fy, fz = _f(xyz).unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b* (L* in ``[0, 100]``, a*, b* in about ``[-128, 127]``) -> sRGB in ``[0, 1]``.

    Colours outside the sRGB gamut are clipped to ``[0, 1]`` channel by channel, which moves
    their L* (by up to several units on saturated colours); :func:`lab_to_rgb_in_gamut` keeps
    L*. The result is never NaN. Differentiable (used in training losses).
    """
    return _encode(_lab_to_linear(_check(lab, "lab"))).clamp(0.0, 1.0)


def lab_to_rgb_in_gamut(lab: torch.Tensor, iterations: int = 16) -> torch.Tensor:
    """L*a*b* -> sRGB in ``[0, 1]``, colours outside the sRGB gamut brought inside at constant L*
    and hue by reducing their chroma (shapes and ranges as :func:`lab_to_rgb`).

    Each out-of-gamut pixel's a*b* is multiplied by the largest factor ``s`` in ``[0, 1)`` found
    by a bisection of ``iterations`` steps that keeps every linear RGB channel in ``[0, 1]``
    (``s = 0``, the gray of the same L*, always is): L* stays exactly the input's, the hue angle
    ``atan2(b*, a*)`` too, and the chroma is within ``2**-iterations`` of the largest that fits
    (16 steps: under 0.003 in a*b* units). In-gamut pixels are converted exactly as
    :func:`lab_to_rgb` does. L* outside ``[0, 100]`` is clipped to it first (no sRGB colour has
    such a lightness). Runs on the tensor's device, vectorised over the pixels that need it; not
    meant for gradients (the factor is a step function of the input).

    This is chroma clipping at constant lightness and hue, one of the basic gamut-mapping
    methods surveyed by J. Morovic and M. R. Luo, "The Fundamentals of Gamut Mapping: A Survey",
    Journal of Imaging Science and Technology 45(3), 283-290, 2001. Clipping in RGB instead
    (:func:`lab_to_rgb`) changes L* on saturated pixels.

    Example: ``lab_to_rgb_in_gamut(torch.tensor([50.0, 120.0, -120.0]).view(3, 1, 1))`` is a
    purple-blue whose L* is 50 (``lab_to_rgb`` gives one of L* about 45).
    """
    lab = _check(lab, "lab")
    L = lab.narrow(-3, 0, 1).clamp(0.0, 100.0)
    ab = lab.narrow(-3, 1, 2)
    linear = _lab_to_linear(torch.cat((L, ab), dim=-3))
    outside = ~_in_gamut(linear)  # (..., H, W)
    if bool(outside.any()):
        sub_L, sub_a, sub_b = L.squeeze(-3)[outside], ab.select(-3, 0)[outside], ab.select(-3, 1)[outside]
        s = _chroma_factor(sub_L, sub_a, sub_b, iterations)
        sub = torch.stack((sub_L, sub_a * s, sub_b * s))[:, None, :]  # (3, 1, P)
        linear.movedim(-3, -1)[outside] = _lab_to_linear(sub)[:, 0, :].T
    return _encode(linear).clamp(0.0, 1.0)


def _chroma_factor(L: torch.Tensor, a: torch.Tensor, b: torch.Tensor, iterations: int) -> torch.Tensor:
    """For flat ``(P,)`` L*, a*, b*: the largest ``s`` in ``[0, 1)`` (to ``2**-iterations``) found
    by bisection with ``L*, s a*, s b*`` inside the sRGB gamut. The same arithmetic as
    :func:`_lab_to_linear`, unrolled: Y is fixed by L*, so each step recomputes X and Z only."""
    fy = (L + 16.0) / 116.0
    Y = _f_inverse(fy) * _D65_WHITE[1]
    a5, b2 = a / 500.0, b / 200.0
    lo, hi = torch.zeros_like(L), torch.ones_like(L)  # lo fits (the gray of that L*), hi does not
    for _ in range(iterations):
        mid = (lo + hi) / 2
        fx = fy + mid * a5
        fz = (fy - mid * b2).clamp(min=0.0)
        X = _f_inverse(fx) * _D65_WHITE[0]
        Z = _f_inverse(fz) * _D65_WHITE[2]
        fits = torch.ones_like(L, dtype=torch.bool)
        for row in _RGB_FROM_XYZ:
            c = row[0] * X + row[1] * Y + row[2] * Z
            fits &= (c >= -_GAMUT_SLACK) & (c <= 1.0 + _GAMUT_SLACK)
        lo, hi = torch.where(fits, mid, lo), torch.where(fits, hi, mid)
    return lo


def _f_inverse(f: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_f`: cubed above :data:`DELTA`, the line below."""
    return torch.where(f > DELTA, f * f * f, (116.0 * f - 16.0) / KAPPA)


def _lab_to_linear(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b* ``(..., 3, H, W)`` -> linear-light RGB, not clipped (outside [0, 1] = out of gamut)."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp(min=0.0)  # as skimage: negative Z is clipped
    f = torch.stack((fx, fy, fz), dim=-3)
    xyz = _f_inverse(f)
    return _mix([[v * w for v, w in zip(row, _D65_WHITE)] for row in _RGB_FROM_XYZ], xyz)


def _encode(linear: torch.Tensor) -> torch.Tensor:
    """Linear-light RGB -> gamma-encoded sRGB (IEC 61966-2-1), not clipped."""
    return torch.where(
        linear > 0.0031308,
        1.055 * linear.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055,
        12.92 * linear,
    )


# Slack for float rounding: a gray's linear RGB can come out a few 1e-7 above 1 or below 0
# (it is clipped afterwards); 1e-5 in linear light is under 0.01 in L*.
_GAMUT_SLACK = 1e-5


def _in_gamut(linear: torch.Tensor) -> torch.Tensor:
    """Whether each pixel's linear RGB ``(..., 3, H, W)`` is inside the sRGB cube -> ``(..., H, W)``."""
    return ((linear >= -_GAMUT_SLACK) & (linear <= 1.0 + _GAMUT_SLACK)).all(dim=-3)


def rgb_to_L(rgb: torch.Tensor) -> torch.Tensor:
    """L* in ``[0, 100]`` of sRGB ``(N, 3, H, W)`` -> float32 ``(N, 1, H, W)``: the one L*
    function of the package (CIE lightness, ``116 f(Y/Yn) - 16``), the L* of :func:`rgb_to_lab`.

    ``rgb``: uint8 (values 0..255, the fast way for whole photos: the gamma curve is a 256-entry
    table and only the Y row of the XYZ matrix is used; rows are taken a block at a time, so a
    24-megapixel photo needs its 96 MB result and a few MB more), or float in ``[0, 1]``
    (computed as :func:`rgb_to_lab` does, differentiable; outside ``[0, 1]`` clipped). Raises
    ``TypeError`` for a non-tensor and ``ValueError`` for a shape that is not ``(N, 3, H, W)``.
    """
    if rgb.dtype != torch.uint8:  # Y/Yn, the XYZ matrix's middle row
        Y = _mix([[v / _D65_WHITE[1] for v in _XYZ_FROM_RGB[1]]], srgb_to_linear(_check(rgb, "rgb").clamp(0.0, 1.0)))
        return (116.0 * _f(Y) - 16.0).float()
    levels = torch.arange(256, dtype=torch.float64) / 255
    table = srgb_to_linear(levels)
    weights = torch.tensor(_XYZ_FROM_RGB[1], dtype=torch.float64) / _D65_WHITE[1]  # Y, white Y = 1
    lut = (table[None, :] * weights[:, None]).float().to(rgb.device)  # (3, 256)
    N, _, H, W = rgb.shape
    out = torch.empty((N, 1, H, W), dtype=torch.float32, device=rgb.device)
    rows = max(1, _BLOCK_PIXELS // max(1, N * W))
    for top in range(0, H, rows):
        idx = rgb[:, :, top : top + rows].long()
        Y = lut[0][idx[:, 0]] + lut[1][idx[:, 1]] + lut[2][idx[:, 2]]
        out[:, 0, top : top + rows] = 116.0 * _f(Y) - 16.0
    return out


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a*b* in about ``[-128, 127]`` -> ``[0, 1]``, the range of the network's sigmoid (paper 3.2.5)."""
    return (ab + AB_SHIFT) / AB_SCALE


def denormalize_ab(ab01: torch.Tensor) -> torch.Tensor:
    """Network output in ``[0, 1]`` -> a*b* in ``[-128, 127]``; inverse of :func:`normalize_ab`."""
    return ab01 * AB_SCALE - AB_SHIFT


def normalize_L(L: torch.Tensor) -> torch.Tensor:
    """L* in ``[0, 100]`` -> ``[0, 1]``, the network's input range."""
    return L / 100.0


def join_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Stack L* ``(N, 1, H, W)`` in ``[0, 100]`` and a*b* ``(N, 2, H, W)`` into L*a*b*."""
    if L.shape[-2:] != ab.shape[-2:]:
        raise ValueError(f"L {tuple(L.shape)} and ab {tuple(ab.shape)} differ in size")
    return torch.cat((L, ab), dim=-3)
