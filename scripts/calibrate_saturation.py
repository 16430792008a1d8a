"""Choose the a*b* gain ("saturation") of the shipped models on TRAINING images.

A network trained with the MSE of Eq. 6 predicts the average of the colours a region could
have, so its colours are duller than real ones (colourfulness about half the truth's).
Multiplying the predicted a*b* by a gain g > 1 restores colourfulness and costs PSNR.
The rule: g is the largest of 1.0, 1.1, ..., 1.5 that costs the full model at most
``--max-psnr-cost`` dB on ``--images`` MiniPlaces training images (validation images are
never used); every shipped model gets the same g, so comparisons between them stay fair.

    python scripts/calibrate_saturation.py            # writes data/models/logs/saturation.json
    python scripts/calibrate_saturation.py --apply    # and stores g in every shipped model file
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib import data as D  # noqa: E402
from colorlib import metrics as M  # noqa: E402
from colorlib.checkpoint import available_models, load_model, models_dir, save_model  # noqa: E402
from colorlib.infer import colorize_batch  # noqa: E402

GAINS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5)


def curve(model, pixels: torch.Tensor) -> list[dict]:
    truth = pixels.float() / 255
    rows = []
    for g in GAINS:
        pred = torch.cat([M.to_uint8(colorize_batch(model, truth[i : i + 200], g))
                          for i in range(0, len(truth), 200)])
        rows.append(dict(gain=g, psnr=float(M.psnr_uint8(pred, pixels).mean()),
                         cf=float(M.colourfulness(pred.float()).mean()),
                         cf_truth=float(M.colourfulness(pixels.float()).mean())))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--max-psnr-cost", type=float, default=0.25)
    p.add_argument("--apply", action="store_true", help="store the gain in the shipped model files")
    a = p.parse_args()
    images = D.load_miniplaces(None, "train", shards=1, limit=a.images)
    pixels = D.decode_all(images, 128, workers=0).pixels
    curves = {name: curve(load_model(name), pixels) for name in ("miniplaces-full", "miniplaces-baseline")}
    full = curves["miniplaces-full"]
    gain = max(r["gain"] for r in full if full[0]["psnr"] - r["psnr"] <= a.max_psnr_cost)
    report = dict(rule=f"largest gain costing the full model <= {a.max_psnr_cost} dB PSNR",
                  images=f"{len(pixels)} MiniPlaces training images (shard 0)", gain=gain, curves=curves)
    out = models_dir() / "logs" / "saturation.json"
    out.write_text(json.dumps(report, indent=1))
    for name, rows in curves.items():
        for r in rows:
            print(f"{name:22s} gain {r['gain']:.1f}: PSNR {r['psnr']:.3f} dB, colourfulness {r['cf']:.2f} "
                  f"(truth {r['cf_truth']:.2f})")
    print(f"chosen gain {gain} -> {out}")
    if a.apply:
        for name in available_models():
            model = load_model(name)
            meta = {k: v for k, v in model.meta.items() if k != "model"}
            meta["saturation"] = gain
            save_model(model, model.source, meta)
            print(f"{name}: saturation {gain} stored in {model.source}")


if __name__ == "__main__":
    main()
