import io
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import colorlib.infer
from colorlib.checkpoint import load_model
from colorlib.imageio import over_white, rgb_and_alpha, save_image, to_rgb_array
from colorlib.infer import colorize, lightness

# The 8-bit rounding of colorize's output moves L* by up to 0.25 (measured on the test photos and
# on every L*, a*, b* grid point); 0.3 leaves a little room and stays well under the 0.5 promised.
L_TOLERANCE = 0.3


@pytest.fixture(scope="module")
def full():
    return load_model("miniplaces-full")


@pytest.fixture(scope="module")
def src(photos):
    return Image.fromarray(photos["chelsea"][100:164, 150:230])  # 80x64, colour and texture


def L_of(rgb: np.ndarray) -> torch.Tensor:
    return lightness(np.asarray(rgb)[..., :3])[0, 0]


def _lab_image(src: Image.Image) -> Image.Image:
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    return ImageCms.applyTransform(src, to_lab)


def _with_transparency(src: Image.Image) -> Image.Image:
    p = src.convert("P")
    p.info["transparency"] = int(np.asarray(p)[0, 0])  # the top-left pixel's palette index
    return p


def _u16(src):
    return np.asarray(src.convert("L")).astype(np.uint16) * 257 + 100  # 100 .. 65,635 - 65,535 max


# mode name -> (how to make it from an 8-bit RGB image, the 8-bit RGB its lightness must equal)
MODES = {
    "1": (lambda s: s.convert("1"), lambda im: np.asarray(im.convert("RGB"))),
    "L": (lambda s: s.convert("L"), lambda im: np.asarray(im.convert("RGB"))),
    "LA": (lambda s: s.convert("LA"), lambda im: np.asarray(im.convert("RGBA"))[..., :3]),
    "La": (lambda s: s.convert("LA").convert("La"), lambda im: np.asarray(im.convert("LA").convert("RGB"))),
    "P": (lambda s: s.convert("P"), lambda im: np.asarray(im.convert("RGB"))),
    "P+transparency": (_with_transparency, lambda im: np.asarray(im.convert("RGBA"))[..., :3]),
    "PA": (lambda s: s.convert("PA"), lambda im: np.asarray(im.convert("RGBA"))[..., :3]),
    "RGB": (lambda s: s, lambda im: np.asarray(im)),
    "RGBA": (lambda s: s.convert("RGBA"), lambda im: np.asarray(im)[..., :3]),
    "RGBa": (lambda s: s.convert("RGBA").convert("RGBa"), lambda im: np.asarray(im.convert("RGBA"))[..., :3]),
    "RGBX": (lambda s: s.convert("RGBX"), lambda im: np.asarray(im.convert("RGB"))),
    "CMYK": (lambda s: s.convert("CMYK"), lambda im: np.asarray(im.convert("RGB"))),
    "YCbCr": (lambda s: s.convert("YCbCr"), lambda im: np.asarray(im.convert("RGB"))),
    "HSV": (lambda s: s.convert("HSV"), lambda im: np.asarray(im.convert("RGB"))),
    # 32-bit integer: 0..255 is 8-bit gray, larger values 16-bit (/ 257)
    "I 8-bit": (lambda s: s.convert("L").convert("I"), lambda im: np.asarray(im).astype(np.uint8)),
    "I 16-bit": (lambda s: Image.fromarray(_u16(s).astype(np.int32)),
                 lambda im: np.round(np.asarray(im) / 257).astype(np.uint8)),
    "I;16": (lambda s: Image.fromarray(_u16(s)), lambda im: np.round(np.asarray(im) / 257).astype(np.uint8)),
    "I;16B": (lambda s: Image.fromarray(_u16(s).astype(">u2")),
              lambda im: np.round(np.asarray(im).astype(float) / 257).astype(np.uint8)),
    # 32-bit float: [0, 1] is a fraction of white; [0, 255] 8-bit levels (as PIL's L -> F gives)
    "F [0, 1]": (lambda s: Image.fromarray(np.asarray(s.convert("L"), np.float32) / 255),
                 lambda im: np.round(np.asarray(im) * 255).astype(np.uint8)),
    "F [0, 255]": (lambda s: s.convert("L").convert("F"), lambda im: np.round(np.asarray(im)).astype(np.uint8)),
}
ALPHA = {"LA", "La", "P+transparency", "PA", "RGBA", "RGBa"}


@pytest.mark.parametrize("name", list(MODES))
def test_every_pil_mode_keeps_its_lightness_on_every_pixel(full, src, name):
    make, expected_rgb = MODES[name]
    img = make(src)
    assert img.mode == name.split()[0].split("+")[0]
    want = expected_rgb(img)
    if want.ndim == 2:
        want = np.repeat(want[..., None], 3, axis=-1)
    out = colorize(full, img)
    assert out.size == (80, 64)
    assert out.mode == ("RGBA" if name in ALPHA else "RGB")
    dL = (L_of(np.asarray(out)) - L_of(want)).abs().max()
    assert float(dL) <= L_TOLERANCE, f"{name}: L* moved by up to {float(dL):.3f}"


def test_lab_mode_keeps_the_files_lightness(full, src):
    lab = _lab_image(src)
    assert lab.mode == "LAB"
    file_L = torch.from_numpy(np.asarray(lab)[..., 0] * (100 / 255)).float()
    read = to_rgb_array(lab)
    # read through this library's L*a*b* -> sRGB at constant L*, then rounded to 8 bits once
    assert float((L_of(read) - file_L).abs().max()) <= L_TOLERANCE
    out = colorize(full, lab)
    assert out.mode == "RGB" and float((L_of(np.asarray(out)) - L_of(read)).abs().max()) <= L_TOLERANCE
    gray = Image.new("LAB", (4, 4), (128, 128, 128))  # a*, b* = 0 (getpixel and new show them + 128)
    assert np.asarray(gray).tolist()[0][0] == [128, 0, 0]  # stored as signed bytes
    assert (to_rgb_array(gray) == to_rgb_array(gray)[0, 0, 0]).all()
    assert abs(float(L_of(to_rgb_array(gray))[0, 0]) - 128 * 100 / 255) < L_TOLERANCE


@pytest.mark.parametrize("values, level", [
    (("I", [0, 200]), 200),  # within 0..255: 8-bit
    (("I", [0, 257 * 200]), 200),  # above 255: 16-bit, / 257
    (("F", [0.0, 0.5]), 128),  # within [0, 1]: x 255
    (("F", [0.0, 200.0]), 200),  # within [0, 255]: 8-bit levels
    (("F", [0.0, 257 * 200.0]), 200),  # within [0, 65535]: 16-bit levels
])
def test_how_32_bit_modes_are_scaled(values, level):
    mode, (lo, hi) = values
    img = Image.fromarray(np.array([[lo, hi]], np.int32 if mode == "I" else np.float32))
    assert img.mode == mode
    rgb, alpha = rgb_and_alpha(img)
    assert alpha is None and rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 1].tolist() == [level] * 3


@pytest.mark.parametrize("mode, values, message", [
    ("I", [-5, 100], r"values span -5\.\.100"),
    ("I", [0, 70000], r"values span 0\.\.70000"),
    ("F", [-0.5, 0.5], r"values span -0\.5\.\.0\.5"),
    ("F", [0.0, float("nan")], "NaN or infinite"),
    ("F", [0.0, float("inf")], "NaN or infinite"),
])
def test_32_bit_images_without_a_defined_lightness_are_refused(mode, values, message):
    img = Image.fromarray(np.array([values], np.int32 if mode == "I" else np.float32))
    with pytest.raises(ValueError, match=message) as e:
        rgb_and_alpha(img)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_arrays_are_refused(full, bad):
    a = np.full((8, 8, 3), 0.5, np.float32)
    a[2, 3, 1] = bad
    with pytest.raises(ValueError, match="must be finite: this one has 1 NaN or infinite"):
        colorize(full, a)
    with pytest.raises(ValueError, match="NaN or infinite"):
        colorlib.infer.colorize_batch(full, torch.from_numpy(a).permute(2, 0, 1)[None])


def test_float_arrays_are_read_in_float32_and_rounded():
    a = np.array([[0.0, 0.5, 1.0, 0.2]], np.float64)
    assert to_rgb_array(a)[0, :, 0].tolist() == [0, 128, 255, 51]
    u16 = np.array([[0, 128, 129, 257 * 100 + 128, 65535]], np.uint16)
    assert to_rgb_array(u16)[0, :, 0].tolist() == [0, 0, 1, 100, 255]  # round(v / 257)
    assert to_rgb_array(u16)[0, :, 0].tolist() == np.round(u16[0] / 257).astype(int).tolist()


@pytest.mark.parametrize("empty", [np.zeros((0, 0), np.uint8), np.zeros((0, 5, 3), np.uint8),
                                   np.zeros((4, 0), np.float32), Image.new("RGB", (0, 0))])
def test_no_pixels(full, empty):
    with pytest.raises(ValueError, match="^image has no pixels$"):
        colorize(full, empty)


def _frames(n: int) -> list[Image.Image]:
    return [Image.fromarray(np.full((16, 24, 3), 40 + 60 * i, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("fmt", ["gif", "tiff", "png"])
def test_multi_frame_files_warn_and_give_the_first_frame(full, tmp_path, fmt):
    path = tmp_path / f"anim.{fmt}"
    first, *rest = _frames(3)
    first.save(path, save_all=True, append_images=rest)
    with pytest.warns(UserWarning, match=rf"^{path} has 3 frames; only the first is colorized$"):
        out = colorize(full, path)
    with Image.open(path) as im:
        frame0 = np.array(im.convert("RGB"))
    assert np.array_equal(np.asarray(out), np.asarray(colorize(full, frame0)))
    with pytest.warns(UserWarning, match="has 3 frames"):
        rgb = to_rgb_array(io.BytesIO(path.read_bytes()))
    assert np.array_equal(rgb, frame0)


def test_single_frame_files_do_not_warn(full, tmp_path, photos):
    Image.fromarray(photos["coffee"][:32, :32]).save(tmp_path / "one.gif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (a "has N frames" one above all) fails the test
        out = colorize(full, tmp_path / "one.gif")
    # ... and the one frame is colorized whole: its size, and the same answer as its decoded pixels.
    assert out.size == (32, 32)
    with Image.open(tmp_path / "one.gif") as im:
        frame = np.array(im.convert("RGB"))
    assert np.array_equal(np.asarray(out), np.asarray(colorize(full, frame)))


def test_folders_and_devices_are_named_as_such(tmp_path):
    with pytest.raises(ValueError, match=f"^{tmp_path} is a folder, not an image file$"):
        to_rgb_array(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it to read would wait forever for a writer
    with pytest.raises(ValueError, match="pipe is not a regular file$"):
        to_rgb_array(fifo)
    if os.path.exists("/dev/null"):
        with pytest.raises(ValueError, match="^/dev/null is not a regular file$"):
            to_rgb_array("/dev/null")
    with pytest.raises(FileNotFoundError, match="no such image"):
        to_rgb_array(tmp_path / "missing.png")


def test_binary_file_objects(full, photos, tmp_path):
    rgb = photos["coffee"][:40, :56]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    buf.seek(0)
    assert np.array_equal(np.asarray(colorize(full, buf)), np.asarray(colorize(full, rgb)))
    with pytest.raises(ValueError, match="^the image data is not an image PIL can read"):
        to_rgb_array(io.BytesIO(b"not an image"))
    (tmp_path / "x.png").write_bytes(buf.getvalue())
    with open(tmp_path / "x.png", "rb") as f:
        assert np.array_equal(to_rgb_array(f), rgb)


def test_readers_are_importable_from_infer_too():
    for name in ("to_rgb_array", "rgb_and_alpha", "over_white"):
        assert getattr(colorlib.infer, name) is getattr(colorlib.imageio, name)


def _rgba() -> Image.Image:
    a = np.zeros((16, 32, 4), np.uint8)
    a[..., 0], a[..., 3] = 200, 255
    a[:, :16, 3] = 0  # the left half transparent
    return Image.fromarray(a)


def test_save_image_keeps_alpha_where_the_format_can(tmp_path):
    img = _rgba()
    for suffix in (".png", ".webp", ".tiff"):
        path = save_image(img, tmp_path / f"out{suffix}")
        with Image.open(path) as back:
            assert back.mode == "RGBA" and np.array_equal(np.asarray(back)[..., 3], np.asarray(img)[..., 3])
    for suffix in (".bmp", ".jpg"):  # composited over white, as a viewer shows it
        with Image.open(save_image(img, tmp_path / f"out{suffix}")) as back:
            assert back.mode == "RGB"
            px = np.asarray(back).astype(float)
        if suffix == ".bmp":
            assert (px[:, :16] == 255).all() and (px[:, 16:] == (200, 0, 0)).all()
        else:  # lossy: on average
            assert px[:, :14].mean() > 250 and np.abs(px[:, 18:].mean((0, 1)) - (200, 0, 0)).max() < 10


def test_save_image_refuses_clearly_and_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the image format of .*out.xyz"):
        save_image(_rgba(), tmp_path / "out.xyz")
    target = tmp_path / "keep.jpg"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError, match="cannot save a I;16 image as JPEG") as e:
        save_image(Image.fromarray(np.zeros((4, 4), np.uint16)), target)
    assert "\n" not in str(e.value)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jpg"]  # no temporary file left


def test_over_white():
    rgb = np.array([[[0, 0, 0], [100, 50, 0]]], np.uint8)
    assert over_white(rgb, np.array([[0, 255]], np.uint8)).tolist() == [[[255, 255, 255], [100, 50, 0]]]
    assert over_white(rgb, np.array([[128, 128]], np.uint8))[0, 0].tolist() == [127, 127, 127]


@pytest.mark.parametrize("given, said", [
    (b"\x89PNG\r\n...", "got bytes (9 bytes); wrap a file's bytes in io.BytesIO(data)"),
    (bytearray(3), "got bytearray (3 bytes); wrap a file's bytes in io.BytesIO(data)"),
    (None, "got None"),
    (5, "got int"),
    ({"image": 1}, "got dict"),
    ([[0, 1], [2]], "got list (not a rectangular array)"),
])
def test_what_is_no_image_is_named_with_what_is_accepted(full, given, said):
    """Issue 25: colorize(model, b"...") and colorize(model, None) said "expected an image shaped
    (H, W), ... got ()": the shape of a 0-d array the caller never made."""
    with pytest.raises(TypeError) as e:
        colorize(full, given)
    assert str(e.value) == ("expected an image: a PIL image, an array shaped (H, W), (H, W, 3) or (H, W, 4), a "
                            f"path, or a binary file object (io.BytesIO); {said}")
    with pytest.raises(ValueError, match=r"got an array shaped \(2, 3, 5\)$"):
        colorize(full, np.zeros((2, 3, 5), np.uint8))
