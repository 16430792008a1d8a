"""The classroom kit, served by the book itself (issue 13, item 5), followed as the instructors
page describes it: in Chromium, download the zip from the served book's front page, install its
wheel into a fresh environment, and execute a chapter notebook there, outside the repository.

The fresh environment reuses this one's installed dependencies through a ``.pth`` line (as
tests/test_wheel.py does), so pip installs only the wheel and nothing is downloaded; the README's
``pip install "<wheel>[book]"`` fetches the same dependencies from the registry on a real machine.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest

from .book_helpers import CHAPTERS, ROOT

sys.path.insert(0, str(ROOT / "book" / "tools"))
import make_notebooks as M  # noqa: E402  (book/tools is no package)

pytestmark = [pytest.mark.book, pytest.mark.slow]

#: the chapter the test runs from the kit (short in fast mode; colorizes with the shipped models)
CHAPTER = "01_why"
RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
nbformat.write(nb, sys.argv[2])
"""


@pytest.fixture
def local_page(browser, server):  # noqa: F811
    """A page that may download, and that records every request leaving 127.0.0.1."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.outside = []

    def route(r):
        if r.request.url.startswith(server + "/"):
            r.continue_()
        else:
            page.outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    yield page
    context.close()


@pytest.fixture(scope="module")
def kit_download(browser, server, tmp_path_factory) -> Path:  # noqa: F811
    """The kit as Chromium downloads it from the served front page's link."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(server + "/book/index.html")
    with page.expect_download() as info:
        page.locator("a.kit-download").first.click()
    target = tmp_path_factory.mktemp("download") / info.value.suggested_filename
    info.value.save_as(target)
    context.close()
    return target


def test_front_page_and_instructors_page_link_the_same_kit(local_page, server):  # noqa: F811
    hrefs = []
    for page_name in ("index", "instructors"):
        local_page.goto(f"{server}/book/{page_name}.html")
        link = local_page.locator("a.kit-download")
        assert link.count() == 1, f"{page_name}.html has no link to the classroom kit"
        hrefs.append(link.evaluate("a => a.href"))
    assert hrefs[0] == hrefs[1] == f"{server}/{M.DOWNLOADS}/{M.KIT_NAME}"
    assert "jupyter lab" in local_page.locator("article").inner_text()
    assert local_page.outside == []


def test_a_chapters_download_menu_offers_its_notebook_in_both_editions(local_page, server, built_book,  # noqa: F811
                                                                       tmp_path):
    local_page.goto(f"{server}/book/02_lab.html")
    local_page.locator(".dropdown-download-buttons button.dropdown-toggle").click()
    for edition, label in (("notebooks", ".ipynb"), ("student", ".ipynb (student)")):
        link = local_page.locator(f'.btn-download-notebook-button[href$="/{edition}/02_lab.ipynb"]')
        assert link.inner_text().strip() == label
        with local_page.expect_download() as info:
            link.click()
        saved = tmp_path / f"{edition}.ipynb"
        info.value.save_as(saved)
        nb = nbformat.read(saved, as_version=4)
        assert nb == nbformat.read(built_book / M.DOWNLOADS / edition / "02_lab.ipynb", as_version=4)
        if local_page.locator(".dropdown-download-buttons .dropdown-menu").is_hidden():
            local_page.locator(".dropdown-download-buttons button.dropdown-toggle").click()
    assert local_page.outside == []


def test_the_kit_holds_the_wheel_both_editions_the_stimuli_and_a_three_command_readme(kit_download):
    assert kit_download.name == M.KIT_NAME
    with zipfile.ZipFile(kit_download) as z:
        names = set(z.namelist())
        readme = z.read("colorlib-kit/README.md").decode()
    wheels = [n for n in names if n.startswith("colorlib-kit/colorlib-") and n.endswith(".whl")]
    assert len(wheels) == 1
    for edition in ("notebooks", "student"):
        assert {f"colorlib-kit/{edition}/{c}.ipynb" for c in CHAPTERS} <= names
    assert any(n.startswith("colorlib-kit/study-stimuli/") and "/manifest-n" in n for n in names)
    commands = [line.strip() for line in readme.splitlines() if line.startswith("    ")]
    assert commands[:3] == ["python -m venv colorenv",
                            f'colorenv/bin/python -m pip install "{Path(wheels[0]).name}[book]" jupyterlab',
                            "COLORLIB_FAST=1 colorenv/bin/jupyter lab notebooks/"]


def test_the_kit_installs_into_a_fresh_environment_and_a_chapter_runs(kit_download, tmp_path):
    with zipfile.ZipFile(kit_download) as z:
        z.extractall(tmp_path)
    kit = tmp_path / "colorlib-kit"
    wheel = next(kit.glob("colorlib-*.whl"))
    env = tmp_path / "colorenv"  # the README's first command
    venv.create(env, with_pip=False)
    purelib = next(env.glob("lib/python*/site-packages"))
    (purelib / "_reuse_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    python = str(env / "bin" / "python")
    environ = {k: v for k, v in os.environ.items() if k not in ("COLORLIB_DATA", "PYTHONPATH")}
    environ["COLORLIB_FAST"] = "1"
    where = subprocess.run([python, "-c", "import colorlib; print(colorlib.__file__)"], cwd=kit, env=environ,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(purelib)), where  # the wheel's copy, not the checkout
    ran = subprocess.run([python, "-c", RUN_NOTEBOOK, f"student/{CHAPTER}.ipynb", "executed.ipynb"], cwd=kit,
                         env=environ, capture_output=True, text=True, timeout=1200)
    assert ran.returncode == 0, ran.stderr[-3000:]
    nb = nbformat.read(kit / "executed.ipynb", as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the chapter's figures were drawn
