"""The folder format of an export: file names, the manifest, and checking a folder against it.

A folder of graphs holds ``global.onnx`` (full models only), ``colorizer.onnx`` and
``manifest.json``; the manifest lists each graph's file and sha256 and is written last, so a
folder with a manifest whose hashes match holds a complete export. Light on purpose (no onnx,
no onnxruntime): both :mod:`colorlib.onnx.export` and :mod:`colorlib.onnx.runtime` read it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

#: Bumped whenever the graphs' inputs, outputs or the manifest's layout change.
FORMAT_VERSION = 1
GLOBAL_FILE, COLORIZER_FILE, MANIFEST_FILE = "global.onnx", "colorizer.onnx", "manifest.json"


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: str | os.PathLike, verify: bool = True) -> dict:
    """The manifest of an export folder. ``verify``: check each graph file's sha256. Raises
    ``ValueError`` (one line naming the file) for a missing, unreadable or mismatching export."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
        graphs = manifest["graphs"]
        if not isinstance(graphs, dict) or not graphs or not all(
                isinstance(g, dict) and isinstance(g.get("file"), str) and isinstance(g.get("sha256"), str)
                for g in graphs.values()):
            raise ValueError("'graphs' must map each graph to its file and sha256")
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"{type(e).__name__}: {e}".splitlines()[0]
        raise ValueError(f"{path}: not a colorlib ONNX manifest ({why})") from e
    if verify:
        for g in graphs.values():
            f = folder / g["file"]
            if not f.is_file():
                raise ValueError(f"{f}: missing (the manifest lists it)")
            if file_sha256(f) != g["sha256"]:
                raise ValueError(f"{f}: its sha256 does not match the manifest (a changed or partial file)")
    return manifest
