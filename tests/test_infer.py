import numpy as np
import pytest
import torch
from PIL import Image

from colorlib.checkpoint import load_model
from colorlib.imageio import to_rgb_array
from colorlib.infer import colorize, colorize_batch, global_features_of, lightness, rgb_tensor
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
    assert dL < 0.1  # measured 0.061-0.074 (8-bit rounding); L* rounded to whole numbers gives 0.25
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
    from colorlib.imageio import over_white

    x = np.zeros((64, 64, 4), np.uint8)
    x[..., :3], x[..., 3] = 40, 128  # a dark gray at half opacity
    out = np.asarray(colorize(full, x))
    assert np.array_equal(out[..., 3], x[..., 3])
    def over_black(im):
        return (im[..., :3] * (im[..., 3:] / 255)).round().astype(np.uint8)

    for seen in (lambda im: over_white(im[..., :3], im[..., 3]), over_black):
        # the output blends to the input's lightness over white and over black alike (to within
        # what blending a colour instead of a gray in sRGB changes; blending twice was 20 off)
        # measured 0.65 over white, 0.13 over black
        assert abs(float(lightness(seen(out)).mean() - lightness(seen(x)).mean())) < 1.0


@pytest.mark.parametrize("H", [20, 21])
def test_half_resolution_output_stays_centred_on_its_pixels(H):
    from colorlib.model import upsample_ab

    h = (H + 1) // 2
    ramp = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1).expand(1, 2, h, 3)  # value = half-res row
    up = upsample_ab(ramp, (H, 5))
    assert up.shape == (1, 2, H, 5)
    # full-res row i is centred at half-res row (i - 0.5) / 2: a linear ramp keeps that value
    inner = torch.arange(1, H - 1, dtype=torch.float32)
    assert torch.allclose(up[0, 0, 1 : H - 1, 0], (inner - 0.5) / 2, atol=1e-6)


def test_16_bit_gray_keeps_its_lightness(tmp_path):
    a = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 .. 64,491
    truth = lightness(a)  # uint16 arrays: / 257
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    for image in (Image.fromarray(a), tmp_path / "g16.png"):  # PIL image, and a file
        assert float((lightness(image) - truth).abs().max()) < 1e-4
    dark = Image.fromarray((np.arange(48 * 64).reshape(48, 64) % 60).astype(np.uint8))
    assert float((lightness(dark.convert("I")) - lightness(dark)).abs().max()) < 1e-4  # 8-bit in mode I


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


def test_folding_is_an_explicit_step_with_no_cache(photos):
    """colorize folds a copy per call (nothing kept), so weight edits show at once, whichever
    way they are made; a model folded once is used as it is and gives the same picture."""
    from colorlib.infer import inference_model
    from colorlib.model import fold_batchnorm

    m = load_model("miniplaces-baseline")
    img = photos["coffee"][:64, :64]
    first = np.asarray(colorize(m, img))
    folded = fold_batchnorm(m)
    assert not m.is_folded and folded.is_folded
    assert inference_model(folded) is folded and inference_model(m) is not m
    assert np.abs(np.asarray(colorize(folded, img), int) - first).max() <= 1  # float rounding only
    with torch.no_grad():
        m.colorization.output.bias += 0.5  # weights changed: the next call sees them
    second = np.asarray(colorize(m, img))
    assert not np.array_equal(first, second)
    m.colorization.output.bias.data -= 0.5  # through .data
    assert np.array_equal(first, np.asarray(colorize(m, img)))


def test_lightness_of_gray_and_colour(photos):
    """L* of a gray and a colour photo against scikit-image's rgb2lab (measured 3.6e-5, 3.9e-5)."""
    from skimage.color import gray2rgb, rgb2lab

    for name in ("camera", "astronaut"):
        L = lightness(photos[name])
        rgb = photos[name] if photos[name].ndim == 3 else gray2rgb(photos[name])
        assert L.shape == (1, 1, *rgb.shape[:2])
        assert np.abs(L[0, 0].numpy() - rgb2lab(rgb)[..., 0]).max() < 1e-4


def test_transparency_key_of_a_16_bit_png_and_premultiplied_la(tmp_path):
    from colorlib.imageio import rgb_and_alpha

    a = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "t16.png", transparency=0)  # gray level 0 is transparent
    rgb, alpha = rgb_and_alpha(tmp_path / "t16.png")
    assert alpha[0, 0] == 0 and (alpha.ravel()[1:] == 255).all() and rgb[0, 1, 0] == 4  # 1000 / 257
    la = Image.fromarray(np.full((8, 8), 100, np.uint8)).convert("LA").convert("La")
    rgb, alpha = rgb_and_alpha(la)
    assert rgb.shape == (8, 8, 3) and (alpha == 255).all() and (rgb == 100).all()


# The 8-bit rounding of colorize's output moves L* by up to 0.25 (measured on the test photos at
# the model's gain and at saturation 4, and on an L*, a*, b* grid); 0.3 leaves a little room and
# stays under the 0.5 issue 11 asks for. RGB clipping, as before, moved it by several units.
L_TOLERANCE = 0.3


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera"])
@pytest.mark.parametrize("saturation", [None, 4.0])
def test_every_pixel_keeps_its_lightness(full, photos, name, saturation):
    img = photos[name]
    out = colorize(full, img, saturation=saturation)
    dL = (L_of(out) - L_of(img)).abs()
    assert float(dL.max()) <= L_TOLERANCE


def test_colorize_batch_keeps_lightness_on_every_pixel_and_clipping_would_not(full, photos):
    from colorlib.lab import join_lab, lab_to_rgb

    rgb = rgb_tensor(photos["astronaut"][::4, ::4])
    out = colorize_batch(full, rgb, saturation=4.0)
    L = rgb_to_lab(rgb)[:, :1]
    assert float((rgb_to_lab(out)[:, :1] - L).abs().max()) < 0.02  # float output: no rounding
    clipped = lab_to_rgb(join_lab(L, rgb_to_lab(out)[:, 1:] * 1.5))  # what clipping does to such colours
    assert float((rgb_to_lab(clipped)[:, :1] - L).abs().max()) > 1


def test_network_size_keeps_the_aspect_ratio_under_the_bound():
    from colorlib.infer import DEFAULT_MAX_PIXELS, network_size

    assert DEFAULT_MAX_PIXELS == 2048 * 2048 == 4_194_304  # the paper's largest Table 3 size
    assert network_size(4000, 6000) == (1672, 2508)
    assert network_size(2048, 2048) == (2048, 2048)
    assert network_size(4000, 6000, None) == (4000, 6000)
    for H, W, m in [(4000, 6000, 10**6), (7, 100_000, 5000), (100_000, 3, 10), (999, 1001, 998_000)]:
        h, w = network_size(H, W, m)
        assert 1 <= h * w <= m and h <= H and w <= W
        if min(h, w) > 20:
            assert abs(h / w - H / W) / (H / W) < 0.01
    for bad in (0, -5):
        with pytest.raises(ValueError, match="max_pixels must be at least 1"):
            network_size(10, 10, bad)


def test_large_images_run_the_network_on_at_most_max_pixels(full, photos, monkeypatch):
    import colorlib.infer as infer

    seen = []
    real = infer._predict_with  # the one call of the network

    def spy(net, L, *args, **kwargs):
        seen.append(tuple(L.shape[-2:]))
        return real(net, L, *args, **kwargs)

    monkeypatch.setattr(infer, "_predict_with", spy)
    img = photos["coffee"]  # 400x600
    out = colorize(full, img, max_pixels=60_000)
    assert seen == [(200, 300)] and out.size == (600, 400)
    assert float((L_of(out) - L_of(img)).abs().max()) <= L_TOLERANCE  # its own full-resolution L*
    a_b = rgb_to_lab(rgb_tensor(np.asarray(out)))[0, 1:]
    assert a_b.abs().mean() > 1.0
    # bound above the size, or none: the network sees every pixel and the result is the same
    seen.clear()
    same = [np.asarray(colorize(full, img, max_pixels=m)) for m in (None, 240_000)]
    assert seen == [(400, 600)] * 2 and np.array_equal(*same)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "100", "many"])
def test_bad_max_pixels(full, photos, bad):
    with pytest.raises((ValueError, TypeError), match="max_pixels"):
        colorize(full, photos["coffee"][:8, :8], max_pixels=bad)


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: not enough memory: "
                 "you tried to allocate 3019898880 bytes."),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    MemoryError(),
])
def test_running_out_of_memory_is_one_line_with_the_size_and_an_estimate(full, photos, monkeypatch, error):
    import colorlib.infer as infer

    def no_memory(*args, **kwargs):
        raise error

    monkeypatch.setattr(infer, "_predict_with", no_memory)  # the network call
    with pytest.raises(MemoryError, match=r"^not enough memory to colorize a 600x400 image .* about "
                                          r"[0-9.]+ GB; pass a smaller max_pixels$") as e:
        colorize(full, photos["coffee"], max_pixels=None)
    assert "\n" not in str(e.value)


def test_other_runtime_errors_are_not_called_memory(full, photos, monkeypatch):
    import colorlib.infer as infer

    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(infer, "_predict_with", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        colorize(full, photos["coffee"][:16, :16])


def test_memory_estimate_follows_the_bound(full):
    from colorlib.infer import estimate_memory

    bounded, unbounded = estimate_memory(full, 4000, 6000), estimate_memory(full, 4000, 6000, None)
    # measured with benchmarks/peak_memory.py: 930 MiB and 2,770 MiB peak RSS, 359 MiB of which
    # is the process (torch, the model) before colorizing
    assert 0.45e9 < bounded < 0.75e9 and 2.0e9 < unbounded < 2.7e9
    assert estimate_memory(load_model("miniplaces-full").to(torch.bfloat16), 4000, 6000, None) < unbounded


def test_classify_gives_the_top_classes_of_the_gray_image(full, photos):
    from colorlib.infer import classify
    from colorlib.lab import normalize_L

    top = classify(full, photos["coffee"], top=5)
    assert len(top) == 5 and all(isinstance(n, str) and 0 <= p <= 1 for n, p in top)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    classes = full.meta["classes"]
    # a consistency check against the unfolded network's own forward pass (section 3.3's head on
    # L* alone), not classify's folded path; no independent label exists (coffee -> parking_lot)
    with torch.inference_mode():
        logits = full.eval()(normalize_L(lightness(photos["coffee"]))).logits
    probs = logits.softmax(1)[0]
    best = probs.topk(5)
    assert [n for n, _ in top] == [classes[i] for i in best.indices.tolist()]
    assert [p for _, p in top] == pytest.approx(best.values.tolist(), abs=1e-5)
    gray = np.asarray(Image.fromarray(photos["coffee"]).convert("L"))
    assert [n for n, _ in classify(full, gray, top=3)] == [n for n, _ in top[:3]]  # colour is not used
    everything = classify(full, photos["coffee"], top=10_000)
    assert len(everything) == len(classes) and sum(p for _, p in everything) == pytest.approx(1, abs=1e-4)


def test_classify_names_and_refusals(full, photos):
    from colorlib.infer import classify
    from colorlib.model import Colorizer, ModelConfig

    torch.manual_seed(0)
    unnamed = Colorizer(ModelConfig.preset("tiny", num_classes=7))
    names = [n for n, _ in classify(unnamed, photos["camera"][:64, :64], top=7)]
    assert sorted(names) == [str(i) for i in range(7)]
    for top in (0, -1, 2.5, True, "5"):
        with pytest.raises(ValueError, match="top must be a whole number of at least 1"):
            classify(full, photos["camera"], top=top)
    with pytest.raises(ValueError, match="baseline model: it has no classifier"):
        classify(load_model("miniplaces-baseline"), photos["camera"])


def test_global_features_and_saturation_are_checked(full, photos):
    """A given global vector must be a finite float (1, 256*width) tensor; saturation a real
    number in [0, 4]: anything else is one ValueError naming the argument, before any work."""
    from colorlib.infer import global_features_of

    img = photos["coffee"][:32, :32]
    g = global_features_of(full, img)
    assert g.shape == (1, full.cfg.channels(256))
    assert np.array_equal(np.asarray(colorize(full, img, global_features=g[0])),
                          np.asarray(colorize(full, img, global_features=g)))  # a 1-d vector is one row
    for value in (g[:, :10], g * float("nan"), g.long(), [0.0] * 128, g.expand(2, -1), g.to("meta")):
        with pytest.raises(ValueError, match="global_features"):
            colorize(full, img, global_features=value)
    baseline = load_model("miniplaces-baseline")
    with pytest.raises(ValueError, match="baseline model"):
        colorize(baseline, img, global_features=g)
    with pytest.raises(ValueError, match="baseline model: it has no global features to take from global_image"):
        colorize(baseline, img, global_image=img)
    from colorlib.infer import classify
    from colorlib.model import fold_batchnorm

    for call in (lambda m: colorize(m, img), lambda m: classify(m, img), fold_batchnorm):
        for not_a_model in (None, "miniplaces-full", torch.nn.Linear(2, 2)):
            with pytest.raises(TypeError, match="Colorizer"):
                call(not_a_model)
    for value in (True, "1", float("nan"), -0.1, 4.5, [1.0]):
        with pytest.raises(ValueError, match="saturation must be a number in"):
            colorize(full, img, saturation=value)


def test_an_output_that_is_not_a_number_is_never_an_image(photos):
    """Whatever makes the network's a*b* NaN (here a NaN bias given straight to the library; model
    files with NaN weights are refused at load), colorize raises one ValueError, on the path every
    network takes, instead of returning an image built from NaN."""
    from colorlib.model import Colorizer, ModelConfig

    torch.manual_seed(0)
    model = Colorizer(ModelConfig.preset("tiny", num_classes=4)).eval()
    with torch.no_grad():
        model.colorization.output.bias[0] = float("nan")
    for fold in (True, False):
        with pytest.raises(ValueError, match="not numbers"):
            colorize(model, photos["coffee"][:48, :48], fold=fold)


# -- inference geometry (issue 27) ---------------------------------------------------------------
# Where colorize puts the network's colours: its half-resolution a*b* are upsampled x2 bilinearly
# (section 3.2.5) at the half-pixel convention (a full-resolution pixel i samples the half-resolution
# grid at (i + 0.5) / 2 - 0.5) and cropped to the photo, and, when the network ran on a scaled-down
# copy (max_pixels), resized bilinearly to the photo's size at the same convention. The expected
# values are scikit-image's resize (order 1, edge mode) and PIL's bilinear resize, never colorlib's.


def _geometry_photo(H: int, W: int) -> np.ndarray:
    """An 8-bit photo of nine flat regions whose lightness and colour edges coincide: columns 5 and
    W - 6, rows 4 and H - 5, near every side (where a misaligned upsampling errs most); a* = +25 in
    the middle columns and -25 outside, b* likewise by rows (steps of 50 a*b* units, in gamut)."""
    from skimage.color import lab2rgb

    xs, ys = np.arange(W)[None, :], np.arange(H)[:, None]
    mid_x, mid_y = (xs >= 5) & (xs < W - 6), (ys >= 4) & (ys < H - 5)
    lab = np.zeros((H, W, 3))
    lab[..., 0] = np.where(mid_x, 62, 48)
    lab[..., 1] = np.where(mid_x, 25, -25)
    lab[..., 2] = np.where(mid_y, 25, -25)
    return (lab2rgb(lab) * 255).round().astype(np.uint8)


def _block_mean(x: np.ndarray, f: int) -> np.ndarray:
    """Means of f x f blocks of (H, W, C), the last partial block averaging the pixels it has (as
    the training target's 2 x 2 average, colorlib.data.lab_batch, does at odd sizes)."""
    H, W = x.shape[:2]
    p = np.pad(x, ((0, -H % f), (0, -W % f), (0, 0)), mode="edge")  # repeats: the mean is unchanged
    return p.reshape(p.shape[0] // f, f, p.shape[1] // f, f, -1).mean((1, 3))


def _bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, C) resized to ``size`` by scikit-image, bilinear at the half-pixel convention, edge
    values held; checked against PIL's bilinear resize of each channel (same convention)."""
    from skimage.transform import resize

    out = resize(x, size, order=1, mode="edge", anti_aliasing=False)
    pil = np.stack([np.asarray(Image.fromarray(x[..., c].astype(np.float32), "F")
                               .resize(size[::-1], Image.Resampling.BILINEAR)) for c in range(x.shape[2])], -1)
    assert np.abs(out - pil).max() < 1e-4  # two libraries, one convention
    return out


def _oracle(ab01: np.ndarray, seen: tuple[int, int]):
    """A Colorizer whose network answers the given half-resolution a*b* map (normalised as the
    network's output is, (x + 128) / 255) for an input of the one size it expects; the rest of
    colorize (lightness, upsampling, joining with L*, gamut) is colorlib's own."""
    from colorlib.model import Colorizer, ColorizerOutput, ModelConfig

    class Oracle(Colorizer):
        def forward(self, L, global_L=None, global_features=None):
            assert tuple(L.shape[-2:]) == seen, f"the network saw {tuple(L.shape[-2:])}, not {seen}"
            return ColorizerOutput(self.answer.to(L.device, L.dtype).expand(len(L), -1, -1, -1), None, None)

    model = Oracle(ModelConfig.preset("tiny", num_classes=3, variant="baseline")).eval()
    model.register_buffer("answer", torch.from_numpy(ab01).permute(2, 0, 1)[None].float())
    return model


@pytest.mark.parametrize("H, W, max_pixels", [(37, 54, None), (40, 45, None), (62, 90, 31 * 45)])
def test_colour_edges_land_where_the_network_put_them(H, W, max_pixels):
    """An oracle network that answers the training target of the photo (its a*b* averaged over
    2 x 2 blocks): colorize's a*b* are that answer upsampled x2 and cropped (and, for max_pixels,
    resized to the photo), as scikit-image and PIL compute it, on every pixel, so the colour edges
    sit at the photo's edges; an odd side crops the last row or column, it does not stretch.
    Measured: within 0.53 of the reference (8-bit rounding); a half-pixel shift (align_corners=True)
    errs by 10.6 there, nearest-neighbour upsampling by 10, resizing an odd side to H (not 2h,
    cropped) by 11, cropping from the far end by 13 or more."""
    from skimage.color import rgb2lab

    photo = _geometry_photo(H, W)
    ab = rgb2lab(photo)[..., 1:]
    f = 1 if max_pixels is None else 2  # the network sees the photo halved: (31, 45) of (62, 90)
    seen = (H // f, W // f)
    answer = _block_mean((ab + 128) / 255, 2 * f)  # at the network's half resolution
    expected = _bilinear(answer, (2 * answer.shape[0], 2 * answer.shape[1]))[: seen[0], : seen[1]] * 255 - 128
    if seen != (H, W):
        expected = _bilinear(expected, (H, W))
    out = colorize(_oracle(answer, seen), photo, saturation=1.0, max_pixels=max_pixels)
    got = rgb2lab(np.asarray(out))[..., 1:]
    assert float(np.abs(got - expected).max()) < 1.0
    # away from the edges (7 x 7 flat neighbourhood at full size, 11 x 11 when halved) the colour
    # is the photo's own: the upsampling blurs only the edges, and only as far as its kernel reaches
    r = 3 if f == 1 else 5
    flat = np.ones((H, W), bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = np.roll(photo, (dy, dx), (0, 1))
            flat &= (shifted == photo).all(-1)
    flat[:r], flat[-r:], flat[:, :r], flat[:, -r:] = False, False, False, False  # roll wraps around
    assert flat.sum() > H * W / 3
    assert float(np.abs(got - ab)[flat].max()) < 1.0


@pytest.fixture(scope="module")
def full_in_torch():
    """miniplaces-full's weights in a Colorizer built here and folded once, so that colorize runs
    this code's network in PyTorch (a model as loaded may run on an ONNX export cached by its
    weights, which would not show a change to the network's code)."""
    from colorlib.model import Colorizer, fold_batchnorm

    loaded = load_model("miniplaces-full")
    model = Colorizer(loaded.cfg)
    model.load_state_dict(loaded.state_dict())
    return fold_batchnorm(model.eval())


def _padded_on_the_bottom_and_right(img: np.ndarray, multiple: int = 8) -> np.ndarray:
    H, W = img.shape[:2]
    return np.pad(img, ((0, -H % multiple), (0, -W % multiple), (0, 0)), mode="edge")


@pytest.mark.parametrize("name, H, W", [("astronaut", 61, 83), ("coffee", 50, 77), ("chelsea", 89, 75)])
def test_an_odd_sized_photo_is_colorized_as_if_its_last_row_and_column_went_on(full_in_torch, photos, name, H, W):
    """Sides that are not a multiple of the network's stride (8) are padded on the bottom and right
    (chapter 3, exercise 3.2) by repeating the photo's last row and column, so the border pixels see
    a continuation of themselves. Expected: the photo padded so by numpy, colorized, cropped back
    (the same global features for both). Measured: 0 to 1 level apart (float rounding); zero padding
    differs by 21 to 41 levels, padding the top and left by 13 to 23, reflecting by 10 to 11."""
    from colorlib.infer import global_features_of

    model = full_in_torch
    img = photos[name][100 : 100 + H, 150 : 150 + W]
    g = global_features_of(model, img)
    own = np.asarray(colorize(model, img, global_features=g), int)
    continued = np.asarray(colorize(model, _padded_on_the_bottom_and_right(img), global_features=g), int)
    assert continued.shape[:2] == (H + -H % 8, W + -W % 8)
    assert np.abs(own - continued[:H, :W]).max() <= 2


def test_the_border_of_an_odd_sized_photo_is_colorized_like_the_photo_that_goes_on(full_in_torch, photos):
    """The last two rows and columns of an odd-sized crop, against the same pixels colorized in a
    larger crop of the same photo (where the photo goes on past them; same global features). The
    network's own zero-padded convolutions make any border differ somewhat: the mean a*b* distance
    over the nine crops was 3.4 (1.5 to 5.4 per crop); with the crop's missing rows and columns
    padded with black it was 8.9 (3.2 to 14.3); reflected, 3.5. The bound is 5."""
    from skimage.color import rgb2lab

    from colorlib.infer import global_features_of

    model = full_in_torch
    borders = []
    for name, (y, x) in [("astronaut", (100, 150)), ("coffee", (150, 200)), ("chelsea", (60, 120))]:
        larger = photos[name][y : y + 96, x : x + 120]  # a multiple of 8: no padding
        for H, W in [(61, 83), (58, 107), (89, 75)]:
            crop = larger[:H, :W]
            g = global_features_of(model, crop)
            a = rgb2lab(np.asarray(colorize(model, crop, global_features=g)))[..., 1:]
            b = rgb2lab(np.asarray(colorize(model, larger, global_features=g)))[:H, :W, 1:]
            d = np.hypot(*(a - b).transpose(2, 0, 1))
            borders.append(np.concatenate([d[-2:].ravel(), d[:, -2:].ravel()]).mean())
    assert float(np.mean(borders)) < 5.0, borders
