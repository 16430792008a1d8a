"""Checkpoints (resumable training state) and model files (weights to ship and load).

* ``checkpoint.pt`` in a run folder: model, optimiser, schedule, step and the run's config.
  Written to a temporary file and renamed, so a failed write (a full disk) leaves the
  previous checkpoint intact.
* ``<name>.safetensors``: weights only (float16 to keep the repository small), with the
  model config, class names and training summary in the file's metadata. Loading always
  gives a float32 model in eval mode.

:func:`load_model` accepts a shipped model's name (``miniplaces-full``), a ``.safetensors``
or ``.pt`` file, or a run folder.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
from pathlib import Path

import torch

from .model import Colorizer, ColorizerConfig


class CheckpointError(RuntimeError):
    """A checkpoint or model file that cannot be written or used here."""


def models_dir() -> Path:
    """Where shipped models live: ``$COLORLIB_MODELS`` or ``data/models`` in the repo."""
    env = os.environ.get("COLORLIB_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data" / "models"


WEIGHT_SUFFIXES = (".safetensors", ".safetensors.gz")


def available_models() -> list[str]:
    """Names of the shipped models (``<name>.safetensors`` or ``<name>.safetensors.gz``)."""
    return sorted({p.name.split(".safetensors")[0] for s in WEIGHT_SUFFIXES
                   for p in models_dir().glob(f"*{s}")})


def model_name(path: str | os.PathLike) -> str:
    """``data/models/miniplaces-full.safetensors.gz`` -> ``miniplaces-full``."""
    return Path(path).name.split(".safetensors")[0].split(".pt")[0]


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the OS allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(path: Path, write) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before it takes the old file's place (power loss)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except Exception as e:  # noqa: BLE001 - torch.save reports a full disk as a RuntimeError
        tmp.unlink(missing_ok=True)
        full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or (
            not isinstance(e, OSError) and "unexpected pos" in str(e))  # torch's zip writer, disk full
        hint = "Free some space and retry." if full else "Check the folder (space, permissions) and retry."
        raise CheckpointError(
            f"could not write {path}: {getattr(e, 'strerror', None) or e}. "
            f"{'The previous file is intact. ' if path.exists() else ''}{hint}"
        ) from e


def save_checkpoint(path, model, opt, sched, step: int, meta: dict) -> None:
    state = {
        "step": step,
        "meta": meta,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
    }
    _atomic(Path(path), lambda p: torch.save(state, p))


# Fields of a run's config that must agree for --resume to continue the same run.
_RESUME_KEYS = ("config", "variant", "width", "dropout", "alpha", "optimizer", "batch_size", "seed",
                "min_scale", "schedule", "warmup_steps", "lr", "weight_decay", "shards", "train_limit")
# ... and these where they shape the rest of the run: the cosine schedule's length, the
# number of processes (each draws its own shard of every batch); older runs did not store it.
_COSINE_KEYS = ("steps", "epochs")


def load_checkpoint(path, model, opt, sched, meta: dict) -> int:
    """Restore a run's state into ``model``/``opt``/``sched``; returns the step to continue at."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    old = state.get("meta", {})
    diffs = [f"model.{k}: {old.get('model', {}).get(k)!r} != {v!r}"
             for k, v in meta["model"].items() if old.get("model", {}).get(k) != v]
    before, now = old.get("train", {}), meta["train"]
    keys = _RESUME_KEYS + (_COSINE_KEYS if now.get("schedule") == "cosine" else ())
    keys += ("world_size",) if "world_size" in before else ()
    diffs += [f"{k}: {before.get(k)!r} != {now.get(k)!r}" for k in keys if before.get(k) != now.get(k)]
    if diffs:
        raise CheckpointError(
            f"{path} was written by a run with another configuration ({'; '.join(diffs)}); "
            "resume with the same options, or start a new run in another --out folder"
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return int(state["step"])


def save_model(model: Colorizer, path, meta: dict | None = None, half: bool = True) -> Path:
    """Write weights (float16 unless ``half=False``) and metadata to a ``.safetensors`` file
    (gzipped when the name ends in ``.gz``)."""
    from safetensors.torch import save_file

    state = {
        k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    info = {"model": model.cfg.to_dict(), **(meta or {})}
    path = Path(path)
    if path.name.endswith(".gz"):  # gzip saves 8-10% of float16 weights, losslessly
        from safetensors.torch import save

        blob = gzip.compress(save(state, metadata={"colorlib": json.dumps(info)}), 9, mtime=0)
        _atomic(path, lambda p: Path(p).write_bytes(blob))
    else:
        _atomic(path, lambda p: save_file(state, str(p), metadata={"colorlib": json.dumps(info)}))
    return path


def _read_bytes(path: Path) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if Path(path).name.endswith(".gz") else data


def read_model_meta(path) -> dict:
    """The colorlib metadata of a ``.safetensors`` (or ``.safetensors.gz``) file."""
    return _meta_of(_read_bytes(Path(path)))


def _meta_of(data: bytes) -> dict:
    n = int.from_bytes(data[:8], "little")  # safetensors: header length, then a JSON header
    header = json.loads(data[8 : 8 + n])
    return json.loads(header.get("__metadata__", {}).get("colorlib", "{}"))


def resolve_model_path(spec: str | os.PathLike) -> Path:
    """A shipped model name, a weights/checkpoint file, or a run folder -> a file path."""
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


def load_model(spec: str | os.PathLike, device: str | torch.device = "cpu") -> Colorizer:
    """Load a model for inference: float32, eval mode, with ``.meta`` (config, classes, card)."""
    path = resolve_model_path(spec)
    if path.name.endswith(WEIGHT_SUFFIXES):
        from safetensors.torch import load

        try:
            data = _read_bytes(path)
            meta, state = _meta_of(data), load(data)
        except Exception as e:  # noqa: BLE001 - a damaged file of any kind
            raise CheckpointError(f"cannot read weights {path}: {e}") from e
    else:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"cannot read {path}: {e}") from e
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            raise CheckpointError(f"{path} is not a colorlib checkpoint")
        meta, state = ckpt.get("meta", {}), ckpt["model"]
    if "model" not in meta:
        raise CheckpointError(f"{path} has no colorlib model config in it")
    model = Colorizer(ColorizerConfig(**meta["model"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match its own config: {e}") from e
    model.meta = meta
    model.source = str(path)
    return model.to(device).eval()
