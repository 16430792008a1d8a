"""The graph folders the book builds (scripts/build_book.py: _static/onnx/<name>/) are the current
network: each, run by ONNX Runtime, colorizes fixed photos as PyTorch does with the same model
(issue 22: a change to the network that is not re-exported fails here)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from colorlib.checkpoint import load_model  # noqa: E402
from colorlib.infer import classify, colorize  # noqa: E402
from colorlib.onnx import OnnxColorizer  # noqa: E402

from .book_helpers import ROOT  # noqa: E402

pytestmark = pytest.mark.book


def test_every_built_graph_folder_is_the_current_network(built_book, photos):
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from build_book import BROWSER_MODELS

    folders = sorted(p.name for p in (built_book / "_static" / "onnx").iterdir())
    assert folders == sorted(BROWSER_MODELS)
    for name in BROWSER_MODELS:
        graphs, model = OnnxColorizer(built_book / "_static" / "onnx" / name), load_model(name)
        assert graphs.cfg == model.cfg and graphs.meta["name"] == name
        for photo in ("chelsea", "camera"):
            image = photos[photo][::4, ::4]
            got = np.asarray(colorize(graphs, image)).astype(int)
            want = np.asarray(colorize(model, image)).astype(int)
            # float16-stored weights move normalised a*b* by at most 2.5e-3 (test_onnx.py), i.e.
            # under one a*b* unit: at most 2 levels of sRGB (measured 1)
            assert np.abs(got - want).max() <= 2, (name, photo)
        top = [c for c, _ in classify(graphs, photos["chelsea"], top=1)]
        assert top == [c for c, _ in classify(model, photos["chelsea"], top=1)] or name == "sweep-alpha-0", name
