"""Training trains what Eq. 6 says: L = MSE(a*b*) + alpha * cross-entropy(scene class).

A real ``colorlib.train.train`` run (config "tiny", CPU, a few steps) on a small labelled data set
this file writes to disk in MiniPlaces' unpacked layout (``categories.txt``, ``train.txt``,
``train/<class>/<image>.jpg``), so the labels travel through the same loader a user's data does.
No data folder is needed. The expected values come from the paper (section 3.3, Eq. 6), not from
the code: with labels and alpha > 0 the class term is positive in every step and reaches the
classifier's weights; with alpha = 0, and always for the baseline (no global features, no
classifier), it does not exist.
"""

from __future__ import annotations

import copy
import csv
import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorlib.checkpoint import load_model
from colorlib.model import ColorizerOutput
from colorlib.train import TrainConfig, joint_loss, train

T = importlib.import_module("colorlib.train")  # the module (``colorlib.train`` is the function)
CLASSES = ["abbey", "bakery", "canyon", "desert"]  # four class names, one photo each
PER_CLASS = 8


@pytest.fixture(scope="module")
def labelled_root(tmp_path_factory, photos) -> Path:
    """An unpacked MiniPlaces-style folder: 32 colour crops of real photos, 8 per class."""
    root = tmp_path_factory.mktemp("labelled") / "miniplaces"
    rng = np.random.default_rng(0)
    lines = []
    for y, (cls, name) in enumerate(zip(CLASSES, ["astronaut", "coffee", "chelsea", "astronaut"])):
        img = photos[name]
        (root / "train" / cls).mkdir(parents=True)
        for i in range(PER_CLASS):
            r, c = rng.integers(0, img.shape[0] - 128), rng.integers(0, img.shape[1] - 128)
            rel = f"train/{cls}/{i:03d}.jpg"
            Image.fromarray(img[r : r + 128, c : c + 128]).resize((64, 64)).save(root / rel, quality=95)
            lines.append(f"{rel} {y}\n")
    (root / "categories.txt").write_text("".join(f"/{c[0]}/{c} {i}\n" for i, c in enumerate(CLASSES)))
    (root / "train.txt").write_text("".join(lines))
    return root


def run(root: Path, out: Path, monkeypatch, **kw) -> tuple[list[dict], dict, dict]:
    """Train; return the log rows, the parameters the model started from and the ones it ended with
    (learned parameters only: batch norm's running statistics move in any forward pass).

    The start is caught by wrapping the Colorizer class that ``train`` builds its model with, so
    the test does not depend on how ``train`` seeds or orders its random draws.
    """
    start: dict[str, torch.Tensor] = {}
    real = T.Colorizer

    def spy(cfg):
        model = real(cfg)
        start.update({k: copy.deepcopy(p.detach()) for k, p in model.named_parameters()})
        return model

    monkeypatch.setattr(T, "Colorizer", spy)
    cfg = dict(config="tiny", batch_size=8, steps=6, log_every=2, checkpoint_every=6, seed=3,
               device="cpu", workers=0, val_limit=None, data=str(root))
    train(TrainConfig(**{**cfg, **kw}), out, progress=False)
    with (out / "log.csv").open() as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    end = dict(load_model(out).named_parameters())
    return rows, start, end


def changed(start: dict, end: dict, prefix: str) -> list[str]:
    """Names of the ``prefix`` parameters whose values differ between ``start`` and ``end``."""
    names = [k for k in start if k.startswith(prefix)]
    assert names, f"no parameters named {prefix}*"
    return [k for k in names if not torch.equal(start[k].float(), end[k].float())]


def test_class_loss_trains_the_classifier(labelled_root, tmp_path, monkeypatch):
    alpha = 1 / 300  # the paper's value (section 4)
    rows, start, end = run(labelled_root, tmp_path / "run", monkeypatch, alpha=alpha)
    assert [int(r["step"]) for r in rows] == list(range(6))
    # four classes: a cross-entropy near ln 4 = 1.39 at first; positive in every step
    assert all(r["class_loss"] > 0 for r in rows), [r["class_loss"] for r in rows]
    for r in rows:  # Eq. 6, as logged (float32 values: relative 1e-6 is a few ulps)
        assert r["loss"] == pytest.approx(r["colour_loss"] + alpha * r["class_loss"], rel=1e-6)
        assert r["loss"] > r["colour_loss"]
    assert changed(start, end, "classifier.")  # the class term reached the classifier
    assert changed(start, end, "colorization.")  # and the colour term the colorization network


def test_alpha_zero_leaves_the_classifier_alone(labelled_root, tmp_path, monkeypatch):
    rows, start, end = run(labelled_root, tmp_path / "run", monkeypatch, alpha=0.0)
    assert all(r["class_loss"] == 0 and r["loss"] == r["colour_loss"] for r in rows)
    assert changed(start, end, "classifier.") == []  # no gradient, so no update (no weight decay)
    assert changed(start, end, "colorization.")  # while the colour term still trains


def test_baseline_never_has_a_class_term(labelled_root, tmp_path, monkeypatch):
    # the paper's baseline has no global features; even asked for alpha > 0 there is no class term
    rows, start, end = run(labelled_root, tmp_path / "run", monkeypatch, variant="baseline", alpha=0.1)
    assert not any(k.startswith("classifier.") for k in end)
    assert all(r["class_loss"] == 0 and r["loss"] == r["colour_loss"] for r in rows)
    assert all(math.isfinite(r["colour_loss"]) and r["colour_loss"] > 0 for r in rows)
    assert changed(start, end, "colorization.")


def test_joint_loss_is_eq6_by_hand():
    """Eq. 6 on numbers worked out here. Predicted normalised a*b* 0.5 everywhere against a target
    of 0.25 (one channel) and 0.75 (the other): every squared error is 0.0625, so the MSE (mean over
    pixels and both channels) is 0.0625. Logits (0, ln 3, 0, 0) for 4 classes: softmax of the class
    with ln 3 is 3 / 6, of the others 1 / 6. Labels 1 and 0: cross-entropy (ln 2 + ln 6) / 2.
    With alpha = 0.1: loss = 0.0625 + 0.1 (ln 2 + ln 6) / 2; label -1 is ignored."""
    ab = torch.full((2, 2, 3, 5), 0.5)
    target = torch.cat([torch.full((2, 1, 3, 5), 0.25), torch.full((2, 1, 3, 5), 0.75)], 1)
    logits = torch.tensor([[0.0, math.log(3), 0.0, 0.0]] * 3)
    out = ColorizerOutput(ab, logits, None)
    ce = (math.log(2) + math.log(6)) / 2
    loss, colour, cls = joint_loss(out, target, torch.tensor([1, 0, -1]), alpha=0.1)
    assert colour.item() == pytest.approx(0.0625, rel=1e-6)
    assert cls.item() == pytest.approx(ce, rel=1e-6)
    assert loss.item() == pytest.approx(0.0625 + 0.1 * ce, rel=1e-6)
    for alpha, labels in ((0.0, torch.tensor([1, 0, -1])), (0.1, None)):  # no class term
        loss, colour, cls = joint_loss(out, target, labels, alpha=alpha)
        assert loss.item() == pytest.approx(0.0625, rel=1e-6) and cls.item() == 0
