"""What the book's chapters share: the setup cell, where photos come from, images, figures,
training runs and widgets. Nothing here re-implements the method; the chapters call
:mod:`colorlib` for that.

Every chapter opens with the same cell::

    from colorlib import book

    env = book.setup(seed=0)
    env

and then calls ``book.<name>`` for everything below, which the modules hold by concern:

* :mod:`~colorlib.book.env`: :func:`setup`, :class:`BookEnv` (seed, device, fast mode, paths);
* :mod:`~colorlib.book.photos`: which photos a page shows (MiniPlaces, else the photos shipped
  in installed packages, :mod:`colorlib.sample_photos`; the historical photographs and their
  credits);
* :mod:`~colorlib.book.images`: tensors and arrays to PIL, the gray input, resizing;
* :mod:`~colorlib.book.plots`: image grids, smoothing, the live loss plot;
* :mod:`~colorlib.book.runs`: shipped models, training logs, load-or-train;
* :mod:`~colorlib.book.widgets`: widgets that also work in the static HTML.

``import colorlib`` does not load this package: it needs matplotlib, IPython and ipywidgets,
which only the book installs.
"""

from .env import BookEnv, fast_mode, hardware, setup, short_path
from .images import fit, gray, to_pil
from .photos import (
    Photos,
    credits_from_table,
    historical_credits,
    historical_photos,
    package_photo_set,
    source_note,
    square,
    training_data,
    validation_photos,
)
from .plots import LivePlot, grid, smooth, text_pt
from .results import ranking_sentence, read_results, results_tables
from .runs import load_or_train, model, read_log, shipped_log
from .widgets import caption, encode, figure_widget, image_widget, linked_stack

__all__ = [
    "BookEnv", "LivePlot", "Photos", "caption", "credits_from_table", "encode", "fast_mode",
    "figure_widget", "fit", "gray", "grid", "hardware", "historical_credits", "historical_photos", "image_widget",
    "linked_stack", "load_or_train", "model", "package_photo_set", "ranking_sentence", "read_log",
    "read_results", "results_tables", "setup",
    "shipped_log", "short_path", "smooth", "source_note", "square", "text_pt", "to_pil", "training_data",
    "validation_photos",
]
