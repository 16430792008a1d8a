import numpy as np
import pytest
import torch
from skimage import color

from colorlib.lab import denormalize_ab, lab_to_rgb, normalize_ab, rgb_to_gray_L, rgb_to_lab


def as_nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def as_hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def test_matches_skimage_on_random_colours():
    rgb = np.random.default_rng(0).random((31, 17, 3))
    ours = as_hwc(rgb_to_lab(as_nchw(rgb)))
    np.testing.assert_allclose(ours, color.rgb2lab(rgb), atol=1e-3)
    lab = color.rgb2lab(rgb)
    np.testing.assert_allclose(as_hwc(lab_to_rgb(as_nchw(lab))), color.lab2rgb(lab), atol=1e-3)


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
    L = rgb_to_gray_L(rgb)
    assert L.shape == (1, 1, 512, 512) and 0 <= L.min() and L.max() <= 100


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
    x = torch.rand(4, 3, 5, 6)
    assert torch.allclose(rgb_to_lab(x)[2], rgb_to_lab(x[2]))


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        rgb_to_lab(torch.rand(1, 4, 2, 2))
    with pytest.raises(TypeError, match="uint8"):
        rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
