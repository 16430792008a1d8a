"""Reading and writing image files: every PIL mode, arrays and file objects in; PNG/JPEG/... out.

Reading gives the image's own 8-bit sRGB and its alpha channel (:func:`rgb_and_alpha`), or the
RGB a viewer shows, transparent pixels composited over white (:func:`to_rgb_array`).
:func:`save_image` writes through :func:`colorlib.io.atomic_write`, so a failed save leaves no
partial file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .io import atomic_write

ImageLike = Image.Image | np.ndarray | str | os.PathLike

#: Formats whose files keep an alpha channel; others get RGBA composited over white.
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any PIL image, path, or array (gray ``(H, W)``, RGB/RGBA ``(H, W, 3|4)``, uint8,
    uint16 or float in [0, 1]) -> uint8 RGB ``(H, W, 3)``. EXIF orientation is applied to
    files. 16-bit gray (PIL modes ``I;16*``, uint16 arrays) is scaled by 255/65535; PIL's
    32-bit mode ``I`` likewise when it holds values above 255, else it is read as 8-bit.
    Transparent pixels are composited over white, as a viewer shows them."""
    rgb, alpha = rgb_and_alpha(image)
    return rgb if alpha is None else over_white(rgb, alpha)


def rgb_and_alpha(image: ImageLike) -> tuple[np.ndarray, np.ndarray | None]:
    """The image's own (not composited) uint8 RGB ``(H, W, 3)`` and its alpha channel (uint8
    ``(H, W)``; None when it has none), read as :func:`to_rgb_array` reads it."""
    if isinstance(image, (str, os.PathLike)):
        image = _open(Path(image))
    if isinstance(image, Image.Image):
        if image.mode.startswith("I"):  # 16- or 32-bit gray: never through convert("RGB"), which clips
            raw = np.asarray(image)
            a = raw.astype(np.float64)
            if image.mode.startswith("I;16") or a.max() > 255:
                a = a.clip(0, 65535) / 257
            key = image.info.get("transparency")  # a 16-bit PNG's transparent gray level
            alpha = None if not isinstance(key, int) else np.where(raw == key, 0, 255).astype(np.uint8)
            return rgb_and_alpha(a.clip(0, 255).round().astype(np.uint8))[0], alpha
        if image.mode == "La":  # premultiplied: PIL converts it to RGBA only through LA
            image = image.convert("LA")
        if image.mode in ("RGBA", "RGBa", "LA", "PA") or "transparency" in image.info:
            rgba = np.array(image.convert("RGBA"))
            return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
        return np.array(image.convert("RGB")), None
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image shaped (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    a = _to_uint8(a)
    if a.shape[-1] == 4:
        return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3])
    return np.ascontiguousarray(np.broadcast_to(a, (*a.shape[:2], 3))), None


def over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` with alpha ``(H, W)`` -> uint8 RGB composited over white."""
    w = alpha[..., None].astype(np.float32) / 255
    return (rgb.astype(np.float32) * w + 255 * (1 - w)).round().astype(np.uint8)


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``image`` to ``path`` in the format its suffix names (``.png``, ``.jpg``, ...).

    RGBA stays RGBA in formats that hold alpha (:data:`ALPHA_FORMATS`); other formats get it
    composited over white, as a viewer shows it. The file is encoded in memory first and then
    written atomically, so a format that fails, or a full disk, leaves no file behind.
    Raises ``ValueError`` (one line) for a suffix PIL cannot write and
    :class:`colorlib.io.WriteError` when the file cannot be written.
    """
    path = Path(path)
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt not in Image.SAVE:
        raise ValueError(f"cannot tell the image format of {path}: give a name ending in .png or .jpg")
    if image.mode == "RGBA" and fmt not in ALPHA_FORMATS:
        rgba = np.asarray(image)
        image = Image.fromarray(over_white(rgba[..., :3], rgba[..., 3]))
    buf = io.BytesIO()
    try:
        image.save(buf, format=fmt)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot save a {image.mode} image as {fmt} ({path}): {e}") from None
    data = buf.getvalue()
    return atomic_write(path, lambda p: p.write_bytes(data))


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise FileNotFoundError(f"no such image: {path}")
    try:
        with Image.open(path) as im:
            image = ImageOps.exif_transpose(im)
            image.load()
        return image
    except Image.DecompressionBombError as e:
        raise ValueError(f"{path} is too large to open safely: {e}") from e
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{path} is not an image PIL can read: {e}") from e


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if a.min() < 0 or a.max() > 1:
            raise ValueError("float images must be in [0, 1]")
        return (a * 255).round().astype(np.uint8)
    if a.dtype == np.uint16:
        return (a / 257).round().astype(np.uint8)
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    raise ValueError(f"unsupported image dtype {a.dtype}")
