"""Training (paper sections 3.3-3.4): the joint loss of Eq. 6, ADADELTA, batch norm.

The loop is kept visible, as in nanoGPT: get a batch, step, log, evaluate, checkpoint.
Per step, on the training device: index a uint8 batch, random crop + flip (:func:`augment`),
sRGB -> L*a*b* (:func:`lab_batch`), forward, Eq. 6, backward, update. Nothing per pixel
runs in Python and nothing waits for the GPU except every ``log_every`` steps.

``train(TrainConfig(...), out_dir)`` is the library entry point; ``colorlib train`` the CLI.
Under ``torchrun --nproc_per_node N`` the same code trains with DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data as D
from .checkpoint import CheckpointError, check_resume, load_checkpoint, read_checkpoint, save_checkpoint
from .device import resolve_device
from .io import WriteError, check_writable, write_json, write_text
from .model import Colorizer, ColorizerConfig, ColorizerOutput

LOG_FIELDS = ["step", "epoch", "loss", "colour_loss", "class_loss", "lr", "images_per_s"]
VAL_FIELDS = ["step", "epoch", "val_colour_loss", "val_top1", "val_top5", "images"]


@dataclass
class TrainConfig:
    """One training run. ``config`` picks the model preset; the rest overrides it."""

    config: str = "miniplaces"  # model preset: paper | miniplaces | tiny
    variant: str = "full"  # full | baseline (the paper's baseline also sets alpha = 0)
    width: float | None = None  # channel multiplier; None keeps the preset's
    dropout: float | None = None  # dropout before the global FC layers; None keeps the preset's
    alpha: float = 1 / 300  # weight of the classification loss in Eq. 6
    optimizer: str = "adadelta"  # adadelta (paper) | adamw
    lr: float | None = None  # None: 1.0 for ADADELTA, 1e-3 for AdamW
    weight_decay: float = 0.0  # decoupled (AdamW) weight decay on conv/FC weights
    schedule: str = "constant"  # constant | cosine (linear warm-up, then cosine to zero)
    warmup_steps: int = 0
    batch_size: int = 128  # per process (paper: 128)
    steps: int | None = None  # total optimisation steps; or give epochs
    epochs: float | None = None
    min_scale: float = 1.0  # 1.0: the paper's fixed 224/256 crop; < 1: random-resized crop
    seed: int = 0
    data: str | None = None  # data root; None: $COLORLIB_DATA or ../shared/data
    shards: int | None = None  # read only the first N MiniPlaces training shards
    train_limit: int | None = None  # use only the first N training images
    val_limit: int | None = 2000  # validation images (MiniPlaces val has 2,000)
    checkpoint_every: int = 500  # steps
    val_every: int = 1  # epochs between validation passes (and always at the end)
    log_every: int = 10  # steps between host syncs (each step still gets its own log row)
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the model (CUDA)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (checked when the config is made)
    workers: int | None = None  # decode workers; None: cores - 1 (at most 8)

    def __post_init__(self) -> None:
        """Check every option now, before a run creates anything: ``ValueError``, one line."""
        for name in ("checkpoint_every", "val_every", "log_every", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 1 or self.epochs is not None and self.epochs <= 0:
            raise ValueError("steps and epochs must be positive")
        for name in ("alpha", "lr", "weight_decay", "min_scale", "epochs"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name.replace('_', '-')} must be a finite number, got {v}")
        for name, allowed in (("optimizer", ("adadelta", "adamw")), ("schedule", ("constant", "cosine")),
                              ("precision", ("auto", "bf16", "fp32"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be {' or '.join(allowed)}, got {getattr(self, name)!r}")
        self.model_config()  # the preset, variant, width and dropout
        try:
            resolve_device(self.device)
        except ValueError as e:
            raise ValueError(f"--device: {e}") from None

    def model_config(self, num_classes: int | None = None) -> ColorizerConfig:
        over = {k: v for k, v in (("width", self.width), ("dropout", self.dropout)) if v is not None}
        if num_classes:
            over["num_classes"] = num_classes
        return ColorizerConfig.preset(self.config, variant=self.variant, **over)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class StepInfo:
    """What a callback sees after every logged step (the book plots from this)."""

    step: int
    epoch: float
    loss: float
    colour_loss: float
    class_loss: float
    lr: float
    images_per_s: float
    val: dict | None = None  # filled after a validation pass


@dataclass
class RunResult:
    """What :func:`train` did: steps reached (of ``total_steps``), images seen, seconds, logs."""

    out: Path
    steps: int
    images_seen: int
    wall_s: float
    log: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    removed_gray: int = 0
    removed_corrupt: int = 0
    train_images: int = 0
    interrupted: bool = False
    total_steps: int = 0  # the run's length in steps
    already_finished: bool = False  # --resume of a finished run: nothing trained, no file touched


def joint_loss(
    out: ColorizerOutput, ab_target: torch.Tensor, labels: torch.Tensor | None, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 6: MSE of normalised a*b* + alpha * cross-entropy over scene classes.

    The MSE is the mean over pixels and both channels, which puts the two terms at similar
    magnitudes for alpha = 1/300, as the paper intends (section 4). With alpha = 0, no
    labels, or the baseline, the class term is not computed, so the classification head
    receives no gradient at all. Returns (loss, colour loss, class loss).
    """
    colour = F.mse_loss(out.ab.float(), ab_target.float())
    if alpha > 0 and out.logits is not None and labels is not None:
        cls = F.cross_entropy(out.logits.float(), labels, ignore_index=-1)
        return colour + alpha * cls, colour, cls.detach()
    return colour, colour, torch.zeros((), device=colour.device)


def make_train_step(model_fn, opt: torch.optim.Optimizer, autocast, alpha: float):
    """One optimisation step on a batch: forward, Eq. 6, backward, update.

    Returns the detached (loss, colour loss, class loss) without waiting for the device.
    """

    def step(L: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor | None):
        with autocast:
            out = model_fn(L)
        loss, colour, cls = joint_loss(out, ab, labels if alpha > 0 else None, alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach(), colour.detach(), cls

    return step


# -- set-up -------------------------------------------------------------------------------
def _dist() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def autocast_for(device: torch.device, precision: str):
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    return contextlib.nullcontext()


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [
        {"params": decay, "weight_decay": tc.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if tc.optimizer == "adadelta":
        return torch.optim.Adadelta(groups, lr=1.0 if tc.lr is None else tc.lr)
    if tc.optimizer == "adamw":
        fused = {"fused": True} if next(model.parameters()).is_cuda else {}
        return torch.optim.AdamW(groups, lr=1e-3 if tc.lr is None else tc.lr, **fused)
    raise ValueError(f"optimizer must be adadelta or adamw, got {tc.optimizer!r}")


def lr_factor(step: int, total: int, tc: TrainConfig) -> float:
    if step < tc.warmup_steps:
        return (step + 1) / tc.warmup_steps
    if tc.schedule == "constant":
        return 1.0
    if tc.schedule == "cosine":
        t = (step - tc.warmup_steps) / max(1, total - tc.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    raise ValueError(f"schedule must be constant or cosine, got {tc.schedule!r}")


class BatchSource:
    """Training batches from images decoded once and kept on the training device.

    The order is a permutation per epoch drawn from ``(seed, epoch)`` and the crops from
    ``(seed, step)``, so any step's batch can be rebuilt exactly: that makes ``--resume``
    continue bit for bit. Under DDP each rank takes its own slice of every global batch.
    ``prepare`` turns uint8 pixels and crop boxes into (L, ab): :func:`data.prepare_batch`,
    or a compiled version of it.
    """

    def __init__(self, images: D.DecodedImages, batch_size: int, seed: int, rank=0, world=1,
                 prepare=D.prepare_batch):
        self.images, self.batch_size, self.seed = images, batch_size, seed
        self.rank, self.world, self.prepare = rank, world, prepare
        self.channels_last = images.pixels.is_cuda
        self.steps_per_epoch = len(images) // (batch_size * world)
        if self.steps_per_epoch == 0:
            raise D.DataError(
                f"{len(images)} training images cannot fill one batch of {batch_size * world}; "
                "lower --batch-size or use more images"
            )
        self._perm_epoch, self._perm = -1, None

    def indices(self, step: int) -> torch.Tensor:
        epoch, within = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.images), generator=g)
            self._perm_epoch = epoch
        B = self.batch_size * self.world
        batch = self._perm[within * B : (within + 1) * B]
        return batch[self.rank :: self.world]

    def batch(self, step: int, out_size: int, min_scale: float):
        """(L*/100, normalised a*b* at half size, labels) for ``step``, on the images' device."""
        device = self.images.pixels.device
        idx = self.indices(step).to(device, non_blocking=True)
        g = torch.Generator().manual_seed(self.seed * 7_000_003 + step)
        boxes = D.crop_boxes(len(idx), g, min_scale).to(device, non_blocking=True)
        L, ab = self.prepare(self.images.pixels.index_select(0, idx), boxes, out_size, self.channels_last)
        return L, ab, self.images.labels.index_select(0, idx)


@torch.no_grad()
def validate(model: Colorizer, images: D.DecodedImages, autocast, batch_size: int = 256) -> dict:
    """Colour loss and top-1/top-5 scene accuracy on grayscale input (centre, no crop)."""
    was_training = model.training
    model.eval()
    s = model.cfg.global_size
    total, colour, top1, top5, labelled = 0, 0.0, 0, 0, 0
    for i in range(0, len(images), batch_size):
        x = images.pixels[i : i + batch_size].float() / 255.0
        if x.shape[-1] != s:
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        L, ab = D.lab_batch(x)
        with autocast:
            out = model(L)
        colour += F.mse_loss(out.ab.float(), ab, reduction="sum").item() / ab[0].numel()
        total += len(x)
        y = images.labels[i : i + batch_size]
        if out.logits is not None and (y >= 0).any():
            k = min(5, out.logits.shape[1])
            top = out.logits.float().topk(k, dim=1).indices
            hit = top == y[:, None]
            top1 += int(hit[:, 0].sum())
            top5 += int(hit.any(1).sum())
            labelled += int((y >= 0).sum())
    model.train(was_training)
    return {
        "val_colour_loss": colour / max(1, total),
        "val_top1": top1 / labelled if labelled else float("nan"),
        "val_top5": top5 / labelled if labelled else float("nan"),
        "images": total,
    }


def _prepare_out(out: Path, resume: bool, rank: int) -> dict | None:
    """Check the run folder before any work; returns the checkpoint's state with ``resume``.

    Creates nothing: the folder appears with the run's first file (config.json), so a run that
    fails while loading its data leaves no empty folder behind.
    """
    ckpt = out / "checkpoint.pt"
    if resume:
        if not ckpt.exists():
            raise CheckpointError(f"--resume: {ckpt} does not exist; nothing to resume")
        return read_checkpoint(ckpt)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a run folder")
    # rank 0 alone: the others may start after it has begun writing to the folder
    if rank == 0 and out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out "
            "(a run never overwrites another run's folder)"
        )
    if rank == 0:
        check_writable(out / "config.json")
    return None


def _total_from(state: dict, tc: TrainConfig) -> int | None:
    """The run's length in steps as ``tc`` asks for it, if known without the data: ``--steps``,
    or ``--epochs`` times the steps per epoch the checkpoint recorded (older runs did not)."""
    if tc.steps:
        return tc.steps
    per_epoch = state.get("meta", {}).get("run", {}).get("steps_per_epoch")
    return max(1, round((tc.epochs or 1) * per_epoch)) if per_epoch else None


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows after ``step`` so a resumed run's log equals an uninterrupted one."""
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.DictReader(f))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=rows[0].keys() if rows else LOG_FIELDS)
    w.writeheader()
    w.writerows(r for r in rows if int(r["step"]) < step)
    write_text(path, buf.getvalue())


def _append_rows(path: Path, names: list[str], rows: list[dict]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=names)
        if new:
            w.writeheader()
        w.writerows(rows)


def _finished(out: Path, state: dict, tc: TrainConfig, world: int, total: int) -> RunResult:
    """What ``train(..., resume=True)`` returns for a run already at (or past) its last step."""
    step = int(state["step"])
    run = state.get("meta", {}).get("run", {})
    return RunResult(out, step, step * tc.batch_size * world, 0.0, train_images=run.get("train_images", 0),
                     total_steps=total, already_finished=True)


def _device_name(device: torch.device) -> str:
    """``cuda:0`` -> the GPU's name (what a model card says it was trained on); else the type."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def load_training_data(tc: TrainConfig, size: int, progress: bool = True):
    """Decoded training and validation images (validation: MiniPlaces val, if present)."""
    train = D.load_images(tc.data, "train", tc.shards, tc.train_limit)
    decoded = D.decode_all(train, size, workers=tc.workers, progress=progress)
    val = None
    if tc.val_limit:
        try:
            val_set = D.load_images(tc.data, "val", limit=tc.val_limit)
        except D.DataError:
            val_set = None
        # a folder, a tar or a pack has no split of its own: "val" would be the training photos
        if val_set is not None and set(val_set.names).isdisjoint(train.names):
            val = D.decode_all(val_set, size, filter_gray=True, workers=tc.workers, progress=progress)
        elif progress:
            print("note: no separate validation photos in this data; validation is off")
    return decoded, val


def train(
    tc: TrainConfig,
    out: str | os.PathLike,
    resume: bool = False,
    callbacks: tuple[Callable[[StepInfo], None], ...] = (),
    progress: bool = True,
    data: tuple[D.DecodedImages, D.DecodedImages | None] | None = None,
) -> RunResult:
    """Train a colorizer into ``out`` (a new folder, or an existing one with ``resume``).

    ``data``: already decoded (train, val) images, to skip loading (the book and tests).
    ``callbacks`` are called with a :class:`StepInfo` for each logged step.

    The folder is checked before any data is read and appears with its first file, so a run
    that fails before training leaves none. ``resume`` continues from ``checkpoint.pt`` exactly
    (read as data only); a run already at its last step returns at once with
    ``already_finished`` set and no file touched. Raises ``FileExistsError`` (``out`` holds
    another run), :class:`~colorlib.checkpoint.CheckpointError` (nothing to resume, a refused
    or unreadable checkpoint, another configuration), :class:`~colorlib.data.DataError`,
    :class:`~colorlib.io.WriteError` and ``FloatingPointError`` (the loss stopped being finite;
    the last checkpoint is from before it), each with a one-line message.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    rank, world = _dist()
    device = resolve_device(tc.device)  # before anything is read or created
    state = _prepare_out(out, resume, rank)
    train_meta = asdict(tc) | {"world_size": world}
    if state is not None:
        check_resume(out / "checkpoint.pt", state, train_meta)  # before loading any data
        total = _total_from(state, tc)
        if total is not None and int(state["step"]) >= total:
            return _finished(out, state, tc, world, total)
    owns_group = False
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":  # this process's GPU first, so NCCL binds to it
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            if device.type == "cuda":
                dist.init_process_group("nccl", device_id=device)
            else:
                dist.init_process_group("gloo")
            owns_group = True
    if device.type == "cpu":
        # ADADELTA's first updates are tiny; as denormal floats they run many times slower on CPU
        torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(tc.seed)

    preset = tc.model_config()
    train_imgs, val_imgs = data or load_training_data(tc, preset.global_size, progress and rank == 0)
    alpha = 0.0 if tc.variant == "baseline" else tc.alpha
    if alpha > 0 and not train_imgs.labelled:
        if rank == 0:
            print("note: these images have no labels, so the classification loss is off (alpha = 0)")
        alpha = 0.0
    cfg = tc.model_config(len(train_imgs.classes) or None)
    model = Colorizer(cfg).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, tc)
    prepare = torch.compile(D.prepare_batch) if tc.compile else D.prepare_batch
    source = BatchSource(train_imgs.to(device), tc.batch_size, tc.seed, rank, world, prepare)
    if val_imgs is not None:
        val_imgs = val_imgs.to(device)
    total = tc.steps or max(1, round((tc.epochs or 1) * source.steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, tc))

    start = 0
    # plain data only (what config.json and a weights_only checkpoint can hold); "run" grows the
    # step and wall time at every checkpoint, for `colorlib info`
    meta = json.loads(json.dumps({
        "train": train_meta, "model": cfg.to_dict(), "classes": train_imgs.classes,
        "run": {"train_images": len(train_imgs), "steps_per_epoch": source.steps_per_epoch,
                "total_steps": total, "device": _device_name(device)},
    }))
    wall_before = 0.0
    if state is not None:
        if int(state["step"]) >= total:  # an older run that did not record its steps per epoch
            if owns_group:
                import torch.distributed as dist

                dist.destroy_process_group()
            return _finished(out, state, tc, world, total)
        start = load_checkpoint(out / "checkpoint.pt", model, opt, sched, meta, state=state)
        wall_before = float(state["meta"].get("run", {}).get("wall_s", 0.0))
        del state
        if rank == 0:
            _truncate_log(out / "log.csv", start)
            _truncate_log(out / "val.csv", start + 1)
    elif rank == 0:
        fresh = not out.exists()
        try:
            write_json(out / "config.json", meta)
        except WriteError:
            if fresh and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # the folder made for this file: a failed run leaves nothing
            raise

    step_model = model
    if world > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            # without the class loss the classification head takes no part in the loss
            find_unused_parameters=alpha == 0 and model.classifier is not None,
        )
    if tc.compile:
        step_model = torch.compile(step_model)
    autocast = autocast_for(device, tc.precision)
    train_step = make_train_step(step_model, opt, autocast, alpha)

    result = RunResult(out, start, start * tc.batch_size * world, 0.0,
                       removed_gray=train_imgs.removed_gray, removed_corrupt=train_imgs.removed_corrupt,
                       train_images=len(train_imgs), total_steps=total)
    pending: list[tuple[int, torch.Tensor]] = []
    bar = tqdm(total=total, initial=start, desc=f"train {out.name}", unit="step",
               disable=not progress or rank != 0, dynamic_ncols=True)
    t_window, n_window = time.perf_counter(), 0
    t0 = time.perf_counter()

    def save(step: int) -> None:
        flush(step)  # the log on disk reaches the checkpoint's step, and no NaN weights are saved
        if rank == 0:
            meta["run"].update(step=step, wall_s=round(wall_before + time.perf_counter() - t0, 3))
            save_checkpoint(out / "checkpoint.pt", model, opt, sched, step, meta)

    def flush(step: int) -> None:
        nonlocal t_window, n_window
        if not pending:
            return
        values = torch.stack([v for _, v in pending]).tolist()  # the one host sync per window
        bad = next((s for (s, _), v in zip(pending, values) if not math.isfinite(v[0])), None)
        now = time.perf_counter()
        ips = n_window * tc.batch_size * world / max(now - t_window, 1e-9)
        rows = []
        for (s, _), (loss, colour, cls, lr) in zip(pending, values):
            rows.append(dict(step=s, epoch=round(s / source.steps_per_epoch, 4), loss=loss,
                             colour_loss=colour, class_loss=cls, lr=lr, images_per_s=round(ips, 1)))
        pending.clear()
        t_window, n_window = now, 0
        if rank == 0:
            _append_rows(out / "log.csv", LOG_FIELDS, rows)
            result.log.extend(rows)
            bar.set_postfix(loss=f"{rows[-1]['loss']:.4f}", img_s=f"{ips:.0f}")
            for r in rows:
                for cb in callbacks:
                    cb(StepInfo(**{k: r[k] for k in LOG_FIELDS}))
        if bad is not None:
            raise FloatingPointError(f"loss is not finite at step {bad}; stopping (the last checkpoint "
                                     "is from before it)")

    def val_due(step: int) -> bool:
        epoch_end = step % source.steps_per_epoch == 0
        return (epoch_end and (step // source.steps_per_epoch) % tc.val_every == 0) or step == total

    def stop_requested(step: int) -> bool:
        """A signal seen by any process; under DDP all processes agree at the same steps."""
        if world == 1:
            return stop["signal"] is not None
        if step % tc.log_every and step != total:
            return False
        import torch.distributed as dist

        flag = torch.tensor([float(stop["signal"] is not None)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def run_validation(step: int) -> None:
        if val_imgs is None or rank != 0:
            return
        v = {"step": step, "epoch": round(step / source.steps_per_epoch, 4),
             **validate(model, val_imgs, autocast)}
        _append_rows(out / "val.csv", VAL_FIELDS, [v])
        result.val.append(v)
        bar.write(f"step {step}: val colour loss {v['val_colour_loss']:.5f}  "
                  f"top-1 {v['val_top1']:.3f}  top-5 {v['val_top5']:.3f}")
        for cb in callbacks:
            cb(StepInfo(step, v["epoch"], math.nan, math.nan, math.nan, math.nan, math.nan, val=v))

    step = start
    model.train()
    # Ctrl-C (and SIGTERM) finish the current step, then checkpoint and stop.
    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum

    old_handlers = {}
    if hasattr(signal, "SIGTERM"):  # every process: torchrun passes Ctrl-C on to each of them
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old_handlers[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not the main thread (e.g. inside some notebook runners)
                pass
    try:
        while step < total:
            L, ab, labels = source.batch(step, cfg.global_size, tc.min_scale)
            # dropout: reproducible on resume, and other masks on each DDP process
            torch.manual_seed((tc.seed * 1_000_033 + step) * world + rank)
            loss, colour, cls = train_step(L, ab, labels)
            lr = sched.get_last_lr()[0]
            sched.step()
            pending.append((step, torch.stack([loss, colour, cls, torch.full_like(loss, lr)])))
            step += 1
            n_window += 1
            bar.update(1)
            end_of_epoch = step % source.steps_per_epoch == 0
            if step % tc.log_every == 0 or step == total or end_of_epoch:
                flush(step)
            if val_due(step):
                run_validation(step)
            if step % tc.checkpoint_every == 0 or step == total:
                save(step)
            if stop_requested(step):
                save(step)
                result.interrupted = True
                if rank == 0:
                    bar.write(f"interrupted: checkpoint written at step {step} to {out / 'checkpoint.pt'}; "
                              "continue with --resume")
                break
    except KeyboardInterrupt:
        if val_due(step) and not (result.val and result.val[-1]["step"] == step):
            run_validation(step)  # interrupted between the step and its validation: resume starts after it
        save(step)
        result.interrupted = True
        if rank == 0:
            print(f"\ninterrupted: checkpoint written at step {step}; continue with --resume")
    finally:
        bar.close()
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    result.steps = step
    result.images_seen = step * tc.batch_size * world
    result.wall_s = time.perf_counter() - t0
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        if owns_group:
            dist.destroy_process_group()
    return result


# -- a run folder's figures -------------------------------------------------------------------
def _read_rows(path: Path) -> list[dict]:
    """A log CSV as dicts of numbers (``step`` an int, the rest floats; a non-finite value None)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def number(k: str, v: str):
        if k in ("step", "images"):
            return int(float(v))
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return x if math.isfinite(x) else None

    return [{k: number(k, v) for k, v in r.items()} for r in rows]


def run_summary(folder: str | os.PathLike, meta: dict | None = None) -> dict | None:
    """The figures of a run folder made by :func:`train`, or ``None`` if ``folder`` is not one.

    ``meta``: the run's meta as its model file or checkpoint holds it (``model.meta`` of
    :func:`colorlib.checkpoint.load_model`); else read from ``checkpoint.pt``, else
    ``config.json``. Returns strict-JSON data with the keys of a shipped model's
    ``meta["training"]``: ``steps``, ``images_seen``, ``epochs``, ``train_images``, ``wall_s``
    (seconds of the training loop, summed over resumed parts; None for runs from before it was
    recorded), ``final`` (the last log.csv row: losses, lr, images/s), plus ``total_steps``,
    ``finished``, ``device`` and ``val`` (the last val.csv row, or None). Raises
    :class:`colorlib.checkpoint.CheckpointError` for a refused or unreadable checkpoint.
    """
    folder = Path(folder)
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        saved = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or "train" not in saved:
        return None
    if not (meta and "run" in meta) and (folder / "checkpoint.pt").exists():
        meta = read_checkpoint(folder / "checkpoint.pt").get("meta", {})
    run = {**saved.get("run", {}), **((meta or {}).get("run") or {})}
    tc = {**saved["train"], **((meta or {}).get("train") or {})}
    log = _read_rows(folder / "log.csv")
    val = _read_rows(folder / "val.csv")
    steps = run.get("step")
    if steps is None:  # an older run: as far as its log goes
        steps = log[-1]["step"] + 1 if log else 0
    log = [r for r in log if r["step"] < steps]  # rows past the last checkpoint were not kept
    per_epoch = run.get("steps_per_epoch")
    if not per_epoch:
        last = next((r for r in reversed(log) if r.get("epoch")), None)
        per_epoch = last["step"] / last["epoch"] if last else None
    total = run.get("total_steps")
    return {
        "steps": steps,
        "images_seen": steps * tc.get("batch_size", 0) * tc.get("world_size", 1),
        "epochs": round(steps / per_epoch, 4) if per_epoch else None,
        "train_images": run.get("train_images"),
        "wall_s": run.get("wall_s"),
        "final": log[-1] if log else None,
        "total_steps": total,
        "finished": steps >= total if total else None,
        "device": run.get("device"),
        "val": next((v for v in reversed(val) if v["step"] <= steps), None),
    }
