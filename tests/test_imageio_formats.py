"""Every output suffix ``colorize -o`` accepts keeps each pixel's lightness (issue 11, item 9).

A colour image is saved through :func:`colorlib.imageio.save_image` under every suffix the
command accepts and read back: the size is kept, and every pixel's L* is within the format's
:data:`~colorlib.imageio.LIGHTNESS_TOLERANCE` (0 for lossless formats) of the image saved.
Formats that cannot keep a colour image (GIF's 256 colours, document formats, fixed icon
sizes) are refused in one line, before anything is written.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from colorlib.cli.colorize import _writes_colour
from colorlib.imageio import LIGHTNESS_TOLERANCE, MAX_SIDE, REFUSED_FORMATS, output_format, save_image
from colorlib.lab import rgb_to_lab

Image.init()
SUFFIXES = sorted(ext for ext, fmt in Image.registered_extensions().items()
                  if fmt in Image.SAVE and fmt not in REFUSED_FORMATS and _writes_colour(fmt))


def L_of(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1))[0].numpy()


@pytest.fixture(scope="module")
def colourful(photos) -> list[np.ndarray]:
    """Saturated real photos at an odd size (no format gets a multiple of 8 or 16 for free)."""
    return [photos[name][:197, :253] for name in ("astronaut", "coffee", "chelsea")]


def test_the_formats_are_the_expected_ones():
    assert {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"} <= set(SUFFIXES)
    assert not {".gif", ".pdf", ".eps", ".icns"} & set(SUFFIXES)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_accepted_suffix_keeps_lightness_within_its_measured_tolerance(suffix, colourful, tmp_path):
    fmt = Image.registered_extensions()[suffix]
    tolerance = LIGHTNESS_TOLERANCE.get(fmt, 0.0)
    for i, rgb in enumerate(colourful):
        side = MAX_SIDE.get(fmt)
        rgb = rgb if side is None else rgb[:side, :side]
        path = save_image(Image.fromarray(rgb), tmp_path / f"{i}{suffix}")
        with Image.open(path) as im:
            back = np.asarray(im.convert("RGB"))
        assert back.shape == rgb.shape, suffix
        worst = float(np.abs(L_of(back) - L_of(rgb)).max())
        assert worst <= tolerance + 1e-3, f"{suffix}: L* moved by up to {worst:.2f} (tolerance {tolerance})"


@pytest.mark.parametrize("suffix", [".gif", ".pdf", ".eps", ".icns"])
def test_a_format_that_cannot_keep_a_colour_image_is_refused_before_writing(suffix, colourful, tmp_path):
    with pytest.raises(ValueError) as e:
        save_image(Image.fromarray(colourful[0]), tmp_path / f"x{suffix}")
    message = str(e.value)
    assert "\n" not in message and str(tmp_path / f"x{suffix}") in message and "give a name ending in .png" in message
    assert list(tmp_path.iterdir()) == []


def test_an_image_too_large_for_ico_is_refused_not_shrunk(colourful, tmp_path):
    """PIL would silently store a 394-pixel-high image as a 256x256 icon."""
    tall = np.concatenate([colourful[0], colourful[0]])  # 253 x 394
    with pytest.raises(ValueError) as e:
        save_image(Image.fromarray(tall), tmp_path / "x.ico")
    assert str(e.value) == (f"{tmp_path / 'x.ico'}: a 253x394 image is too large for ICO, which holds at most "
                            "256x256; give a name ending in .png")
    assert list(tmp_path.iterdir()) == []
    assert output_format(tmp_path / "x.ico", (256, 256)) == "ICO"
