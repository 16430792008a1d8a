"""colorlib: "Let there be Color!" (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2016) in PyTorch.

The public API::

    import colorlib
    model = colorlib.load_model("miniplaces-full")             # a shipped model, a file or a run folder
    colorlib.colorize(model, "photo.jpg").save("photo-color.png")
    colorlib.classify(model, "photo.jpg")                      # [(scene class, probability), ...]
    net = colorlib.Colorizer(colorlib.ModelConfig.paper())     # Figure 2 / Table 1, untrained
    colorlib.train(colorlib.TrainConfig(config="tiny", steps=80), "runs/mine")

Everything else lives in the submodules (``colorlib.lab`` for colour conversions,
``colorlib.evaluate`` and ``colorlib.metrics`` for scoring, ``colorlib.study`` for the user
study, ``colorlib.export`` for ONNX); ``import colorlib`` loads neither the command line nor any
notebook or plotting package. ``colorlib.train`` is the function :func:`colorlib.train.train`; its
module is reached with ``from colorlib.train import ...`` (or ``importlib.import_module``).
"""

from .checkpoint import load_model
from .infer import classify, colorize
from .model import Colorizer, ModelConfig, fold_batchnorm
from .train import TrainConfig, train

__version__ = "0.2.0"

__all__ = ["Colorizer", "ModelConfig", "TrainConfig", "classify", "colorize", "fold_batchnorm",
           "load_model", "train"]
