"""Seconds per image by size beside the paper's Table 3: the same as ``colorlib benchmark``.

    python benchmarks/runtime.py                      # the paper's sizes: 224 512 1024 2048
    python benchmarks/runtime.py --sizes 224 512 --json benchmarks/results/runtime_cpu.json

The code is :mod:`colorlib.benchmark`; see ``python benchmarks/runtime.py --help``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib.cli import main  # noqa: E402 - after the path set-up above

if __name__ == "__main__":
    main(["benchmark", *sys.argv[1:]])
