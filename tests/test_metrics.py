"""Every metric written in colorlib.metrics against a case worked out by hand (in the comments);
the scikit-image wrappers only against their obvious fixed points."""

import math

import numpy as np
import pytest
import torch

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


def test_skimage_wrappers_fixed_points(photos):
    rgb = photos["astronaut"][::8, ::8].copy()
    assert M.image_ssim(rgb, rgb) == pytest.approx(1.0)
    assert M.image_ciede2000(M.image_lab(rgb), M.image_lab(rgb)) == pytest.approx(0.0, abs=1e-3)
    other = photos["coffee"][:64, :64].copy()
    assert M.image_ssim(other, rgb) < 0.9
    assert M.image_ciede2000(M.image_lab(other), M.image_lab(rgb)) > 5
