"""The book's tests share one fast-mode build per session (scripts/build_book.py).

The build executes every chapter once (jupyter-cache keeps the results, so a second session
on an unchanged book re-executes nothing); the tests read the executed notebooks, with their
outputs and widget state, from that cache, and the HTML from ``_build/html``.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from .book_helpers import BOOK, CHAPTERS, ROOT

sys.path.insert(0, str(ROOT / "scripts"))


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book once (fast mode) and return the HTML folder."""
    from build_book import build

    try:
        return build(full=False, quiet=True)
    except SystemExit as e:  # build_book exits with a message on failure
        pytest.fail(f"the book does not build: {e}")


@pytest.fixture(scope="session")
def executed(built_book) -> dict[str, nbformat.NotebookNode]:
    """The notebooks of the build, executed in fast mode, by chapter name: each chapter's
    source with the outputs and widget state the build stored in its execution cache."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    cache = get_cache(ROOT / "_build" / ".jupyter_cache")
    out = {}
    for name in CHAPTERS:
        source = read_myst_markdown_notebook((BOOK / f"{name}.md").read_text())
        try:
            out[name] = cache.merge_match_into_notebook(source)[1]
        except KeyError:
            pytest.fail(f"{name} has no executed notebook in the build's cache")
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(built_book: Path):
    """The built book served on 127.0.0.1 (a free port), as its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=built_book))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
