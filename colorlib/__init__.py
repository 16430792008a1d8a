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
study, ``colorlib.onnx`` for ONNX graphs); ``import colorlib`` loads neither the command line nor any
notebook or plotting package. ``colorlib.train`` is the function :func:`colorlib.train.train`; its
module is reached with ``from colorlib.train import ...`` (or ``importlib.import_module``).
"""



def _stop_the_command_on_ctrl_c() -> None:
    """Ctrl-C while the imports below load torch (seconds): when this process is the ``colorlib``
    command (its console script, or ``python -m colorlib``), one line and exit status 130, as
    Ctrl-C anywhere else in it (the command's own code cannot catch it: the console script
    imports this package first). In any other program the ``KeyboardInterrupt`` goes on."""
    import os
    import sys

    argv = getattr(sys, "orig_argv", sys.argv)
    by_m = "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "colorlib"
    if not (by_m or os.path.basename(sys.argv[0]).removesuffix(".exe") == "colorlib"):
        return
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    command = f" {command}" if command.replace("-", "").isalpha() and command.islower() else ""
    print(f"colorlib{command}: stopped by Ctrl-C while starting; nothing was done", file=sys.stderr)
    sys.exit(130)


try:
    from .checkpoint import load_model
    from .infer import classify, colorize
    from .model import Colorizer, ModelConfig, fold_batchnorm
    from .train import TrainConfig, train
except KeyboardInterrupt:
    _stop_the_command_on_ctrl_c()
    raise

__version__ = "0.2.0"

__all__ = ["Colorizer", "ModelConfig", "TrainConfig", "classify", "colorize", "fold_batchnorm",
           "load_model", "train"]
