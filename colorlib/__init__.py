"""colorlib: "Let there be Color!" (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2016) in PyTorch."""

__version__ = "0.1.0"
