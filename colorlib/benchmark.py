"""Run time per image size, beside the paper's Table 3 (section 4.7).

By default the network is the paper's (``ModelConfig()``: width 1.0, 224 global size,
205 classes) with random weights whose batch norm has real statistics (one forward pass in
training mode over four photos), so activations are those of a working network, not of an
untrained one. ``model`` may instead name a shipped model or a weights file.

What is timed: :func:`colorlib.infer.predict_ab` (the network and the bilinear upsampling of
its a*b*) on the L* of a real photo (``skimage.data.astronaut`` resized to size x size),
with and without batch norm folded into the weights (section 3.4), after one warm-up run,
the median of up to ``repeats`` runs (fewer when one run is long, see ``budget_s``).

Each size and variant runs in a fresh process, so its peak memory is its own: on the CPU
the peak resident memory (``VmHWM``, reset after the model is loaded) above the memory held
then, one-time costs of a first run included; on CUDA ``torch.cuda.max_memory_allocated``
above the memory allocated before the runs.

    colorlib benchmark --sizes 224 512 --json runtime.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from .checkpoint import load_model
from .device import machine_info
from .infer import predict_ab
from .lab import normalize_L, rgb_to_L
from .model import Colorizer, ModelConfig, fold_batchnorm

#: Table 3 of the paper: seconds per image, (CPU: Intel Core i7-5960X, 8 cores; GPU: GTX Titan X).
PAPER_SECONDS = {224: (0.399, 0.080), 512: (1.676, 0.339), 1024: (5.629, 1.084), 2048: (20.116, 4.218)}
PAPER_MACHINE = {"cpu": "Intel Core i7-5960X, 8 cores", "gpu": "NVIDIA GTX Titan X"}
DEFAULT_SIZES = (224, 512, 1024, 2048)


def photo_L(size: int, name: str = "astronaut") -> torch.Tensor:
    """L* in [0, 100], ``(1, 1, size, size)``, of a ``skimage.data`` photo resized (bicubic)."""
    rgb = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    rgb = np.array(rgb.resize((size, size), Image.Resampling.BICUBIC))
    return rgb_to_L(torch.from_numpy(rgb).permute(2, 0, 1)[None])


@torch.no_grad()
def paper_model(seed: int = 0) -> Colorizer:
    """The paper's network with random weights (``seed``) and real batch-norm statistics:
    one training-mode pass over four photos at 224 x 224 sets every running mean/variance."""
    torch.manual_seed(seed)
    model = Colorizer(ModelConfig())
    s = model.cfg.global_size
    L = torch.cat([photo_L(s, n) for n in ("astronaut", "coffee", "chelsea", "rocket")])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average: after one pass, the batch's statistics
    model.train()(normalize_L(L))
    return model.eval()


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (Linux ``clear_refs`` 5); False if unable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_kb() -> int:
    peak = _status_kb("VmHWM")
    if peak is not None:
        return peak
    import resource  # Unix only: imported here so the module still loads elsewhere

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_network(net: Colorizer, L: torch.Tensor, repeats: int = 10, budget_s: float = 30.0) -> dict:
    """Seconds per image of ``predict_ab(net, L)``: one warm-up run, then the median of
    ``min(repeats, budget_s / warm-up time)`` runs (at least one), and the peak memory above
    what was held before (MB; CPU: resident, CUDA: allocated)."""
    device = L.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        reset = _reset_peak()
        before = _status_kb("VmRSS") if reset else _peak_kb()
    t0 = time.perf_counter()
    predict_ab(net, L)
    _sync(device)
    warm = time.perf_counter() - t0
    runs = []
    for _ in range(max(1, min(repeats, int(budget_s / max(warm, 1e-9))))):
        t0 = time.perf_counter()
        predict_ab(net, L)
        _sync(device)
        runs.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    else:
        peak_mb = (_peak_kb() - (before or 0)) / 1024
    return {"seconds": statistics.median(runs), "runs": [round(r, 5) for r in runs],
            "warmup_s": round(warm, 5), "peak_mb": round(max(peak_mb, 0.0), 1)}


def load_benchmark_model(spec: str) -> Colorizer:
    """``paper`` (:func:`paper_model`), a ``.pt`` state dict saved by :func:`run_benchmark`,
    or anything :func:`colorlib.checkpoint.load_model` accepts."""
    if spec == "paper":
        return paper_model()
    if spec.endswith(".paper.pt"):
        with torch.device("meta"):  # no random initialisation: the weights come from the file
            model = Colorizer(ModelConfig())
        model.load_state_dict(torch.load(spec, map_location="cpu", weights_only=True), assign=True)
        return model.eval()
    return load_model(spec)


def measure(spec: str, size: int, folded: bool, repeats: int = 10, budget_s: float = 30.0,
            device: str = "cpu") -> dict:
    """One cell pair of the table (seconds, peak memory), in this process: the network with
    batch norm folded (``folded``) or kept, the input a ``size`` x ``size`` photo."""
    device = torch.device(device)
    model = load_benchmark_model(spec).to(device)
    # same memory layout either way, so only the folding differs
    net = fold_batchnorm(model) if folded else model.to(memory_format=torch.channels_last)
    del model
    r = time_network(net, photo_L(size).to(device), repeats, budget_s)
    key = "folded" if folded else "bn"
    return {f"{key}_s": round(r["seconds"], 5),
            f"{key}_min_s": min(r["runs"]),  # least disturbed by other work on a shared machine
            f"{key}_runs": r["runs"], f"{key}_warmup_s": r["warmup_s"], f"{key}_peak_mb": r["peak_mb"]}


def run_benchmark(model: str = "paper", sizes=DEFAULT_SIZES, repeats: int = 10, device: str = "cpu",
                  budget_s: float = 30.0, progress: bool = True) -> dict:
    """Every size and variant in its own process (:func:`measure`); returns the JSON record."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        spec, config = model, None
        if model == "paper":  # calibrate once; every size loads the same weights
            net = paper_model()
            spec = str(Path(tmp) / "network.paper.pt")
            torch.save(net.state_dict(), spec)
            config = net.cfg.to_dict()
        for size in sizes:
            cpu, gpu = PAPER_SECONDS.get(size, (None, None))
            row = {"size": size, "pixels": size * size, "paper_cpu_s": cpu, "paper_gpu_s": gpu}
            for folded in (True, False):
                job = json.dumps({"spec": spec, "size": size, "folded": folded, "repeats": repeats,
                                  "budget_s": budget_s, "device": device})
                if progress:
                    print(f"timing {size}x{size} {'folded' if folded else 'with BN'} ...", file=sys.stderr,
                          flush=True)
                done = subprocess.run([sys.executable, "-m", "colorlib.benchmark", "--worker", job],
                                      capture_output=True, text=True, env=env, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"benchmark at {size}x{size} failed:\n{done.stderr.strip()[-2000:]}")
                row.update(json.loads(done.stdout.strip().splitlines()[-1]))
            rows.append(row)
        if config is None:
            config = load_benchmark_model(model).cfg.to_dict()
    return {"model": model, "config": config, "device": device, "machine": machine_info(device),
            "repeats": repeats, "budget_s": budget_s,
            "timed": "colorlib.infer.predict_ab (network + a*b* upsampling) on the L* of "
                     "skimage.data.astronaut resized; median of runs after one warm-up",
            "memory": "peak above the memory held before the runs (the model loaded), MB; a fresh "
                      "process per size and variant (CPU: resident set, VmHWM; CUDA: max_memory_allocated)",
            "paper": {"machine": PAPER_MACHINE, "seconds": {str(k): v for k, v in PAPER_SECONDS.items()}},
            "sizes": rows}


def format_table(result: dict) -> str:
    """Table 3's layout: size, pixels, our seconds (folded, with BN), peak memory, and the
    paper's CPU/GPU seconds ("-" for sizes the paper did not time)."""
    m = result["machine"]
    here = m.get("gpu") or f"{m['cpu']}, {m['cpu_cores']} cores, {m['torch_threads']} threads"
    dev = "GPU" if result["device"].startswith("cuda") else "CPU"

    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    lines = [
        f"Run time per image (paper Table 3); model: {result['model']}; this {dev}: {here}",
        f"{'':>11} {'':>10}  {'this ' + dev + ' (s)':^19}  {'peak memory (MB)':^19}  {'paper (s)':^17}",
        (f"{'Image size':>11} {'Pixels':>10}  {'folded':>9} {'with BN':>9}  {'folded':>9} {'with BN':>9}"
         f"  {'CPU':>8} {'GPU':>8}"),
    ]
    for r in result["sizes"]:
        lines.append(f"{str(r['size']) + 'x' + str(r['size']):>11} {r['pixels']:>10,}  {r['folded_s']:>9.3f} "
                     f"{r['bn_s']:>9.3f}  {r['folded_peak_mb']:>9.0f} {r['bn_peak_mb']:>9.0f}  "
                     f"{num(r['paper_cpu_s'], '8.3f'):>8} {num(r['paper_gpu_s'], '8.3f'):>8}")
    lines.append(f"paper: {PAPER_MACHINE['cpu']} / {PAPER_MACHINE['gpu']}")
    load = m.get("load_avg_1_5_15_min")
    lines.append("ours: median of runs after a warm-up (every run and the minimum are in the JSON)"
                 + (f"; load average {load[1]:.1f} over the last 5 minutes" if load else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    # The worker process of run_benchmark: one size and variant (see the module docstring).
    job = json.loads(sys.argv[2])
    print(json.dumps(measure(job["spec"], job["size"], job["folded"], job["repeats"], job["budget_s"],
                             job["device"])))
