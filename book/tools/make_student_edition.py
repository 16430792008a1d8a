"""Make the student edition of the book: every chapter as a notebook without solutions.

    python book/tools/make_student_edition.py                  # all chapters -> _build/student/
    python book/tools/make_student_edition.py book/05_training.md --out handout/

Removed: code cells tagged ``solution`` and MyST blocks (admonitions, dropdowns) whose
``:class:`` contains ``solution``. Everything else, the exercises included, stays. The
output is ``.ipynb`` without outputs, ready to open in Jupyter.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[2]
_OPEN = re.compile(r"^(`{3,}|:{3,})\{[\w-]+\}")


def strip_solution_blocks(markdown: str) -> tuple[str, int]:
    """Drop fenced MyST directives whose options say ``:class: ... solution ...``."""
    lines, out, removed, i = markdown.splitlines(keepends=True), [], 0, 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m:
            fence = m.group(1)
            j = i + 1
            options = []
            while j < len(lines) and lines[j].startswith(":") and not lines[j].startswith(fence):
                options.append(lines[j])
                j += 1
            if any(o.startswith(":class:") and "solution" in o.split() for o in options):
                k = j
                while k < len(lines) and lines[k].rstrip() != fence:
                    k += 1
                i, removed = k + 1, removed + 1
                while i < len(lines) and not lines[i].strip() and out and not out[-1].strip():
                    i += 1  # no runs of blank lines where the block was
                continue
        out.append(lines[i])
        i += 1
    return "".join(out), removed


def student_edition(path: Path) -> tuple[nbformat.NotebookNode, int]:
    """The notebook of one chapter without its solutions, and how many were removed."""
    nb = jupytext.read(path)
    cells, removed = [], 0
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            removed += 1
            continue
        if cell.cell_type == "markdown":
            cell.source, n = strip_solution_blocks(cell.source)
            removed += n
        cells.append(cell)
    nb.cells = cells
    return nb, removed


def chapters() -> list[Path]:
    return sorted(p for p in (ROOT / "book").glob("[0-9][0-9]_*.md"))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("chapters", nargs="*", type=Path, help="chapter files (default: every chapter)")
    p.add_argument("--out", type=Path, default=ROOT / "_build" / "student", help="output folder")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    for path in a.chapters or chapters():
        if not path.exists():
            sys.exit(f"no such chapter: {path}")
        nb, removed = student_edition(path)
        target = a.out / (path.stem + ".ipynb")
        nbformat.write(nb, target)
        print(f"{path.name}: {removed} solutions removed -> {target}")


if __name__ == "__main__":
    main()
