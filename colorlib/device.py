"""Choosing where the network runs: the one place that turns ``--device`` into a torch device."""

from __future__ import annotations

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
