"""Choosing where the network runs (the one place that turns ``--device`` into a torch device),
and naming the machine it ran on (:func:`machine_info`)."""

from __future__ import annotations

import os
import platform
import re

import torch

DEVICE_HELP = "cpu | cuda | cuda:N | auto" + (" | mps" if hasattr(torch.backends, "mps") else "")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA when this PyTorch sees a GPU, else the CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` or ``"mps"`` (where this PyTorch has it) -> :class:`torch.device`.

    Names are matched exactly (``"CPU"`` or ``" cpu"`` are not names: a typo is refused, never
    guessed at). Raises ``ValueError`` (one line, listing the accepted names) for any other name
    or type, and for a GPU this PyTorch cannot see. Nothing is created or allocated, so callers
    can check a device before any work.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise ValueError(f"unknown device {name!r}: use {DEVICE_HELP}")
    text = name
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(0|[1-9][0-9]{0,3}))?", text)
    if m:
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: this PyTorch sees no CUDA GPU (use cpu or auto)")
        if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
        return torch.device(text)
    if text == "mps" and hasattr(torch.backends, "mps"):
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {name!r}: this PyTorch has no usable MPS device (use cpu or auto)")
        return torch.device("mps")
    raise ValueError(f"unknown device {name!r}: use {DEVICE_HELP}")


# -- the machine, as every figure written names it ----------------------------------------------
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` knows, else
    ``"unknown CPU"``): how reports, benchmarks and the book name the machine, without any path."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str | torch.device) -> str:
    """``cuda:0`` -> the GPU's name (what a model card says it was trained on); else the type."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def machine_info(device: str | torch.device = "cpu") -> dict:
    """CPU model and cores, torch threads, GPU name (on CUDA), library versions, load average."""
    import skimage  # only for its version; not loaded by `import colorlib`

    info = {"cpu": cpu_name(), "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": str(device), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "skimage": skimage.__version__}
    if torch.device(device).type == "cuda":
        info["gpu"] = device_name(device)
    if hasattr(os, "getloadavg"):  # other work on the machine shows in wall times: say how much
        info["load_avg_1_5_15_min"] = [round(x, 2) for x in os.getloadavg()]
    return info
