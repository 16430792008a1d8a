"""The network outside PyTorch: ONNX graphs as an explicit artefact (a folder you can open).

* :mod:`colorlib.onnx.export`: ``export_onnx(model, DIR)`` writes the graphs and their
  manifest (``colorlib export-onnx --model NAME -o DIR`` is the command);
* :class:`OnnxColorizer` (:mod:`colorlib.onnx.runtime`) runs such a folder with ONNX Runtime and
  is accepted by :func:`colorlib.colorize` and :func:`colorlib.classify` where a
  :class:`colorlib.Colorizer` is (``colorlib colorize PHOTO --onnx DIR``).

Nothing in the core package (lab, colorspace, model, data, train, infer, metrics, evaluate,
checkpoint) imports this wing: PyTorch is the one default path. Needs the ``onnx`` extra
(``pip install "colorlib[onnx]"``); without it, importing raises an ``ImportError`` whose
message is one line naming the extra.
"""

from .runtime import OnnxColorizer

__all__ = ["OnnxColorizer"]
