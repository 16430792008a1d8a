"""Helpers for the book's tests: reading glued values and widget state of executed notebooks."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
#: the chapters, in the order of _toc.yml
CHAPTERS = ["01_why", "02_lab", "03_network", "04_data", "05_training", "06_results", "07_user_study",
            "08_style_transfer", "09_classification", "10_past", "11_runtime", "12_limitations"]
PAGES = ["index", *CHAPTERS, "glossary", "instructors", "references"]


def miniplaces_present() -> bool:
    """Whether the chapters found the MiniPlaces data (else they ran on the package photos)."""
    from colorlib.data import DataError, data_root

    try:
        root = data_root()
    except DataError:
        return False
    return (root / "miniplaces" / "val.tar.gz").exists() or (root / "miniplaces" / "val").is_dir()


def glued(nb: nbformat.NotebookNode) -> dict:
    """Values a notebook stored with ``myst_nb.glue`` (their text/plain representation, parsed)."""
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = o.get("data", {})  # glue(display=False) stores "application/papermill.record/text/plain"
            text = next((v for k, v in data.items() if k.endswith("text/plain")), "")
            try:
                out[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                try:  # reprs with nan or inf in them
                    tree = ast.parse(text, mode="eval")
                    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
                    if names <= {"nan", "inf"}:
                        out[name] = eval(compile(tree, name, "eval"), {"__builtins__": {}},
                                         {"nan": math.nan, "inf": math.inf})
                        continue
                except SyntaxError:
                    pass
                out[name] = text
    return out


def widget_state(nb: nbformat.NotebookNode) -> dict:
    return nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})


def stream_text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")

