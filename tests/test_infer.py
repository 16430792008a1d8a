import numpy as np
import pytest
import torch
from PIL import Image

from colorlib.checkpoint import load_model
from colorlib.infer import colorize, colorize_batch, global_features_of, luminance, rgb_tensor, to_rgb_array
from colorlib.lab import rgb_to_lab
from colorlib.model import mix_global


@pytest.fixture(scope="module")
def full():
    return load_model("miniplaces-full")


def L_of(image) -> torch.Tensor:
    return rgb_to_lab(rgb_tensor(to_rgb_array(image)))[0, 0]


@pytest.mark.parametrize("name, crop", [("astronaut", (301, 451)), ("camera", (1000, 37)), ("coffee", None)])
def test_colorize_keeps_size_and_lightness(full, photos, name, crop):
    img = photos[name]
    if crop:
        img = np.asarray(Image.fromarray(img).resize((crop[1], crop[0])))
    out = colorize(full, img)
    assert out.mode == "RGB" and out.size == (img.shape[1], img.shape[0])
    dL = (L_of(out) - L_of(img)).abs().mean()
    assert dL < 0.5
    a_b = rgb_to_lab(rgb_tensor(np.asarray(out)))[0, 1:]
    assert a_b.abs().mean() > 1.0  # it did add colour


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "1", "CMYK"])
def test_any_pil_mode(full, photos, mode):
    src = Image.fromarray(photos["chelsea"][:96, :120])
    img = src.convert("I;16") if mode == "I;16" else src.convert(mode)
    out = colorize(full, img)
    assert out.size == (120, 96) and out.mode == ("RGBA" if mode in ("LA", "RGBA") else "RGB")


def test_transparency_is_kept_and_hidden_colours_do_not_matter(full, photos):
    rgba = np.dstack([photos["chelsea"][:96, :120], np.full((96, 120), 255, np.uint8)])
    rgba[:, :40, 3] = 0  # a transparent band, whose hidden pixels differ below
    other = rgba.copy()
    other[:, :40, :3] = 0
    outs = [colorize(full, x) for x in (rgba, Image.fromarray(other))]
    assert all(o.mode == "RGBA" for o in outs)
    a, b = (np.asarray(o) for o in outs)
    assert np.array_equal(a[..., 3], rgba[..., 3]) and np.array_equal(b[..., 3], rgba[..., 3])
    assert np.array_equal(a[:, 40:], b[:, 40:])  # the network saw the same picture (over white)


def test_half_transparent_pixels_blend_as_the_input_did(full):
    from colorlib.infer import over_white

    x = np.zeros((64, 64, 4), np.uint8)
    x[..., :3], x[..., 3] = 40, 128  # a dark gray at half opacity
    out = np.asarray(colorize(full, x))
    assert np.array_equal(out[..., 3], x[..., 3])
    def over_black(im):
        return (im[..., :3] * (im[..., 3:] / 255)).round().astype(np.uint8)

    for seen in (lambda im: over_white(im[..., :3], im[..., 3]), over_black):
        # the output blends to the input's lightness over white and over black alike (to within
        # what blending a colour instead of a gray in sRGB changes; blending twice was 20 off)
        assert abs(float(luminance(seen(out)).mean() - luminance(seen(x)).mean())) < 3


@pytest.mark.parametrize("H", [20, 21])
def test_half_resolution_output_stays_centred_on_its_pixels(H):
    from colorlib.infer import upsample_ab

    h = (H + 1) // 2
    ramp = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1).expand(1, 2, h, 3)  # value = half-res row
    up = upsample_ab(ramp, (H, 5))
    assert up.shape == (1, 2, H, 5)
    # full-res row i is centred at half-res row (i - 0.5) / 2: a linear ramp keeps that value
    inner = torch.arange(1, H - 1, dtype=torch.float32)
    assert torch.allclose(up[0, 0, 1 : H - 1, 0], (inner - 0.5) / 2, atol=1e-6)


def test_16_bit_gray_keeps_its_lightness(tmp_path):
    a = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 .. 64,491
    truth = luminance(a)  # uint16 arrays: / 257
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    for image in (Image.fromarray(a), tmp_path / "g16.png"):  # PIL image, and a file
        assert float((luminance(image) - truth).abs().max()) < 1e-4
    dark = Image.fromarray((np.arange(48 * 64).reshape(48, 64) % 60).astype(np.uint8))
    assert float((luminance(dark.convert("I")) - luminance(dark)).abs().max()) < 1e-4  # 8-bit in mode I


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_models_of_other_dtypes(photos, dtype):
    img = photos["coffee"][:40, :52]
    ref = np.asarray(colorize(load_model("miniplaces-full"), img), int)
    for fold in (True, False):
        out = np.asarray(colorize(load_model("miniplaces-full").to(dtype), img, fold=fold), int)
        assert np.abs(out - ref).max() <= 3


def test_colorize_batch_uses_running_statistics_and_keeps_the_mode(full, photos):
    rgb = rgb_tensor(photos["coffee"][:64, :64]).repeat(2, 1, 1, 1)
    stats = [b.clone() for b in full.buffers()]
    full.train()
    try:
        out = colorize_batch(full, rgb)
        assert full.training
    finally:
        full.eval()
    assert all(torch.equal(a, b) for a, b in zip(stats, full.buffers()))
    assert torch.allclose(out, colorize_batch(full, rgb))


def test_arrays_of_other_types(full, photos):
    rgb = photos["astronaut"][:64, :80]
    a = colorize(full, rgb.astype(np.float32) / 255)
    b = colorize(full, rgb)
    assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 1
    assert colorize(full, rgb[..., 0].astype(np.uint16) * 257).size == (80, 64)
    with pytest.raises(ValueError, match="float images must be in"):
        colorize(full, rgb.astype(np.float32))
    with pytest.raises(ValueError, match="expected an image"):
        colorize(full, np.zeros((2, 3, 4, 5)))


def test_trained_style_transfer_changes_colours_and_mixing_interpolates(full, photos):
    local, other = photos["astronaut"], photos["coffee"]
    own = np.asarray(colorize(full, local), float)
    swapped = np.asarray(colorize(full, local, global_image=other), float)
    assert np.abs(own - swapped).mean() > 0.5
    g_a, g_b = global_features_of(full, local), global_features_of(full, other)
    assert np.abs(np.asarray(colorize(full, local, global_features=mix_global(g_a, g_b, 0.0)), float)
                  - own).max() <= 1
    assert np.abs(np.asarray(colorize(full, local, global_features=mix_global(g_a, g_b, 1.0)), float)
                  - swapped).max() <= 1


def test_paths_and_missing_files(full, tmp_path, photos):
    Image.fromarray(photos["coffee"]).save(tmp_path / "c.jpg")
    assert colorize(full, tmp_path / "c.jpg").size == (600, 400)
    with pytest.raises(FileNotFoundError):
        colorize(full, tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not an image"):
        colorize(full, tmp_path / "bad.jpg")


def test_folded_model_is_cached_and_refreshed(photos):
    m = load_model("miniplaces-baseline")
    img = photos["coffee"][:64, :64]
    first = np.asarray(colorize(m, img))
    assert np.array_equal(first, np.asarray(colorize(m, img)))
    with torch.no_grad():
        m.colorization.output.bias += 0.5  # weights changed: the folded copy must follow
    second = np.asarray(colorize(m, img))
    assert not np.array_equal(first, second)
    m.colorization.output.bias.data -= 0.5  # through .data: no version counter sees it
    assert not np.array_equal(second, np.asarray(colorize(m, img)))


def test_luminance_of_gray_and_colour(photos):
    assert luminance(photos["camera"]).shape == (1, 1, 512, 512)


def test_transparency_key_of_a_16_bit_png_and_premultiplied_la(tmp_path):
    from colorlib.infer import rgb_and_alpha

    a = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "t16.png", transparency=0)  # gray level 0 is transparent
    rgb, alpha = rgb_and_alpha(tmp_path / "t16.png")
    assert alpha[0, 0] == 0 and (alpha.ravel()[1:] == 255).all() and rgb[0, 1, 0] == 4  # 1000 / 257
    la = Image.fromarray(np.full((8, 8), 100, np.uint8)).convert("LA").convert("La")
    rgb, alpha = rgb_and_alpha(la)
    assert rgb.shape == (8, 8, 3) and (alpha == 255).all() and (rgb == 100).all()
