"""Every metric written in colorlib.metrics against a case worked out by hand (in the comments);
the scikit-image wrappers against published values (Sharma, Wu and Dalal 2005 for CIEDE2000), cases
worked by hand and scikit-image called directly."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from colorlib import metrics as M
from colorlib.evaluate import summarise


def ab_image(pixels):
    """a*b* pairs -> a (1, 2, 1, n) tensor: one image of n pixels in a row."""
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 2, 1, -1)


def test_auc_by_hand():
    # truth a*b* = 0 everywhere; 151 thresholds t = 0..150; a pixel at distance d counts for
    # the thresholds t >= d, i.e. 151 - ceil(d) of them:
    #   (0, 0)    d = 0   -> 151
    #   (3, 4)    d = 5   -> 146
    #   (0, 2.5)  d = 2.5 -> 148 (t = 3..150)
    #   (200, 0)  d = 200 -> 0
    # AuC = (151 + 146 + 148 + 0) / (4 * 151) = 445 / 604
    pred = ab_image([(0, 0), (3, 4), (0, 2.5), (200, 0)])
    true = torch.zeros_like(pred)
    assert M.ab_auc(pred, true).item() == pytest.approx(445 / 604, abs=1e-6)
    # per-pixel weights 1, 0, 0, 3: (1 * 151/151 + 3 * 0) / 4 = 0.25
    w = torch.tensor([[[1.0, 0.0, 0.0, 3.0]]])
    assert M.ab_auc(pred, true, weights=w).item() == pytest.approx(0.25)
    # a perfect prediction scores 1; batched, one figure per image
    both = torch.cat([true, pred])
    assert M.ab_auc(both, torch.zeros_like(both)).tolist() == pytest.approx([1.0, 445 / 604])


def test_ab_cells_by_hand():
    # cells of 10 x 10 with edges at multiples of 10, 26 per axis from -130: index 26 i + j
    #   (0, 0)          -> i = 130 // 10 = 13, j = 13           -> 351
    #   (-130, 129.9)   -> i = 0, j = floor(259.9 / 10) = 25    -> 25
    #   (-5, 5)         -> i = floor(125 / 10) = 12, j = 13     -> 325
    #   (200, -200)     -> clamped into i = 25, j = 0           -> 650
    cells = M.ab_cells(ab_image([(0, 0), (-130, 129.9), (-5, 5), (200, -200)]))
    assert cells.flatten().tolist() == [351, 25, 325, 650]


def test_rebalanced_auc_by_hand():
    # two images of two pixels; truth a*b*: image 1 = [(0, 0), (50, 50)], image 2 = [(1, 1), (2, 2)]
    # cell A (0..10 x 0..10) holds 3 pixels, cell B (50..60 x 50..60) holds 1: p = 3/4 and 1/4,
    # weights 1/p = 4/3 and 4.
    true = torch.cat([ab_image([(0, 0), (50, 50)]), ab_image([(1, 1), (2, 2)])])
    counts = M.ab_cell_counts(true)
    a, b = M.ab_cells(ab_image([(0, 0), (50, 50)])).flatten().tolist()
    assert counts.sum() == 4 and counts[a] == 3 and counts[b] == 1
    w = M.rebalancing_weights(counts)
    assert w[a].item() == pytest.approx(4 / 3) and w[b].item() == pytest.approx(4)
    assert (w == 0).sum() == len(w) - 2  # empty cells weigh nothing
    # image 1 predicted as [(0, 0), (-150, 50)]: the first pixel is exact (counts 1), the
    # second 200 away (counts 0). Raw AuC = 1/2; rebalanced = (4/3) / (4/3 + 4) = 1/4.
    pred = ab_image([(0, 0), (-150, 50)])
    pixel_w = w[M.ab_cells(true[:1])]
    assert M.ab_auc(pred, true[:1]).item() == pytest.approx(0.5)
    assert M.ab_auc(pred, true[:1], weights=pixel_w).item() == pytest.approx(0.25)


def rgb_image(pixels):
    """RGB triples -> a (1, 3, 1, n) tensor in 0..255."""
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 3, 1, -1)


def test_colourfulness_by_hand():
    # pixels (100, 0, 0) and (0, 0, 0): rg = R - G = [100, 0], yb = (R + G)/2 - B = [50, 0]
    # std(rg) = 50, std(yb) = 25 (population); means 50 and 25
    # CF = sqrt(50^2 + 25^2) + 0.3 sqrt(50^2 + 25^2) = 1.3 sqrt(3125) = 32.5 sqrt(5) = 72.672
    assert M.colourfulness(rgb_image([(100, 0, 0), (0, 0, 0)])).item() == pytest.approx(32.5 * math.sqrt(5))
    # uniform red (255, 0, 0): no spread; means rg = 255, yb = 127.5 -> 0.3 * 127.5 sqrt(5)
    assert M.colourfulness(rgb_image([(255, 0, 0)] * 3)).item() == pytest.approx(38.25 * math.sqrt(5))
    # any gray: rg = yb = 0 everywhere -> 0
    assert M.colourfulness(rgb_image([(50, 50, 50), (200, 200, 200)])).item() == 0


def test_colourfulness_gap_by_hand():
    # means over the images that count: pred (10 + 20)/2 = 15, truth (12 + 30)/2 = 21 -> |15 - 21| = 6
    nan = float("nan")
    assert M.colourfulness_gap(torch.tensor([10.0, 20.0, nan]), torch.tensor([12.0, 30.0, nan])) == 6


def test_psnr_uint8_by_hand():
    # 12 values, 3 of them off by 2: MSE = 3 * 4 / 12 = 1 -> PSNR = 10 log10(255^2 / 1) = 48.1308 dB
    true = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    pred = true.clone()
    pred[0, :, 0, 0] = 2
    assert M.psnr_uint8(pred, true).item() == pytest.approx(20 * math.log10(255), abs=1e-4)
    assert M.psnr_uint8(true, true).item() == math.inf
    # scikit-image agrees
    def hwc(x):
        return x[0].permute(1, 2, 0).numpy()

    assert M.image_psnr(hwc(pred), hwc(true)) == pytest.approx(20 * math.log10(255), abs=1e-4)


def test_topk_by_hand():
    # scores by class: 3 (0.9) > 1 (0.5) > 6 (0.4) > 4 (0.3) > 2 (0.2) > 0 (0.1) > 5 (0.0)
    logits = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.3, 0.0, 0.4]] * 3)
    labels = torch.tensor([3, 2, 5])  # first; fifth; last
    assert M.topk_accuracy(logits, labels, 1).tolist() == [1, 0, 0]
    assert M.topk_accuracy(logits, labels, 5).tolist() == [1, 1, 0]


def test_confused_pairs_by_hand():
    # true -> predicted: a->b twice, a->a (right), b->a, b->b (right), c->b, unlabelled ignored
    true = np.array([0, 0, 0, 1, 1, 2, -1])
    pred = np.array([1, 1, 0, 0, 1, 1, 0])
    pairs = M.confused_pairs(true, pred, ["a", "b", "c"])
    assert pairs == [{"true": "a", "predicted": "b", "count": 2},
                     {"true": "b", "predicted": "a", "count": 1},  # ties: by class index
                     {"true": "c", "predicted": "b", "count": 1}]
    assert len(M.confused_pairs(true, pred, ["a", "b", "c"], k=1)) == 1


def test_gray_truth():
    # a uniform gray image has std(a*) = std(b*) = 0 < 3; half red, half blue is far above
    gray = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)
    split = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    split[0, 0, :, :2] = 255
    split[0, 2, :, 2:] = 255
    assert M.gray_truth(torch.cat([gray, split])).tolist() == [True, False]


def test_summarise_by_hand():
    # NaN (not applicable) is left out: PSNR (20 + 30)/2 = 25; AuC (0.5 + 1)/2 = 75 %;
    # CF gap |15 - 21| = 6; top-1 2 of 3 = 66.7 %; top-5 3 of 3 = 100 %
    nan = float("nan")
    s = summarise({"psnr": torch.tensor([20.0, 30.0, nan]), "auc": torch.tensor([0.5, 1.0, nan]),
                   "cf_pred": torch.tensor([10.0, 20.0, nan]), "cf_true": torch.tensor([12.0, 30.0, nan]),
                   "top1": torch.tensor([1.0, 0.0, 1.0]), "top5": torch.tensor([1.0, 1.0, 1.0])})
    assert s["psnr"] == pytest.approx(25) and s["auc"] == pytest.approx(75)
    assert s["cf_gap"] == pytest.approx(6) and s["top1"] == pytest.approx(200 / 3)
    assert s["top5"] == pytest.approx(100) and s["images"] == 3


# G. Sharma, W. Wu and E. N. Dalal, "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Color Research & Application 30(1),
# 21-30, 2005, Table 1: all 34 pairs, (L1, a1, b1, L2, a2, b2, dE00), as published (4 decimals).
SHARMA_2005 = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


@pytest.mark.parametrize("pair", range(len(SHARMA_2005)))
def test_ciede2000_matches_sharma_wu_dalal(pair):
    """The evaluation's CIEDE2000 (image_ciede2000, a mean over pixels) on one-pixel images, both
    orders: measured error at most 5.0e-5, below the table's rounding to 4 decimals."""
    *lab, expected = SHARMA_2005[pair]
    first, second = np.array([[lab[:3]]]), np.array([[lab[3:]]])
    assert M.image_ciede2000(first, second) == pytest.approx(expected, abs=1e-4)
    assert M.image_ciede2000(second, first) == pytest.approx(expected, abs=1e-4)
    assert M.image_ciede2000(first, first) == 0


def test_ciede2000_is_a_mean_over_pixels():
    # pairs 17 and 34 side by side: (27.1492 + 0.9082) / 2
    a = np.array([SHARMA_2005[16][:3], SHARMA_2005[33][:3]])
    b = np.array([SHARMA_2005[16][3:6], SHARMA_2005[33][3:6]])
    assert M.image_ciede2000(a[None], b[None]) == pytest.approx((27.1492 + 0.9082) / 2, abs=1e-4)


def test_image_lab_by_hand():
    # sRGB 128/255 = 0.50196: linear ((0.50196 + 0.055) / 1.055)^2.4 = 0.21586 = Y (a gray: X/Xn =
    # Y = Z/Zn); L* = 116 Y^(1/3) - 16 = 53.585, a* = b* = 0. White is (100, 0, 0), black (0, 0, 0).
    # Measured: within 3e-3 (float32; a*, b* of a gray come out at -1.5e-3 and 2.8e-3).
    img = np.array([[[128, 128, 128], [255, 255, 255], [0, 0, 0]]], np.uint8)
    expected = [[53.5850, 0, 0], [100, 0, 0], [0, 0, 0]]
    assert M.image_lab(img)[0].tolist() == [pytest.approx(e, abs=5e-3) for e in expected]


def test_ssim_by_hand_and_against_skimage(photos):
    # constant images have no variance, so SSIM is its luminance term alone:
    # (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), C1 = (0.01 * 255)^2 = 6.5025
    # 100 against 120: 24006.5025 / 24406.5025 = 0.983611 (measured error 3e-9)
    a, b = np.full((16, 16, 3), 100, np.uint8), np.full((16, 16, 3), 120, np.uint8)
    assert M.image_ssim(a, b) == pytest.approx(24006.5025 / 24406.5025, abs=1e-6)
    assert M.image_ssim(a, a) == 1
    # two photos: scikit-image from uint8 (float64) and the wrapper's float32 agree to 8.4e-9
    rgb, other = photos["astronaut"][::8, ::8].copy(), photos["coffee"][:64, :64].copy()
    expected = structural_similarity(rgb, other, channel_axis=-1, data_range=255)
    assert abs(expected) < 0.1  # unrelated photos: far from 1, so a swapped or dropped term shows
    assert M.image_ssim(other, rgb) == pytest.approx(expected, abs=1e-6)
