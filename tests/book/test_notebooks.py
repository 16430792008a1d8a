"""The chapters as plain Jupyter notebooks (issue 13, item 4): ``book/tools/make_notebooks.py``.

The conversion is checked on small pieces of MyST with known answers (no build needed), then on
the notebooks the build publishes: no markdown cell of either edition holds MyST syntax, glued
values are filled in, the student edition has no solution, and every notebook executes in a
fresh kernel, in fast mode, from a temporary folder outside the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

from .book_helpers import BOOK, CHAPTERS, ROOT

sys.path.insert(0, str(BOOK / "tools"))
import make_notebooks as M  # noqa: E402  (book/tools is no package)

pytestmark = pytest.mark.book

EDITIONS = ("notebooks", "student")
BIB = {"iizuka2016": "Iizuka et al., 2016", "zhou2014": "Zhou et al., 2014"}
TITLES = {"03_network": "The network"}


def convert(text: str, glued: dict[str, str] | None = None) -> str:
    return M.convert_markdown(text, glued or {}, BIB, TITLES)


# -- the conversion, on known pieces (no build needed) ------------------------------------------
def test_admonitions_become_blockquotes_with_a_bold_title():
    text = ":::{admonition} In this chapter\n:class: tip\nFirst line.\n\nSecond.\n:::\nAfter.\n"
    assert convert(text) == "> **In this chapter**\n>\n> First line.\n>\n> Second.\n\nAfter.\n"
    note = "```{note}\nA note.\n```\n"
    assert convert(note) == "> **Note**\n>\n> A note.\n\n"


def test_glued_values_are_their_text_with_the_format_applied():
    glued = {"ch2_gamut_pct_50": "'22%'", "ch3_share": "0.1234", "ch3_total": "1234567"}
    text = "Only {glue:text}`ch2_gamut_pct_50` fits; {glue:text}`ch3_share:.1%` and {glue:text}`ch3_total:,d`."
    assert convert(text, glued) == "Only 22% fits; 12.3% and 1,234,567."
    with pytest.raises(KeyError, match="never_glued"):
        convert("{glue:text}`never_glued`")


def test_citations_and_cross_references_become_text_and_links():
    text = "The paper {cite}`iizuka2016` and {cite}`iizuka2016,zhou2014`; see {doc}`03_network` or {doc}`this <03_network>`."
    assert convert(text) == ("The paper (Iizuka et al., 2016) and (Iizuka et al., 2016; Zhou et al., 2014); "
                             "see [The network](03_network.ipynb) or [this](03_network.ipynb).")
    assert convert("(sec-loss)=\n## Loss\nEq. {eq}`eq-loss`, {ref}`the loss <sec-loss>`\n") == \
        "## Loss\nEq. (eq-loss), the loss\n"
    assert convert("$$\nx = 1\n$$ (eq-x)\n") == "$$\nx = 1\n$$\n"


def test_labelled_equations_keep_their_number_and_references_link_to_them():
    equations = {"eq-fusion": ("03_network", 1), "eq-loss": ("05_training", 2)}
    text = "See {eq}`eq-fusion` and {eq}`eq-loss`:\n\n```{math}\n:label: eq-fusion\ny = \\sigma(b + W x)\n```\n"
    assert M.convert_markdown(text, {}, BIB, TITLES, equations, chapter="03_network") == (
        "See Eq. 1 and [Eq. 2](05_training.ipynb):\n\n$$\ny = \\sigma(b + W x)\n\\tag{1}\n$$\n")


def test_the_books_equations_carry_the_papers_numbers():
    # the paper (Iizuka et al. 2016): Eq. 5 is the fusion layer (section 3.2.4), Eq. 6 the joint
    # loss (section 3.3); the book labels both and refers to them, and nothing else is labelled
    numbers = M.equation_numbers()
    assert numbers == {"eq-fusion": ("03_network", 5), "eq-joint-loss": ("05_training", 6)}
    fusion = convert("See {eq}`eq-fusion`.\n")
    assert fusion == "See (eq-fusion).\n"  # without the table: the label as text, never a number
    assert M.convert_markdown("{eq}`eq-joint-loss`", {}, BIB, TITLES, numbers, chapter="09_classification") \
        == "[Eq. 6](05_training.ipynb)"


def test_a_page_that_is_no_notebook_is_named_not_linked():
    assert convert("the {doc}`references` page") == "the References page"


def test_the_bibliography_gives_author_year_for_every_key_the_book_cites():
    bib = M.read_bib()
    assert bib["iizuka2016"] == "Iizuka et al., 2016"
    cited = {k.strip() for p in BOOK.glob("*.md") for group in M._ROLE.findall(p.read_text())
             if group[0] == "cite" for k in group[1].split(",")}
    assert cited and cited <= set(bib)


def test_leftover_detector_finds_myst_and_passes_plain_markdown():
    assert M.myst_leftovers("```{admonition} x\n```\n:::{note}\n(lbl)=\n{doc}`a`\n$$ (eq-a)\n") == [
        "role: {doc}`", "directive: ```{admonition}", "directive: :::{note}", "target: (lbl)=",
        "equation label: $$ (eq-a)"]
    assert M.myst_leftovers("```bash\nmake book\n```\n> **Note**\n[a](b.ipynb) $x$\n") == []


def test_student_edition_drops_solutions_and_tags_fold_in_jupyter():
    glued = M.glue_values(nbformat.v4.new_notebook())  # no values: pick a chapter that glues none
    path = next(p for p in M.chapters() if "{glue" not in p.read_text() and "solution" in p.read_text())
    teacher, student = M.to_notebook(path, glued), M.to_notebook(path, glued, student=True)
    solution_cells = [c for c in teacher.cells if "solution" in c.metadata.get("tags", [])]
    assert all(c.metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True} for c in solution_cells)
    assert not [c for c in student.cells if "solution" in c.metadata.get("tags", [])]
    assert "> **Solution**" in "".join(c.source for c in teacher.cells)
    assert "> **Solution**" not in "".join(c.source for c in student.cells)


# -- the published notebooks (after the build) --------------------------------------------------
@pytest.fixture(scope="module")
def published(built_book: Path) -> Path:
    return built_book / M.DOWNLOADS


def read_all(published: Path) -> dict[tuple[str, str], nbformat.NotebookNode]:
    out = {}
    for edition in EDITIONS:
        for name in CHAPTERS:
            path = published / edition / f"{name}.ipynb"
            assert path.is_file(), f"the build did not publish {edition}/{name}.ipynb"
            out[edition, name] = nbformat.read(path, as_version=4)
    return out


def test_no_markdown_cell_holds_myst_and_each_says_what_to_install(published):
    for (edition, name), nb in read_all(published).items():
        nbformat.validate(nb)
        assert 'pip install "colorlib[book]"' in nb.cells[0].source and nb.cells[0].cell_type == "markdown"
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                assert M.myst_leftovers(cell.source) == [], f"{edition}/{name}: {cell.source[:200]}"
            else:
                assert "import myst_nb" not in cell.source and "from myst_nb" not in cell.source
                assert not cell.get("outputs")


def test_glued_values_are_in_the_text_and_solutions_only_in_the_teacher_edition(published):
    notebooks = read_all(published)
    lab = "".join(c.source for c in notebooks["notebooks", "02_lab"].cells)
    assert "only" in lab and "%" in lab and "{glue" not in lab
    for name in CHAPTERS:
        teacher = "".join(c.source for c in notebooks["notebooks", name].cells)
        student = "".join(c.source for c in notebooks["student", name].cells)
        assert "> **Solution**" not in student
        assert not [c for c in notebooks["student", name].cells if "solution" in c.metadata.get("tags", [])]
        assert teacher.count("**Exercise") == student.count("**Exercise")
    assert any("> **Solution**" in "".join(c.source for c in notebooks["notebooks", n].cells) for n in CHAPTERS)


@pytest.mark.slow
@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("name", CHAPTERS)
def test_every_notebook_runs_in_a_fresh_kernel_outside_the_repository(published, tmp_path, monkeypatch,
                                                                      name, edition):
    from nbclient import NotebookClient  # only this test runs notebooks

    nb = nbformat.read(published / edition / f"{name}.ipynb", as_version=4)
    assert not tmp_path.resolve().is_relative_to(ROOT.resolve())
    monkeypatch.setenv("COLORLIB_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert sum(bool(c.get("outputs")) for c in nb.cells if c.cell_type == "code") > 0
    assert os.environ["COLORLIB_FAST"] == "1"
