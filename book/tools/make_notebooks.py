"""Turn the book's MyST chapters into plain Jupyter notebooks, and pack the classroom kit.

    python book/tools/make_notebooks.py --out DIR          # after a build: DIR/notebooks, DIR/student
    python book/tools/make_notebooks.py --out DIR --kit    # ... and DIR/colorlib-classroom-kit.zip

A converted notebook opens in plain JupyterLab or Notebook with nothing but
``pip install "colorlib[book]"`` (issue 13, item 4): admonitions and dropdowns become blockquotes
with a bold title, ``{glue:text}`` placeholders become the values the build computed (read from the
build's execution cache), ``{cite}`` becomes "(Author et al., year)" from ``book/references.bib``,
``{doc}``/``{ref}``/``{numref}``/``{eq}`` become links to the other chapter's ``.ipynb`` or plain
text, and ``from myst_nb import glue`` (a build-only package) becomes a small local stand-in.
Cells tagged ``remove-cell`` are dropped; ``hide-cell``/``hide-input`` fold in Jupyter
(``metadata.jupyter.source_hidden``). The student edition is the same notebook with the
solutions removed (:func:`make_student_edition.student_edition`).

The kit (issue 13, item 5) is one zip: the wheel (with the shipped models), both editions, the
study stimuli the build rendered, and a README of three commands.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jupytext
import nbformat
from make_student_edition import strip_solution_blocks

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
KIT_NAME = "colorlib-classroom-kit.zip"
DOWNLOADS = "downloads"  # folder of the built HTML with the notebooks and the kit
INSTALL_NOTE = (
    "**Before you run this notebook**: it needs the `colorlib` package with its book extras, "
    "installed once in the environment Jupyter runs in: `pip install \"colorlib[book]\"` "
    "(from the classroom kit: `pip install \"colorlib-<version>-py3-none-any.whl[book]\"`, "
    "whose wheel carries the trained models). On a laptop, start Jupyter with `COLORLIB_FAST=1` "
    "set for short runs. This notebook is chapter *{title}* of the book *Let there be Color!*."
)
GLUE_STANDIN = (
    "# The book glues values into its text with myst_nb (a build-time package); here the values\n"
    "# are already in the text, so glue only shows a value when asked to.\n"
    "def glue(name, value, display=True):\n"
    "    if display:\n"
    "        from IPython.display import display as show\n"
    "\n"
    "        show(value)\n"
)

# MyST syntax that plain Jupyter shows raw: roles, directive fences, targets, equation labels
MYST_PATTERNS = {
    "role": re.compile(r"\{[a-z][\w:-]*\}`"),
    "directive": re.compile(r"^\s*(`{3,}|:{3,})\s*\{[\w:-]+\}", re.M),
    "target": re.compile(r"^\([\w:.-]+\)=\s*$", re.M),
    "equation label": re.compile(r"^\$\$\s*\([\w:.-]+\)\s*$", re.M),
}

_FENCE = re.compile(r"^(`{3,}|:{3,})\{([\w-]+)\}\s*(.*)$")
_ROLE = re.compile(r"\{([a-z][\w:-]*)\}`([^`]*)`")
_GLUE_IMPORT = re.compile(r"^from myst_nb import glue\s*$", re.M)


def myst_leftovers(markdown: str) -> list[str]:
    """The MyST constructs still in ``markdown`` (empty for plain Jupyter Markdown), each as
    "kind: text"; fenced code blocks with a plain language (```` ```bash ````) are fine."""
    found = []
    for kind, pattern in MYST_PATTERNS.items():
        found += [f"{kind}: {m.group(0).strip()}" for m in pattern.finditer(markdown)]
    return found


def chapters() -> list[Path]:
    """The numbered chapters, in book order (the instructors page runs the repository's tools and
    stays a page of the book)."""
    return sorted(BOOK.glob("[0-9][0-9]_*.md"))


def title_of(path: Path) -> str:
    """The first ``# `` heading of a chapter file."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def read_bib(path: Path = BOOK / "references.bib") -> dict[str, str]:
    """Author-year text per BibTeX key: "Iizuka et al., 2016", "Levin and Lischinski, 2004"."""
    out = {}
    for entry in re.split(r"\n(?=@)", path.read_text(encoding="utf-8")):
        key = re.match(r"\s*@\w+\{([^,]+),", entry)
        author = re.search(r"author\s*=\s*\{(.+?)\},?\s*$", entry, re.M)
        year = re.search(r"year\s*=\s*\{?(\d{4})", entry)
        if not key:
            continue
        names = [a.split(",")[0].strip().strip("{}") for a in author.group(1).split(" and ")] if author else []
        who = (names[0] + " et al." if len(names) > 2 else " and ".join(names)) or key.group(1)
        out[key.group(1).strip()] = f"{who}, {year.group(1) if year else 'n.d.'}"
    return out


def glue_values(executed: nbformat.NotebookNode) -> dict[str, str]:
    """The ``text/plain`` of every value a notebook glued (myst-nb stores them as outputs with
    ``metadata.scrapbook``), by name."""
    values = {}
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            prefix = meta.get("mime_prefix", "")
            text = output.get("data", {}).get(prefix + "text/plain")
            if text is not None:
                values[meta["name"]] = text
    return values


def executed_notebooks(cache_dir: Path = ROOT / "_build" / ".jupyter_cache") -> dict[str, nbformat.NotebookNode]:
    """Each chapter's notebook with the outputs of the last build, from its execution cache.

    Raises:
        KeyError: a chapter has no executed notebook in the cache (build the book first).
    """
    from jupyter_cache import get_cache  # build-time packages, not needed to read the module
    from myst_nb.core.read import read_myst_markdown_notebook

    cache = get_cache(cache_dir)
    out = {}
    for path in chapters():
        source = read_myst_markdown_notebook(path.read_text(encoding="utf-8"))
        try:
            out[path.stem] = cache.merge_match_into_notebook(source)[1]
        except KeyError:
            raise KeyError(f"{path.name} has no executed notebook in {cache_dir}: build the book first") from None
    return out


_MATH_LABEL = re.compile(r"^(?:`{3,}|:{3,})\{math\}\s*\n:label:\s*([\w:.-]+)", re.M)


def equation_numbers() -> dict[str, tuple[str, int]]:
    """Each labelled equation (``{math}`` with ``:label:``) as (chapter, number), numbered as the
    HTML book numbers it: the paper's number for the paper's equations
    (:data:`colorlib.book.sphinx_fixes.PAPER_EQUATIONS`), else in order of appearance in its
    chapter."""
    from colorlib.book.sphinx_fixes import PAPER_EQUATIONS

    out = {}
    for path in chapters():
        for n, label in enumerate(_MATH_LABEL.findall(path.read_text(encoding="utf-8")), start=1):
            out[label] = (path.stem, PAPER_EQUATIONS.get(label, n))
    return out


def _admonition(kind: str, title: str, body: list[str]) -> list[str]:
    heading = title.strip() or kind.replace("-", " ").capitalize()
    lines = [f"> **{heading}**\n", ">\n"]
    lines += [f"> {b}" if b.strip() else ">\n" for b in body]
    return lines + ["\n"]


def convert_blocks(markdown: str, equations: dict[str, tuple[str, int]] | None = None) -> str:
    """Admonitions, notes and dropdowns (``` or ::: fences) become blockquotes with a bold
    title; their options (``:class:`` ...) are dropped. Nested blocks become nested quotes.
    A ``{math}`` block becomes ``$$ ... $$``, with ``\\tag{n}`` when ``equations`` numbers its
    label."""
    equations = equations or {}
    lines = markdown.splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or m.group(2) == "code-cell":
            out.append(lines[i])
            i += 1
            continue
        fence, kind, title = m.groups()
        j, body, label = i + 1, [], None
        while j < len(lines) and re.match(r"^:\w[\w-]*:", lines[j]):
            if lines[j].startswith(":label:"):
                label = lines[j].split(":", 2)[2].strip()
            j += 1  # options
        if kind == "math":
            k = next((k for k in range(j, len(lines)) if lines[k].rstrip() == fence), len(lines))
            body = [t if t.endswith("\n") else t + "\n" for t in lines[j:k] if t.strip()]
            tag = [f"\\tag{{{equations[label][1]}}}\n"] if label in equations else []
            out += ["$$\n", *body, *tag, "$$\n"]
            i = k + 1
            continue
        while j < len(lines) and lines[j].rstrip() != fence:
            body.append(lines[j])
            j += 1
        while body and not body[0].strip():
            body.pop(0)
        if body and not body[-1].endswith("\n"):
            body[-1] += "\n"
        out += _admonition(kind, title, convert_blocks("".join(body)).splitlines(keepends=True))
        i = j + 1
    return "".join(out)


def convert_markdown(markdown: str, glued: dict[str, str], bib: dict[str, str], titles: dict[str, str],
                     equations: dict[str, tuple[str, int]] | None = None, chapter: str = "") -> str:
    """One Markdown cell of the book as plain Jupyter Markdown (see the module docstring).

    Raises:
        KeyError: a ``{glue:text}`` name no executed cell glued, or an unknown citation key.
    """
    from myst_nb.core.variables import format_plain_text  # the book's own formatting of glued text

    def role(m: re.Match) -> str:
        name, content = m.group(1), m.group(2)
        if name.startswith("glue"):
            key, _, fmt = content.partition(":")
            if key not in glued:
                raise KeyError(f"{{glue}} value {key!r} was never glued")
            return format_plain_text(glued[key], fmt) if name == "glue:text" else glued[key]
        if name == "cite":
            keys = [k.strip() for k in content.split(",")]
            return "(" + "; ".join(bib[k] for k in keys) + ")"
        explicit = re.match(r"(.*?)\s*<([^>]+)>$", content)
        text, target = (explicit.group(1), explicit.group(2)) if explicit else (None, content)
        if name == "doc":
            stem = Path(target).stem
            if stem in titles:
                return f"[{text or titles[stem]}]({stem}.ipynb)"
            page = BOOK / f"{stem}.md"  # a page of the book that is no notebook (glossary, ...)
            return text or (title_of(page) if page.exists() else stem)
        if name == "eq":
            if target not in (equations or {}):
                return f"({text or target})"
            where, n = equations[target]  # "Eq. 5", as the HTML book writes it (_config.yml)
            if where == chapter:
                return text or f"Eq. {n}"
            return f"[{text or f'Eq. {n}'}]({where}.ipynb)"
        if name == "math":
            return f"${content}$"
        return text or target.replace("-", " ")  # ref, numref, term, ...

    markdown = convert_blocks(markdown, equations)
    markdown = re.sub(r"^\([\w:.-]+\)=\s*\n", "", markdown, flags=re.M)
    markdown = re.sub(r"^(\$\$)[ \t]*\([\w:.-]+\)[ \t]*$", r"\1", markdown, flags=re.M)
    return _ROLE.sub(role, markdown)


def _fold(cell: nbformat.NotebookNode) -> None:
    tags = set(cell.metadata.get("tags", []))
    jupyter = {}
    if tags & {"hide-cell", "hide-input"}:
        jupyter["source_hidden"] = True
    if tags & {"hide-cell", "hide-output"}:
        jupyter["outputs_hidden"] = True
    if jupyter:
        cell.metadata["jupyter"] = jupyter


def to_notebook(path: Path, glued: dict[str, str], student: bool = False) -> nbformat.NotebookNode:
    """The chapter at ``path`` as a plain notebook without outputs; ``student`` removes the
    solutions (code cells tagged ``solution``, blocks with ``:class: ... solution``)."""
    nb = jupytext.read(path)
    bib, titles, equations = read_bib(), {p.stem: title_of(p) for p in chapters()}, equation_numbers()
    cells = [nbformat.v4.new_markdown_cell(INSTALL_NOTE.format(title=title_of(path)))]
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "remove-cell" in tags or (student and cell.cell_type == "code" and "solution" in tags):
            continue
        if cell.cell_type == "markdown":
            source = strip_solution_blocks(cell.source)[0] if student else cell.source
            cell.source = convert_markdown(source, glued, bib, titles, equations, path.stem)
            if not cell.source.strip():
                continue
        elif cell.cell_type == "code":
            cell.source = _GLUE_IMPORT.sub(GLUE_STANDIN.rstrip("\n"), cell.source)
            _fold(cell)
        cells.append(cell)
    nb.cells = cells
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nbformat.validate(nb)
    return nb


def write_notebooks(out: Path, executed: dict[str, nbformat.NotebookNode] | None = None) -> list[Path]:
    """Every chapter into ``out/notebooks`` (teacher edition) and ``out/student``; returns the
    files written."""
    executed = executed_notebooks() if executed is None else executed
    written = []
    for edition, student in (("notebooks", False), ("student", True)):
        (out / edition).mkdir(parents=True, exist_ok=True)
        for path in chapters():
            nb = to_notebook(path, glue_values(executed[path.stem]), student=student)
            target = out / edition / f"{path.stem}.ipynb"
            nbformat.write(nb, target)
            written.append(target)
    return written


def build_wheel(dist: Path) -> Path:
    """The package as a wheel (the shipped models inside), built from a clean copy of the sources
    so that a stale ``build/`` folder cannot add removed modules."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "colorlib", src / "colorlib", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(ROOT / name, src / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(dist), str(src)], check=True, capture_output=True)
    return next(dist.glob("colorlib-*.whl"))


def kit_readme(wheel: str) -> str:
    """The kit's README: three commands, then what is in the zip."""
    return f"""# Let there be Color! -- classroom kit

Three commands (Python 3.10 or newer; no GPU, no repository and no other download needed
besides the packages pip fetches for the wheel's dependencies):

    python -m venv colorenv
    colorenv/bin/python -m pip install "{wheel}[book]" jupyterlab
    COLORLIB_FAST=1 colorenv/bin/jupyter lab notebooks/

(On Windows: `colorenv\\Scripts\\python` and `colorenv\\Scripts\\jupyter`, and `set COLORLIB_FAST=1`
before the last command. Leave COLORLIB_FAST unset on a GPU machine for the full-size runs.)

What is here:

- `{wheel}`: the `colorlib` package with the trained models it ships (non-commercial research
  and education only, as the Places images they were trained on).
- `notebooks/`: every chapter as a plain Jupyter notebook, with the solutions.
- `student/`: the same notebooks without the solutions, to hand out.
- `study-stimuli/`: the images of the naturalness study (chapter 7), rendered once; load them with
  `colorlib.study.Stimuli.load("study-stimuli/<folder>/manifest-n<N>.json")`.

Without the MiniPlaces data the chapters run on the photographs shipped with the Python
packages and say so on every figure; with it, set COLORLIB_DATA to its folder.
"""


def stimuli_dirs() -> list[Path]:
    """The study stimuli the build rendered last (chapter 7 caches them in runs/book, one folder
    per models and seed; older folders are of models since replaced): that folder, or none."""
    base = ROOT / "runs" / "book" / "study-stimuli"
    found = [p for p in base.glob("*") if p.is_dir() and any(p.glob("manifest-*.json"))]
    newest = max(found, key=lambda p: max(m.stat().st_mtime for m in p.glob("manifest-*.json")), default=None)
    return [newest] if newest else []


def make_kit(out: Path) -> Path:
    """``out/colorlib-classroom-kit.zip`` from the notebooks in ``out`` (see
    :func:`write_notebooks`), a freshly built wheel and the rendered study stimuli."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        target = out / KIT_NAME
        partial = target.with_suffix(".zip.part")
        with zipfile.ZipFile(partial, "w") as z:
            z.writestr("colorlib-kit/README.md", kit_readme(wheel.name))
            z.write(wheel, f"colorlib-kit/{wheel.name}")  # stored: the weights are gzipped already
            for edition in ("notebooks", "student"):
                for nb in sorted((out / edition).glob("*.ipynb")):
                    z.write(nb, f"colorlib-kit/{edition}/{nb.name}", compress_type=zipfile.ZIP_DEFLATED)
            for folder in stimuli_dirs():
                for f in sorted(folder.rglob("*")):
                    if f.is_file():
                        z.write(f, f"colorlib-kit/study-stimuli/{folder.name}/{f.relative_to(folder)}")
        partial.replace(target)
    return target


_DOWNLOAD_MENU = re.compile(r'(<div class="dropdown dropdown-download-buttons">.*?<ul class="dropdown-menu">)', re.S)
_MENU_ITEM = """
      <li><a href="{href}" download class="btn btn-sm btn-download-notebook-button dropdown-item"
   title="{title}" data-bs-placement="left" data-bs-toggle="tooltip">
<span class="btn__icon-container"><i class="fas fa-code"></i></span>
<span class="btn__text-container">{label}</span></a></li>"""


def link_notebooks(html: Path) -> int:
    """Add the chapter's notebooks (both editions) to the download menu of each chapter page of
    the built ``html``; returns how many pages got them.

    Raises:
        ValueError: a chapter page has no download menu (the theme changed).
    """
    done = 0
    for path in chapters():
        page = html / "book" / f"{path.stem}.html"
        text = page.read_text(encoding="utf-8")
        if "btn-download-notebook-button" in text:
            done += 1
            continue
        items = "".join(
            _MENU_ITEM.format(href=f"../{DOWNLOADS}/{edition}/{path.stem}.ipynb", title=title, label=label)
            for edition, label, title in (
                ("notebooks", ".ipynb", "Download this chapter as a notebook for any Jupyter"),
                ("student", ".ipynb (student)", "The notebook without the solutions"),
            )
        )
        new, n = _DOWNLOAD_MENU.subn(lambda m, items=items: m.group(1) + items, text, count=1)
        if not n:
            raise ValueError(f"{page.name} has no download menu to add the notebook to")
        page.write_text(new, encoding="utf-8")
        done += 1
    return done


def publish(html: Path, cache_dir: Path) -> Path:
    """After ``jupyter-book build``: both editions into ``html/downloads``, the classroom kit beside
    them, and a notebook entry in every chapter's download menu; returns the kit's path."""
    out = html / DOWNLOADS
    write_notebooks(out, executed_notebooks(cache_dir))
    link_notebooks(html)
    return make_kit(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "_build" / "html" / "downloads", help="output folder")
    p.add_argument("--kit", action="store_true", help="also pack the classroom kit zip (builds the wheel)")
    a = p.parse_args(argv)
    try:
        written = write_notebooks(a.out)
    except KeyError as e:
        sys.exit(f"make_notebooks: {e.args[0]}")
    print(f"{len(written)} notebooks -> {a.out}")
    if a.kit:
        print(f"classroom kit -> {make_kit(a.out)}")


if __name__ == "__main__":
    main()
