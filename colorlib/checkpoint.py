"""Checkpoints (resumable training state) and model files (weights to ship and load).

A model file is data, never code: nothing here unpickles arbitrary objects.

* ``checkpoint.pt`` in a run folder: model weights, optimiser and LR-schedule state dicts, the
  step and the run's meta (config, classes, figures), all tensors or plain data (numbers,
  strings, lists, dicts), read back with ``torch.load(weights_only=True)``. A file that would
  need more (a pickle that calls a function) is refused. Random-number states are not stored:
  the loop reseeds from ``(seed, step)`` every step, so a resumed run repeats exactly without them.
* ``<name>.safetensors``: weights only (float16 to keep the repository small), with the model
  config, class names and training summary as JSON in the file's metadata. Loading always gives
  a float32 model in eval mode.

Both are written through :func:`colorlib.io.atomic_write` (a temporary file, then a rename),
so a failed write (a full disk) leaves the previous file intact. :func:`load_model` accepts a
shipped model's name (``miniplaces-full``), a ``.safetensors`` or ``.pt`` file, or a run
folder, and refuses, with one line naming the file, weights that are not finite or do not fit
their config (an unknown config key, a missing, unexpected or differently shaped tensor).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import pickletools
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import fields
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .device import resolve_device
from .io import WriteError, atomic_write
from .model import Colorizer, ModelConfig, upgrade_state_dict


class CheckpointError(RuntimeError):
    """A checkpoint or model file that cannot be written or used here (a one-line message)."""


def models_dir() -> Path:
    """Where shipped models live: ``$COLORLIB_MODELS`` when set, else the package's own
    ``colorlib/models`` (package data, found through :mod:`importlib.resources`, so an installed
    wheel finds the models it carries wherever it is used from)."""
    env = os.environ.get("COLORLIB_MODELS")
    return Path(env) if env else Path(str(resources.files("colorlib") / "models"))


WEIGHT_SUFFIXES = (".safetensors", ".safetensors.gz")


def available_models() -> list[str]:
    """Names of the shipped models (``<name>.safetensors`` or ``<name>.safetensors.gz``)."""
    return sorted({p.name.split(".safetensors")[0] for s in WEIGHT_SUFFIXES
                   for p in models_dir().glob(f"*{s}")})


def model_name(path: str | os.PathLike) -> str:
    """``colorlib/models/miniplaces-full.safetensors.gz`` -> ``miniplaces-full``."""
    return Path(path).name.split(".safetensors")[0].split(".pt")[0]


# -- writing ------------------------------------------------------------------------------------
def _write(path: Path, write: Callable[[Path], object]) -> None:
    """:func:`colorlib.io.atomic_write`, its one-line error as a :class:`CheckpointError` with
    what to do about it."""
    try:
        atomic_write(path, write)
    except WriteError as e:
        # io says "(the previous file is intact)"; here it is a sentence of its own, before the hint
        text = str(e).removesuffix(" (the previous file is intact)")
        hint = "Free some space and retry." if "no space left" in text else \
            "Check the folder (space, permissions) and retry."
        kept = "The previous file is intact. " if Path(path).exists() else ""
        raise CheckpointError(f"{text}. {kept}{hint}") from e


_PLAIN = (bool, int, float, str, type(None))


def _check_plain(obj, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` naming the first value that ``torch.load(weights_only=True)`` would
    refuse: anything but tensors, numbers, strings, ``None``, and lists/tuples/dicts of them.
    Types are matched exactly: a subclass (``numpy.float64`` is a float) pickles as its own."""
    if type(obj) in _PLAIN or isinstance(obj, torch.Tensor):
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key of type {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, not plain data")


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, step: int, meta: dict) -> None:
    """Write a run's state to ``path`` atomically: ``{"step", "meta", "model", "optimizer",
    "scheduler"}``, every value a tensor or plain data, so :func:`read_checkpoint` can load it
    with ``weights_only=True``.

    Raises :class:`CheckpointError` (one line) when the state holds anything else (checked
    before writing) or the file cannot be written (the previous checkpoint is kept).
    """
    state = {
        "step": int(step),
        "meta": meta,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
    }
    try:
        _check_plain(state)
    except TypeError as e:
        raise CheckpointError(f"cannot write {path}: {e} (a checkpoint holds only tensors and plain "
                              "data, so that it loads without running code)") from e
    _write(Path(path), lambda p: torch.save(state, p))


# -- reading training state ---------------------------------------------------------------------
# opcodes with which a pickle imports or calls something (what an attack needs)
_CODE_OPS = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}


def _called_in(data: bytes) -> str | None:
    """What the pickles at the start of ``data`` (torch's legacy format is several in a row)
    import or call, read with :mod:`pickletools` (which runs nothing); ``None`` if nothing."""
    f, strings = io.BytesIO(data), []
    try:
        while f.tell() < len(data):
            for op, arg, _ in pickletools.genops(f):
                if isinstance(arg, str):
                    strings.append(arg)
                if op.name == "GLOBAL":
                    return str(arg).replace(" ", ".")
                if op.name == "STACK_GLOBAL":
                    return ".".join(strings[-2:])
                if op.name in _CODE_OPS:
                    return "a function"
    except Exception:  # noqa: BLE001 - the end of the pickles, or no pickle at all
        pass
    return None


def _refusal(path: Path, e: pickle.UnpicklingError) -> str | None:
    """The one-line refusal for a pickle that asks for more than plain data, else ``None``
    (a damaged or foreign file, which torch's unpickler reports the same way)."""
    called = re.search(r"GLOBAL ([\w.]+)", str(e))
    name = called.group(1) if called else _called_in(path.read_bytes())
    if name is None:
        return None
    return (f"{path} is refused: unpickling it would call {name}; a model or checkpoint file may hold "
            "only tensors, numbers, strings, lists and dicts, and is never run as code")


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a ``checkpoint.pt`` as data only (``torch.load(weights_only=True)``, on the CPU).

    Returns its dict: ``step`` (int), ``meta`` (dict), ``model`` (name -> tensor), and for
    training checkpoints ``optimizer`` and ``scheduler`` state dicts. Raises
    :class:`CheckpointError` (one line naming the file) for a file whose unpickling would call
    any function (it is refused, and nothing in it runs), an empty, damaged or foreign file,
    and a file without model weights.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(f"cannot read {path}: the file is empty")
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing them
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        raise CheckpointError(_refusal(path, e) or f"cannot read {path}: it is damaged or not a "
                              "PyTorch checkpoint") from e
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or _first_line(e)}") from e
    except Exception as e:  # noqa: BLE001 - torch reports a foreign or cut file in many ways
        # a KeyError or EOFError from the unpickler says only which byte it stumbled on
        detail = "" if isinstance(e, (KeyError, EOFError)) else f" ({_first_line(e)})"
        raise CheckpointError(f"cannot read {path}: it is damaged or not a PyTorch checkpoint{detail}") from e
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise CheckpointError(f"{path} is not a colorlib checkpoint (it has no model weights)")
    if not isinstance(state.get("meta", {}), dict):
        raise CheckpointError(f"{path} is not a colorlib checkpoint (its meta is not a dict)")
    return state


# Fields of a run's config that must agree for --resume to continue the same run.
_RESUME_KEYS = ("config", "variant", "width", "dropout", "color_space", "alpha", "optimizer", "batch_size", "seed",
                "min_scale", "schedule", "warmup_steps", "lr", "weight_decay", "shards", "train_limit")
# ... and these where they shape the rest of the run: the cosine schedule's length, the
# number of processes (each draws its own shard of every batch); older runs did not store it.
_COSINE_KEYS = ("steps", "epochs")


def resume_conflicts(old: dict, train_now: dict) -> list[str]:
    """The training options (``meta["train"]``) that differ between a checkpoint's run
    (``old``, its meta) and the run asked for now, as ``"name: old != new"``; empty if it can
    continue."""
    before = old.get("train", {})
    keys = _RESUME_KEYS + (_COSINE_KEYS if train_now.get("schedule") == "cosine" else ())
    keys += ("world_size",) if "world_size" in before else ()
    return [f"{k}: {before.get(k)!r} != {train_now.get(k)!r}" for k in keys if before.get(k) != train_now.get(k)]


def _conflict_error(path, diffs: list[str]) -> CheckpointError:
    return CheckpointError(
        f"{path} was written by a run with another configuration ({'; '.join(diffs)}); "
        "resume with the same options, or start a new run in another --out folder"
    )


def check_resume(path: str | os.PathLike, state: dict, train_now: dict) -> None:
    """Raise :class:`CheckpointError` if the run in ``state`` (from :func:`read_checkpoint`)
    was trained with other options than ``train_now``; nothing else is needed to check that
    (the model config follows from them and the data)."""
    diffs = resume_conflicts(state.get("meta", {}), train_now)
    if diffs:
        raise _conflict_error(path, diffs)


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, meta: dict,
                    state: dict | None = None) -> int:
    """Restore a run's state into ``model``/``opt``/``sched``; returns the step to continue at.

    ``meta`` is the resuming run's (``{"model": ..., "train": ...}``); ``state``, if given, the
    already read checkpoint. Raises :class:`CheckpointError` for an unreadable or refused file
    (see :func:`read_checkpoint`) and for a run with another model or training configuration.
    """
    state = read_checkpoint(path) if state is None else state
    old = state.get("meta", {})
    diffs = [f"model.{k}: {old.get('model', {}).get(k)!r} != {v!r}"
             for k, v in meta["model"].items() if old.get("model", {}).get(k) != v]
    diffs += resume_conflicts(old, meta["train"])
    if diffs:
        raise _conflict_error(path, diffs)
    if "optimizer" not in state or "scheduler" not in state:
        raise CheckpointError(f"{path} holds weights but no optimiser state; it cannot be resumed")
    model.load_state_dict(upgrade_state_dict(state["model"]))
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return int(state["step"])


# -- model files --------------------------------------------------------------------------------
def save_model(model: Colorizer, path: str | os.PathLike, meta: dict | None = None, half: bool = True) -> Path:
    """Write weights (float16 unless ``half=False``) and metadata to a ``.safetensors`` file
    (gzipped when the name ends in ``.gz``), atomically.

    ``meta`` must be JSON-serialisable; the model's config is added as ``meta["model"]``.
    Raises :class:`CheckpointError` (one line) when the file cannot be written.
    """
    state = {
        k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    info = {"model": model.cfg.to_dict(), **(meta or {})}
    blob = save_safetensors(state, metadata={"colorlib": json.dumps(info)})
    path = Path(path)
    if path.name.endswith(".gz"):  # gzip saves 8-10% of float16 weights, losslessly
        blob = gzip.compress(blob, 9, mtime=0)
    _write(path, lambda p: p.write_bytes(blob))
    return path


def _read_bytes(path: Path) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if Path(path).name.endswith(".gz") else data


def read_model_meta(path: str | os.PathLike) -> dict:
    """The colorlib metadata of a ``.safetensors`` (or ``.safetensors.gz``) file."""
    return _meta_of(_read_bytes(Path(path)))


def _meta_of(data: bytes) -> dict:
    n = int.from_bytes(data[:8], "little")  # safetensors: header length, then a JSON header
    header = json.loads(data[8 : 8 + n])
    return json.loads(header.get("__metadata__", {}).get("colorlib", "{}"))


def resolve_model_path(spec: str | os.PathLike) -> Path:
    """A shipped model name, a weights/checkpoint file, or a run folder -> a file path.

    Raises :class:`CheckpointError` for a run folder without ``model.safetensors`` or
    ``checkpoint.pt``, and for a name that is none of these (listing the shipped models).
    """
    p = Path(spec)
    if p.is_dir():
        for name in ("model.safetensors", "checkpoint.pt"):
            if (p / name).exists():
                return p / name
        raise CheckpointError(f"{p} holds neither model.safetensors nor checkpoint.pt")
    if p.is_file():
        return p
    for suffix in WEIGHT_SUFFIXES:
        shipped = models_dir() / f"{spec}{suffix}"
        if shipped.exists():
            return shipped
    names = ", ".join(available_models()) or "none shipped yet"
    raise CheckpointError(f"no model {str(spec)!r}: not a file, a run folder, or a shipped model ({names})")


def _read_weights(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(meta, tensors) of a ``.safetensors[.gz]`` file; safetensors holds no code to run."""
    try:
        data = _read_bytes(path)
        if not data:
            raise ValueError("the file is empty")
        meta, state = _meta_of(data), load_safetensors(data)
    except OSError as e:
        raise CheckpointError(f"cannot read weights {path}: {e.strerror or _first_line(e)}") from e
    except Exception as e:  # noqa: BLE001 - a cut, damaged or foreign file, whatever the library says
        raise CheckpointError(f"cannot read weights {path}: it is damaged or not a .safetensors file "
                              f"({_first_line(e)})") from e
    return meta, state


def _config_of(path: Path, meta: dict) -> ModelConfig:
    """The network config a file's meta names; one line for an unknown key or a bad value."""
    raw = meta.get("model") if isinstance(meta, dict) else None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} has no colorlib model config in it")
    known = {f.name for f in fields(ModelConfig)}
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise CheckpointError(f"{path}: its model config has the key {unknown[0]!r}, which this version "
                              f"of colorlib does not know (known: {', '.join(sorted(known))})")
    try:
        return ModelConfig(**raw)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its model config is not valid: {_first_line(e)}") from e


def _check_meta(path: Path, meta: dict, cfg: ModelConfig) -> None:
    """Refuse, with one line naming the file, metadata that inference would trip over later and
    blame on something else: ``saturation`` (when present) must be a finite real number in
    [0, 4] (not a bool, a string or a list); ``classes`` (when present) a list of exactly
    ``num_classes`` strings, or empty (a run trained without labels names none)."""
    if "saturation" in meta:
        s = meta["saturation"]
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 4:  # NaN fails too
            raise CheckpointError(f"{path}: its metadata's saturation is {_short(s)}; a model's saturation "
                                  "must be a number in [0, 4]")
    if "classes" in meta:
        classes = meta["classes"]
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise CheckpointError(f"{path}: its metadata's classes are {_short(classes)}; they must be a "
                                  "list of class names (strings)")
        if classes and len(classes) != cfg.num_classes:
            raise CheckpointError(f"{path}: its metadata names {len(classes)} classes, but its network has "
                                  f"{cfg.num_classes} (num_classes)")


def _short(value) -> str:
    """``value`` for a one-line message: its repr, cut to 60 characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


_REAL = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # weights: any real float type
_COUNTS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)  # batch norm's step counter


def _fitted(path: Path, model: Colorizer, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` as float32, after checking it against ``model``: the same tensor names and
    shapes, a real float type where the network has weights (not complex, bool or integers) and
    whole numbers where it counts, and only finite values. One line naming the file and the
    first mismatch."""
    wanted = model.state_dict()
    for name, t in wanted.items():
        if name not in state:
            raise CheckpointError(f"{path}: tensor {name} is missing ({len(state)} tensors in the file, "
                                  f"{len(wanted)} in the network its config describes)")
        if state[name].shape != t.shape:
            raise CheckpointError(f"{path}: tensor {name} has shape {_shape(state[name])} in the file but "
                                  f"{_shape(t)} in the network its config describes")
    extra = [name for name in state if name not in wanted]
    if extra:
        raise CheckpointError(f"{path}: unexpected tensor {extra[0]} ({len(extra)} tensors in the file "
                              "that the network its config describes does not have)")
    for name, w in wanted.items():
        t = state[name]
        kinds = _REAL if w.is_floating_point() else _COUNTS
        if t.dtype not in kinds:
            raise CheckpointError(f"{path}: tensor {name} is {str(t.dtype).removeprefix('torch.')}, but the "
                                  f"network needs {'real numbers (a float type)' if kinds is _REAL else 'whole numbers'}"
                                  " there; refusing weights that cannot be used as they are")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{path}: tensor {name} holds non-finite values (NaN or infinity); "
                                  "refusing weights that would colorize every photo wrongly")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_model(spec: str | os.PathLike, device: str | torch.device = "cpu") -> Colorizer:
    """Load a model for inference: float32, eval mode, on ``device``, with ``.meta`` (config,
    classes, training figures, card) and ``.source`` (the file read).

    ``spec``: a shipped model's name, a ``.safetensors[.gz]`` file, a ``checkpoint.pt`` or a
    run folder. Files are read as data only (safetensors, or ``torch.load(weights_only=True)``).
    Raises :class:`CheckpointError`, one line naming the file, when it is refused (a pickle that
    would call code), unreadable (empty, cut, foreign), or does not fit this code (an unknown
    config key, a missing, unexpected or differently shaped tensor, a tensor of complex, bool or
    another type the network cannot use), holds NaN/infinite weights, or has metadata that
    cannot be used (:func:`_check_meta`: its ``saturation`` or ``classes``). Raises
    ``ValueError`` (one line naming the valid devices) for a ``device`` that is none.
    """
    device = resolve_device(device)  # a name that is no device: a ValueError before any reading
    path = resolve_model_path(spec)
    if path.name.endswith(WEIGHT_SUFFIXES):
        meta, state = _read_weights(path)
    else:
        ckpt = read_checkpoint(path)
        meta, state = ckpt.get("meta", {}), ckpt["model"]
    cfg = _config_of(path, meta)
    _check_meta(path, meta, cfg)
    with torch.device("meta"):  # shapes first, no memory: a config that names a huge network is
        described = Colorizer(cfg)  # refused by its tensors before anything is allocated
    fitted = _fitted(path, described, upgrade_state_dict(state))
    model = Colorizer(cfg)
    model.load_state_dict(fitted)
    model.meta = meta
    model.source = str(path)
    return model.to(device).eval()


def finish_run(run_dir: str | os.PathLike) -> Path:
    """Write a finished run's ``model.safetensors`` (float32, with the run's metadata) from its
    ``checkpoint.pt``; returns its path. What ``colorlib train`` and the book do after
    :func:`colorlib.train.train`. Raises :class:`CheckpointError` (one line) for a missing,
    refused or unreadable checkpoint, and when the file cannot be written."""
    run_dir = Path(run_dir)
    model = load_model(run_dir / "checkpoint.pt")
    meta = {k: v for k, v in model.meta.items() if k != "model"}
    return save_model(model, run_dir / "model.safetensors", meta, half=False)
