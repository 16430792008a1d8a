"""The images of chapter 7's in-page study, copied into the built HTML.

Chapter 7's box (``book/_js/study.js``) runs the naturalness study in the reader's browser from
the settings its page carries (``data-study``: the stimulus folder's name and the files of its
images); the images themselves must be files of the built book. :func:`publish_study_images`
copies them from the folder chapter 7 rendered, the one the classroom kit packs
(:func:`make_notebooks.stimuli_dirs`), into ``_static/study/<folder>/`` of the HTML, where the
script loads them (as ``<img>``, so a copy opened from disk works too).
"""

from __future__ import annotations

import html as html_text
import json
import re
import shutil
from pathlib import Path

from make_notebooks import stimuli_dirs

PAGE = Path("book") / "07_user_study.html"  # under the HTML folder
TARGET = Path("_static") / "study"  # under the HTML folder; study.js loads from there
_BOX = re.compile(r'<div data-colorlib="study" data-study="([^"]*)"')


def page_settings(page: Path) -> dict:
    """The settings of the study box of a built page (its ``data-study``).

    Raises:
        ValueError: the page has no study box, or more than one.
    """
    found = _BOX.findall(page.read_text(encoding="utf-8"))
    if len(found) != 1:
        raise ValueError(f"{page} has {len(found)} study boxes (data-colorlib=\"study\"), expected one")
    return json.loads(html_text.unescape(found[0]))


def publish_study_images(html: Path) -> Path:
    """Copy the images chapter 7's box shows into ``html/_static/study/<folder>/`` (a copy from
    an earlier build is replaced); returns that folder.

    Raises:
        ValueError: the page names a stimulus set other than the one the build rendered last
            (the one the classroom kit packs), or one of its images is missing.
    """
    settings = page_settings(html / PAGE)
    name = settings["stimuli"]
    source = next((d for d in stimuli_dirs() if d.name == name), None)
    if source is None:
        raise ValueError(f"chapter 7 shows the stimuli {name}, but the rendered set is "
                         f"{[d.name for d in stimuli_dirs()] or 'missing'}: build the book again")
    target = html / TARGET / name
    shutil.rmtree(html / TARGET, ignore_errors=True)
    for files in settings["files"].values():
        for file in files:
            if not (source / file).is_file():
                raise ValueError(f"chapter 7's study image {name}/{file} was not rendered: build the book again")
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / file, target / file)
    return target
