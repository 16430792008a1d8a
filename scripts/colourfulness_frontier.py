"""How far can the shipped full model's colourfulness be raised without retraining its trunk?

The MSE of Eq. 6 makes ``miniplaces-full`` predict dull colours (colourfulness gap 16.3 on
MiniPlaces val at gain 1.1, the gain of the earlier saturation rule; the target is 15). This
script compares three ways to raise colourfulness that leave everything before the
colorization network as trained, each as a curve of PSNR against colourfulness on held-out
validation images:

* **gain**: multiply the predicted a*b* by 1.0 ... 1.5 (what ``--saturation`` does);
* **MSE fine-tune**: train the colorization network (Table 1 (d)) again on cached fusion
  features of MiniPlaces training images, with the same MSE (control);
* **rebalanced**: the same with each pixel's squared error weighted by the rarity of its true
  a*b* cell (Zhang et al. 2016: ``1 / ((1 - lam) p + lam / Q)``, mean weight 1), lam 0.5, and a
  milder version (the square root of those weights, rescaled).

Each fine-tune is scored after every epoch at gains 1.0, 1.1, 1.2. Batch norm keeps its
trained statistics. CPU is enough (the trunk runs once per image):

    python scripts/colourfulness_frontier.py      # ~6 min on 2 cores; writes colorlib/models/logs/
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib import data as D  # noqa: E402
from colorlib import metrics as M  # noqa: E402
from colorlib.checkpoint import load_model, models_dir  # noqa: E402
from colorlib.imageio import to_uint8  # noqa: E402
from colorlib.io import atomic_write, write_json  # noqa: E402
from colorlib.lab import denormalize_ab, lab_to_rgb  # noqa: E402

GAINS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5)


@torch.no_grad()
def fusion_features(model, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fusion-layer output (the colorization network's input), L*/100 and target a*b*."""
    got = {}
    hook = model.colorization.register_forward_hook(lambda m, i, o: got.__setitem__("f", i[0]))
    fs, Ls, abs_ = [], [], []
    for i in tqdm(range(0, len(pixels), 100), desc=f"encoding {len(pixels)} photos", leave=False):
        L, ab = D.lab_batch(pixels[i : i + 100].float() / 255)
        model(L)
        fs.append(got["f"].half())
        Ls.append(L)
        abs_.append(ab)
    hook.remove()
    return torch.cat(fs), torch.cat(Ls), torch.cat(abs_)


@torch.no_grad()
def curve(head, feats, L, truth, gains) -> list[dict]:
    ab = torch.cat([head(feats[i : i + 100].float()) for i in range(0, len(feats), 100)])
    ab = denormalize_ab(F.interpolate(ab, size=truth.shape[-2:], mode="bilinear", align_corners=False))
    cf_truth = float(M.colourfulness(truth.float()).mean())
    rows = []
    for g in gains:
        pred = to_uint8(lab_to_rgb(torch.cat([L * 100, ab * g], 1)))
        rows.append(dict(gain=g, psnr=round(float(M.psnr_uint8(pred, truth).mean()), 3),
                         cf=round(float(M.colourfulness(pred.float()).mean()), 2), cf_truth=round(cf_truth, 2)))
    return rows


def cell_weights(ab_target: torch.Tensor, lam: float = 0.5, power: float = 1.0) -> torch.Tensor:
    """Zhang et al.'s rebalancing weight per a*b* cell from the training targets, raised to
    ``power`` (1: theirs, 0.5: milder), scaled to a mean of 1 over the training pixels."""
    counts = M.ab_cell_counts(denormalize_ab(ab_target)).double()
    p = counts / counts.sum()
    seen = counts > 0
    w = torch.zeros_like(p)
    w[seen] = ((1 - lam) * p[seen] + lam / seen.sum()) ** -power
    return (w / (p * w).sum()).float()


def fine_tune(base, feats, target, weights, epochs, lr, score) -> list[list[dict]]:
    head = copy.deepcopy(base)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    per_epoch = []
    for _ in range(epochs):
        head.train()
        for m in head.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()  # the trained statistics stay
        for idx in torch.randperm(len(feats)).split(64):
            f, t = feats[idx].float(), target[idx]
            if torch.rand(()) < 0.5:
                f, t = f.flip(-1), t.flip(-1)
            err = (head(f) - t).pow(2).mean(1)
            if weights is not None:
                err = err * weights[M.ab_cells(denormalize_ab(t))]
            opt.zero_grad()
            err.mean().backward()
            opt.step()
        head.eval()
        per_epoch.append(score(head))
    return per_epoch


def best_vs_gain(result: dict) -> float:
    """PSNR of the best fine-tuned point minus the gain curve's at the same colourfulness
    (points within the curve's range), in dB: > 0 would mean a fine-tune beats the gain."""
    cf, psnr = [r["cf"] for r in result["gain"]], [r["psnr"] for r in result["gain"]]
    return round(max(r["psnr"] - float(np.interp(r["cf"], cf, psnr))
                     for epochs in result["fine_tune"].values() for rows in epochs for r in rows
                     if cf[0] <= r["cf"] <= cf[-1]), 3)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    base = result["gain"]
    ax.plot([r["cf"] for r in base], [r["psnr"] for r in base], "k-o", label="gain 1.0 ... 1.5")
    for (name, epochs), style in zip(result["fine_tune"].items(), ("C0s", "C1^", "C2v")):
        pts = [r for rows in epochs for r in rows]
        ax.plot([r["cf"] for r in pts], [r["psnr"] for r in pts], style, alpha=0.7, label=f"fine-tune: {name}")
    target = base[0]["cf_truth"] - 15
    ax.axvline(target, color="tab:red", ls="--", lw=1, label="colourfulness gap 15")
    ax.set_xlabel("colourfulness of the prediction (Hasler and Suesstrunk)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"miniplaces-full, {result['val_images']} validation images", fontsize="small")
    ax.legend(fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))  # p ends in .tmp: format given
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-images", type=int, default=6000, help="training images for the fine-tunes")
    p.add_argument("--val-images", type=int, default=500, help="validation images scored")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--out", type=Path, default=models_dir() / "logs" / "colourfulness_frontier")
    a = p.parse_args()
    torch.manual_seed(0)
    t0 = time.time()
    model = load_model("miniplaces-full").eval()
    train = D.decode_all(D.load_miniplaces(None, "train", shards=3, limit=a.train_images), 128, workers=0).pixels
    val = D.decode_all(D.load_miniplaces(None, "val", limit=a.val_images), 128, workers=0).pixels
    feats, _, target = fusion_features(model, train)
    val_feats, val_L, _ = fusion_features(model, val)
    print(f"{len(train)} training and {len(val)} validation photos encoded in {time.time() - t0:.0f} s")

    def score(head, gains=GAINS[:3]):
        return curve(head, val_feats, val_L, val, gains)

    result = dict(train_images=len(train), val_images=len(val), epochs=a.epochs, lr=a.lr,
                  gain=score(model.colorization, GAINS), fine_tune={})
    for name, weights in (("MSE", None), ("rebalanced, sqrt", cell_weights(target, power=0.5)),
                          ("rebalanced", cell_weights(target))):
        result["fine_tune"][name] = fine_tune(model.colorization, feats, target, weights, a.epochs, a.lr, score)
        last = result["fine_tune"][name][-1][0]
        print(f"{name:18s} after {a.epochs} epochs, gain 1.0: PSNR {last['psnr']:.2f} dB, "
              f"colourfulness {last['cf']:.1f} ({time.time() - t0:.0f} s)")
    result["best_fine_tune_vs_gain_db"] = best_vs_gain(result)
    for r in result["gain"]:
        print(f"{'gain ' + str(r['gain']):18s} PSNR {r['psnr']:.2f} dB, colourfulness {r['cf']:.1f} "
              f"(truth {r['cf_truth']:.1f})")
    write_json(a.out.with_suffix(".json"), result)
    plot(result, a.out.with_suffix(".png"))
    print(f"best fine-tune against the gain curve: {result['best_fine_tune_vs_gain_db']:+.3f} dB")
    print(f"wrote {a.out.with_suffix('.json')} and .png")


if __name__ == "__main__":
    main()
