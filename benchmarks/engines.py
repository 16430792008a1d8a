"""PyTorch against ONNX Runtime on the CPU: seconds per image of ``predict_ab`` by image size.

Two engines, same float32 network with batch norm folded into the weights (section 3.4):

* torch: :func:`colorlib.infer.predict_ab` on :func:`colorlib.model.fold_batchnorm`'s copy
  (channels-last, oneDNN's fused convolution + ReLU), as ``colorize`` runs it;
* onnx: :meth:`colorlib.onnx.OnnxColorizer.predict_ab`, the exported graphs
  (:mod:`colorlib.onnx.export`) on ONNX Runtime's CPU provider with as many threads as torch.

Both do the whole of ``predict_ab``: the global branch on the rescaled copy, the colorizer,
the bilinear upsampling of a*b* to full size. Models: the shipped ``miniplaces-full`` and the
paper's network (``colorlib.benchmark.load_benchmark_model("paper")``: Table 1, random weights
with real batch-norm statistics). Input: the L* of ``skimage.data.astronaut`` resized to
size x size. Per size, one warm-up run of each engine, then ``--repeats`` rounds (``--repeats-2048``
at 2048) that run the two engines back to back, so machine load hits both alike; the median
and the minimum are reported, with every run in the JSON, and the largest a*b* difference
between the engines.

Reduced precision (``--precision``, needs MiniPlaces: ``$COLORLIB_DATA`` or ``../shared/data``),
for ``miniplaces-full`` only, whose trained weights make quality measurable: torch in bfloat16
(the folded copy cast to bf16) and ONNX Runtime in int8 (static quantisation, QDQ, weights
per channel, activations calibrated by min/max on ``--calibration`` training photos), beside
both float32 engines. Quality on the first ``--val`` MiniPlaces validation photos (never seen
in training or calibration): PSNR of the colorized photo (the model's saturation, as
``colorize``), a*b* difference from torch float32, top-5 scene accuracy; and speed by size.

    python benchmarks/engines.py --precision --json benchmarks/results/engines_cpu.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
from onnxruntime.quantization import (  # noqa: E402
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from colorlib.benchmark import load_benchmark_model, photo_L  # noqa: E402
from colorlib.checkpoint import load_model  # noqa: E402
from colorlib.data import DataError, decode, load_miniplaces  # noqa: E402
from colorlib.device import machine_info  # noqa: E402
from colorlib.imageio import to_uint8  # noqa: E402
from colorlib.infer import predict_ab, resolve_saturation  # noqa: E402
from colorlib.io import write_json  # noqa: E402
from colorlib.lab import join_lab, lab_to_rgb, rgb_to_L  # noqa: E402
from colorlib.metrics import psnr_uint8  # noqa: E402
from colorlib.model import fold_batchnorm  # noqa: E402
from colorlib.onnx import OnnxColorizer  # noqa: E402
from colorlib.onnx.export import OPSET, export_onnx  # noqa: E402
from colorlib.onnx.manifest import COLORIZER_FILE, GLOBAL_FILE, MANIFEST_FILE, file_sha256, read_manifest  # noqa: E402


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@torch.inference_mode()
def bench_model(spec: str, sizes: list[int], repeats: int, repeats_2048: int, cache: str) -> dict:
    """One model: both engines at every size; returns its JSON record."""
    model = load_benchmark_model(spec)
    t = time.perf_counter()
    folded = fold_batchnorm(model)
    fold_s = time.perf_counter() - t
    t = time.perf_counter()
    engine = _exported(model, Path(cache) / spec)
    export_s = time.perf_counter() - t
    rows = []
    for size in sizes:
        L = photo_L(size)
        engines = {"torch": lambda L=L: predict_ab(folded, L), "onnx": lambda L=L: engine.predict_ab(L)}
        warm = {k: _time(fn) for k, fn in engines.items()}
        diff = float((predict_ab(folded, L) - engine.predict_ab(L)).abs().max())
        runs = {k: [] for k in engines}
        for _ in range(repeats_2048 if size >= 2048 else repeats):
            for k, fn in engines.items():
                runs[k].append(_time(fn))
        row = {"size": size, "pixels": size * size, "max_abs_ab_difference": round(diff, 5)}
        for k in engines:
            row[f"{k}_s"] = round(statistics.median(runs[k]), 4)
            row[f"{k}_min_s"] = round(min(runs[k]), 4)
            row[f"{k}_runs"] = [round(r, 4) for r in runs[k]]
            row[f"{k}_warmup_s"] = round(warm[k], 4)
        row["onnx_over_torch"] = round(row["onnx_s"] / row["torch_s"], 3)
        rows.append(row)
        print(f"{spec:>16} {size:>5}: torch {row['torch_s']:7.3f} s  onnx {row['onnx_s']:7.3f} s  "
              f"ratio {row['onnx_over_torch']:.2f}  max |d a*b*| {diff:.4f}", file=sys.stderr, flush=True)
    return {"model": spec, "config": model.cfg.to_dict(), "fold_s": round(fold_s, 3),
            "export_and_load_s": round(export_s, 3), "sizes": rows}


def _exported(model, folder: Path) -> OnnxColorizer:
    """``model`` exported into ``folder`` (colorlib export-onnx's graphs), opened."""
    export_onnx(model, folder)
    return OnnxColorizer(folder)


def _with_manifest(src: Path, out: Path) -> OnnxColorizer:
    """The graphs in ``out`` (quantised copies of those in ``src``) with ``src``'s manifest,
    its hashes and sizes those of ``out``'s files, opened."""
    manifest = read_manifest(src)
    for g in manifest["graphs"].values():
        g.update(sha256=file_sha256(out / g["file"]), bytes=(out / g["file"]).stat().st_size)
    write_json(out / MANIFEST_FILE, manifest)
    return OnnxColorizer(out)


def _ort_session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


class _Feeds(CalibrationDataReader):
    def __init__(self, feeds: list[dict]):
        self._it = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self._it, None)


def quantize_int8(folder: Path, L01: torch.Tensor, out: Path, batch: int = 8) -> tuple[Path, Path]:
    """int8 copies of an export's graphs (QDQ, weights int8 per channel, activations uint8 with
    min/max ranges from ``L01``, L*/100 of calibration photos at global size): the global
    graph first, then the colorizer fed the float32 global graph's features of the same photos."""
    out.mkdir(parents=True, exist_ok=True)
    g = _ort_session(folder / GLOBAL_FILE).run(["global_features"], {"L": L01.numpy()})[0]
    chunks = range(0, len(L01), batch)
    feeds = {GLOBAL_FILE: [{"L": L01[i:i + batch].numpy()} for i in chunks],
             COLORIZER_FILE: [{"L": L01[i:i + batch].numpy(), "global_features": g[i:i + batch]}
                              for i in chunks]}
    for file, f in feeds.items():
        pre = out / f"pre-{file}"
        quant_pre_process(str(folder / file), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out / file), _Feeds(f), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    return out / COLORIZER_FILE, out / GLOBAL_FILE


def _rgb_batch(images) -> torch.Tensor:
    return torch.from_numpy(np.stack([decode(b) for b in images.blobs])).permute(0, 3, 1, 2).float() / 255


def _quality(variants: dict, scenes: dict, val, saturation: float) -> dict:
    """PSNR, top-5 scene accuracy and a*b* difference from the first variant, on ``val``."""
    rgb = _rgb_batch(val)
    L = rgb_to_L(rgb)
    truth, labels = to_uint8(rgb), torch.from_numpy(val.labels)
    quality, ref = {}, None
    for name, fn in variants.items():
        ab = fn(L).float()
        ref = ab if ref is None else ref
        top5 = (scenes[name](L / 100).topk(5, 1).indices == labels[:, None]).any(1).float().mean()
        psnr = psnr_uint8(to_uint8(lab_to_rgb(join_lab(L, ab * saturation))), truth).mean()
        quality[name] = {"psnr_db": round(float(psnr), 3), "top5_percent": round(100 * float(top5), 2),
                         "ab_difference_from_torch_fp32": {"mean": round(float((ab - ref).abs().mean()), 4),
                                                           "max": round(float((ab - ref).abs().max()), 3)}}
        print(f"{name:>10}: {quality[name]}", file=sys.stderr, flush=True)
    return quality


def _speed(variants: dict, sizes: list[int], repeats: int, repeats_2048: int) -> list[dict]:
    """Every variant at every size: a warm-up each, then rounds running them back to back."""
    rows = []
    for size in sizes:
        x = photo_L(size)
        for fn in variants.values():
            fn(x)
        runs = {k: [] for k in variants}
        for _ in range(repeats_2048 if size >= 2048 else repeats):
            for k, fn in variants.items():
                runs[k].append(_time(lambda fn=fn, x=x: fn(x)))
        row = {"size": size}
        for k, r in runs.items():
            row[f"{k}_s"], row[f"{k}_min_s"] = round(statistics.median(r), 4), round(min(r), 4)
            row[f"{k}_runs"] = [round(v, 4) for v in r]
        rows.append(row)
        print(f"{'precision':>16} {size:>5}: " + "  ".join(f"{k} {row[k + '_s']:.3f} s" for k in variants),
              file=sys.stderr, flush=True)
    return rows


VARIANTS = {"torch_fp32": "fold_batchnorm copy, float32",
            "torch_bf16": "fold_batchnorm copy cast to bfloat16 (predict_ab casts L* to it; the global "
                          "branch's rescaled copy is made in float32: torch has no bf16 antialiased resize)",
            "onnx_fp32": "the exported graphs",
            "onnx_int8": "static int8 quantisation (onnxruntime.quantization, QDQ, weights int8 per channel, "
                         "activations uint8, min/max calibration)"}


@torch.inference_mode()
def reduced_precision(sizes: list[int], repeats: int, repeats_2048: int, n_val: int, n_calib: int,
                      cache: str) -> dict | None:
    """bf16 (torch) and int8 (ONNX Runtime) beside float32: quality and speed (module docstring)."""
    try:
        calib = _rgb_batch(load_miniplaces(split="train", limit=n_calib))
        val = load_miniplaces(split="val", limit=n_val)
    except DataError as e:
        print(f"reduced precision skipped: {str(e).splitlines()[0]}", file=sys.stderr)
        return None
    model = load_model("miniplaces-full")
    folded, bf16 = fold_batchnorm(model), fold_batchnorm(model).to(torch.bfloat16)
    fp32 = _exported(model, Path(cache) / "fp32")
    t = time.perf_counter()
    quantize_int8(fp32.folder, rgb_to_L(calib) / 100, Path(cache) / "int8")
    int8 = _with_manifest(fp32.folder, Path(cache) / "int8")
    quantize_s = time.perf_counter() - t

    def bf16_global(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return bf16.global_branch(bf16.resize_for_global(x).bfloat16())

    variants = {"torch_fp32": lambda L: predict_ab(folded, L),
                "torch_bf16": lambda L: predict_ab(bf16, L, global_features=bf16_global(L / 100)[0]),
                "onnx_fp32": fp32.predict_ab, "onnx_int8": int8.predict_ab}
    scenes = {"torch_fp32": lambda x: folded.global_branch(x)[1].softmax(1),
              "torch_bf16": lambda x: bf16_global(x)[1].float().softmax(1),
              "onnx_fp32": lambda x: fp32.global_branch(x * 100)[1],
              "onnx_int8": lambda x: int8.global_branch(x * 100)[1]}
    saturation = resolve_saturation(model, None)
    files = (GLOBAL_FILE, COLORIZER_FILE)
    return {
        "model": "miniplaces-full",
        "variants": VARIANTS,
        "calibration": f"first {len(calib)} MiniPlaces training photos (128x128)",
        "validation": f"first {len(val)} MiniPlaces validation photos (128x128), saturation {saturation}",
        "quantize_s": round(quantize_s, 2),
        "int8_bytes": {f: (Path(cache) / "int8" / f).stat().st_size for f in files},
        "fp32_bytes": {f: (fp32.folder / f).stat().st_size for f in files},
        "quality": _quality(variants, scenes, val, saturation),
        "sizes": _speed(variants, sizes, repeats, repeats_2048),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["miniplaces-full", "paper"])
    p.add_argument("--sizes", nargs="+", type=int, default=[224, 512, 1024, 2048])
    p.add_argument("--repeats", type=int, default=5, help="rounds per size below 2048 (default 5)")
    p.add_argument("--repeats-2048", type=int, default=3, help="rounds at 2048 and above (default 3)")
    p.add_argument("--precision", action="store_true", help="also bf16 and int8 (needs MiniPlaces)")
    p.add_argument("--val", type=int, default=500, help="validation photos for --precision (default 500)")
    p.add_argument("--calibration", type=int, default=64,
                   help="training photos calibrating int8 (default 64)")
    p.add_argument("--threads", type=int, default=None, help="threads of both engines (default: torch's)")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="colorlib-engines-") as cache:  # a fresh export, timed
        models = [bench_model(m, a.sizes, a.repeats, a.repeats_2048, cache) for m in a.models]
        precision = (reduced_precision(a.sizes, a.repeats, a.repeats_2048, a.val, a.calibration, cache)
                     if a.precision else None)
    machine = machine_info("cpu")
    machine.update(onnxruntime=onnxruntime.__version__, onnx=onnx.__version__,
                   onnxruntime_threads=torch.get_num_threads(), load_avg_before_1_5_15_min=load_before)
    result = {
        "what": "seconds per image of predict_ab (global branch, colorizer, a*b* upsampled to full size), "
                "float32, batch norm folded; torch: fold_batchnorm copy (channels-last, oneDNN conv+ReLU); "
                "onnx: colorlib.onnx.OnnxColorizer on ONNX Runtime's CPU provider",
        "input": "L* of skimage.data.astronaut resized to size x size (bicubic)",
        "timing": f"one warm-up per engine, then rounds of torch and onnx back to back; median (and min) "
                  f"of {a.repeats} rounds, {a.repeats_2048} at 2048",
        "opset": OPSET,
        "machine": machine,
        "shared_machine": "other jobs used the CPU while this ran: see the load averages",
        "models": models,
        "reduced_precision": precision,
    }
    if a.json:
        write_json(a.json, result)
        print(f"wrote {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
