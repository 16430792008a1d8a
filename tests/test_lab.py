import numpy as np
import pytest
import torch
from skimage import color

from colorlib.lab import denormalize_ab, lab_to_rgb, normalize_ab, rgb_to_lab


def as_nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def as_hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def test_matches_skimage_on_random_colours():
    rgb = np.random.default_rng(0).random((31, 17, 3))
    ours = as_hwc(rgb_to_lab(as_nchw(rgb)))
    # measured 1.55e-4 (float32 against float64) forward and 9.7e-7 back
    np.testing.assert_allclose(ours, color.rgb2lab(rgb), rtol=0, atol=5e-4)
    lab = color.rgb2lab(rgb)
    np.testing.assert_allclose(as_hwc(lab_to_rgb(as_nchw(lab))), color.lab2rgb(lab), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "rgb, lab",
    [
        ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),
        ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
        ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
        ((0.5, 0.5, 0.5), (53.3889, 0.0, 0.0)),
    ],
)
def test_known_colours(rgb, lab):
    """Published sRGB/D65 values (to 0.01) and scikit-image's figures (to 1e-3)."""
    x = torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)
    got = rgb_to_lab(x).flatten().tolist()
    assert got == pytest.approx(lab, abs=1e-2)
    assert got == pytest.approx(color.rgb2lab(np.array([[rgb]], float)).ravel().tolist(), abs=1e-3)
    assert lab_to_rgb(rgb_to_lab(x)).flatten().tolist() == pytest.approx(rgb, abs=1e-4)


def test_real_photo_round_trip(photos):
    rgb = torch.from_numpy(photos["astronaut"]).permute(2, 0, 1)[None].double() / 255
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-6)
    L = rgb_to_lab(rgb)[:, :1]
    assert L.shape == (1, 1, 512, 512)
    np.testing.assert_allclose(L[0, 0].numpy(), color.rgb2lab(photos["astronaut"])[..., 0], rtol=0, atol=1e-4)


def test_out_of_gamut_is_clipped_never_nan():
    lab = torch.tensor([[100.0, 127, 127], [0, -128, -128], [50, 127, -128], [120, 0, 0], [-5, 0, 0]])
    rgb = lab_to_rgb(lab.T.reshape(1, 3, 5, 1))
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1


def test_gradients_are_finite_everywhere():
    rgb = torch.tensor([0.0, 0.001, 0.04045, 0.5, 1.0]).repeat(3, 1).reshape(1, 3, 5, 1).requires_grad_()
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = torch.tensor([[0.0, 0, 0], [50, 120, -120], [100, 0, 0]]).T.reshape(1, 3, 3, 1).requires_grad_()
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_ab_normalisation_round_trip_and_range():
    ab = torch.tensor([-128.0, 0.0, 127.0])
    n = normalize_ab(ab)
    assert n.tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    assert denormalize_ab(n).tolist() == pytest.approx(ab.tolist())


def test_batched_and_unbatched_agree():
    x = torch.rand(4, 3, 5, 6, generator=torch.Generator().manual_seed(0))
    # float32 sums in another order: a*b* near 0 differ by about 1e-5 (measured), L* by less
    assert torch.allclose(rgb_to_lab(x)[2], rgb_to_lab(x[2]), rtol=1e-5, atol=1e-4)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        rgb_to_lab(torch.rand(1, 4, 2, 2))
    with pytest.raises(TypeError, match="uint8"):
        rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def _extreme_grid() -> torch.Tensor:
    """L* near 0, in the middle and near 100, with a*b* over the whole [-128, 127] square: the
    colours furthest outside sRGB. Shaped (3, 18, 52 * 52)."""
    L = torch.tensor([0.0, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 98.0, 99.0,
                      99.5, 99.8, 99.95, 100.0])
    ab = torch.linspace(-128, 127, 52)
    LL, AA, BB = torch.meshgrid(L, ab, ab, indexing="ij")
    return torch.stack([LL, AA, BB]).reshape(3, len(L), -1)


def test_in_gamut_conversion_keeps_L_on_every_pixel_at_the_extremes():
    from colorlib.lab import lab_to_rgb_in_gamut

    lab = _extreme_grid()
    rgb = lab_to_rgb_in_gamut(lab)
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    # exact up to the 1e-5 linear-light slack of the gamut test (measured: at most 0.0084)
    assert float((rgb_to_lab(rgb)[0] - lab[0]).abs().max()) < 0.02
    # as 8-bit sRGB: rounding adds up to 0.24 (measured on this grid); 0.3 is the bound colorize keeps
    rgb8 = (rgb * 255).round() / 255
    assert float((rgb_to_lab(rgb8)[0] - lab[0]).abs().max()) < 0.3
    # clipping in RGB, what lab_to_rgb does, moves L* by tens on the same grid
    assert float((rgb_to_lab(lab_to_rgb(lab))[0] - lab[0]).abs().max()) > 20


def test_in_gamut_conversion_keeps_hue_and_only_reduces_chroma_as_little_as_needed():
    from colorlib.lab import lab_to_rgb_in_gamut

    lab = _extreme_grid()
    rgb = lab_to_rgb_in_gamut(lab)
    out = rgb_to_lab(rgb)
    c_in, c_out = lab[1:].norm(dim=0), out[1:].norm(dim=0)
    assert (c_out <= c_in + 0.05).all()
    coloured = c_out > 5
    dh = torch.atan2(out[2], out[1]) - torch.atan2(lab[2], lab[1])
    dh = torch.remainder(dh + torch.pi, 2 * torch.pi) - torch.pi
    assert float(dh[coloured].abs().max()) < 0.01  # radians
    # wherever chroma was reduced, the result sits on the gamut's surface: a channel at 0 or 1
    reduced = c_out < c_in - 0.5
    assert reduced.sum() > 1000
    edge = (rgb.amin(0) < 2e-3) | (rgb.amax(0) > 1 - 2e-3)
    assert edge[reduced].all()


def test_in_gamut_conversion_leaves_real_colours_alone(photos):
    from colorlib.lab import lab_to_rgb_in_gamut

    rgb = torch.from_numpy(photos["astronaut"]).permute(2, 0, 1)[None].double() / 255
    lab = rgb_to_lab(rgb)
    assert torch.allclose(lab_to_rgb_in_gamut(lab), lab_to_rgb(lab), atol=1e-6)
    assert torch.allclose(lab_to_rgb_in_gamut(lab), rgb, atol=1e-6)
    assert lab_to_rgb_in_gamut(lab).dtype == torch.float64
    x = torch.tensor([50.0, 120.0, -120.0]).view(3, 1, 1)  # the docstring's example
    assert rgb_to_lab(lab_to_rgb_in_gamut(x))[0].item() == pytest.approx(50.0, abs=0.01)
    assert rgb_to_lab(lab_to_rgb(x))[0].item() == pytest.approx(48.8, abs=0.1)


def test_rgb_to_L_matches_rgb_to_lab_across_row_blocks():
    """The one L* function, uint8 (table, blocks of rows) and float, against rgb_to_lab's L*.
    Measured: at most 1.5e-5 (float32 rounding of the table's sum); 1e-4 is the bound."""
    from colorlib.lab import _BLOCK_PIXELS, rgb_to_L

    g = torch.Generator().manual_seed(0)
    H, W = _BLOCK_PIXELS // 700 + 3, 700  # more than one block of rows, the last one partial
    rgb8 = torch.randint(0, 256, (2, 3, H, W), dtype=torch.uint8, generator=g)
    L = rgb_to_L(rgb8)
    want = rgb_to_lab(rgb8.float() / 255)[:, :1]
    assert L.shape == (2, 1, H, W) and L.dtype == torch.float32
    assert torch.allclose(L, want, rtol=0, atol=1e-4)
    assert torch.allclose(rgb_to_L(rgb8.float() / 255), want, rtol=0, atol=1e-4)
    # a swapped row of the XYZ matrix (X instead of Y) is far off on coloured pixels
    assert float((rgb_to_L(torch.tensor([[[[255]], [[0]], [[0]]]], dtype=torch.uint8)) - 53.24).abs()) < 0.01
