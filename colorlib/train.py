"""Training (paper sections 3.3-3.4): the joint loss of Eq. 6, ADADELTA, batch norm.

The loop is kept visible, as in nanoGPT: :func:`train` gets a batch (cropped, flipped, in
L*a*b*, on the training device: :class:`colorlib.data.BatchSource`), steps (forward, Eq. 6,
backward, update), logs, evaluates and checkpoints, in one screen; nothing waits for the GPU but
every ``log_every`` steps. What a run needs around the loop (DDP under ``torchrun``, the run
folder and its logs, signals, the finite-loss guard) is in :mod:`colorlib.run`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import data as D
from . import metrics as M
from .checkpoint import load_checkpoint, save_checkpoint
from .colorspace import DEFAULT_SPACE
from .device import device_name, resolve_device
from .infer import eval_mode
from .model import Colorizer, ColorizerOutput, ModelConfig
from .run import (
    LossLog,
    Processes,
    StopSignals,
    append_rows,
    check_finite,
    check_run_folder,
    distributed,
    processes,
    start_run_folder,
    truncate_log,
)

#: The values of TrainConfig's named options (``colorlib train``'s choices), the default first.
CHOICES = {"optimizer": ("adadelta", "adamw"), "schedule": ("constant", "cosine"), "precision": ("auto", "bf16", "fp32")}


@dataclass
class TrainConfig:
    """One training run (paper sections 3.3-3.4), each field's meaning and default in its comment.
    Every value is checked when the config is made: ``ValueError`` (one line) before any folder or
    data is touched."""

    config: str = "miniplaces"  # model preset: paper | miniplaces | tiny
    variant: str = "full"  # full | baseline (no global features, so no class term: see loss_alpha)
    width: float | None = None  # channel multiplier; None keeps the preset's
    dropout: float | None = None  # dropout before the global FC layers; None keeps the preset's
    color_space: str = DEFAULT_SPACE  # what the network predicts: a key of colorspace.SPACES (4.8)
    alpha: float = 1 / 300  # weight of the classification loss in Eq. 6 (the full model's)
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
        # found by a break test: each of these trained without a word (--limit -3 read all but the
        # last three photos, --alpha -1 pushed the classifier away from the labels)
        bounds = (("alpha", 0, "at least 0 (the weight of the class loss in Eq. 6)"),
                  ("weight_decay", 0, "at least 0"), ("warmup_steps", 0, "at least 0"),
                  ("val_limit", 0, "at least 0 (0: no validation)"), ("workers", 0, "at least 0"),
                  ("shards", 1, "at least 1"), ("train_limit", 1, "at least 1"))
        for name, low, what in bounds:
            v = getattr(self, name)
            if v is not None and v < low:
                raise ValueError(f"{'limit' if name == 'train_limit' else name.replace('_', '-')} must be {what}, "
                                 f"got {v}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be above 0, got {self.lr}")
        if not 0 < self.min_scale <= 1:
            raise ValueError(f"min-scale must be in (0, 1] (the crop's share of the image's area), got {self.min_scale}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be {' or '.join(allowed)}, got {getattr(self, name)!r}")
        self.model_config()  # the preset, variant, width and dropout
        try:
            resolve_device(self.device)
        except ValueError as e:
            raise ValueError(f"--device: {e}") from None

    def model_config(self, num_classes: int | None = None) -> ModelConfig:
        """The network this run trains: the preset with ``variant``, ``width``, ``dropout`` and
        ``color_space``, and ``num_classes`` scene classes (None keeps the preset's). Raises
        ``ValueError``."""
        over = {k: v for k, v in (("width", self.width), ("dropout", self.dropout)) if v is not None}
        if num_classes:
            over["num_classes"] = num_classes
        return ModelConfig.preset(self.config, variant=self.variant, color_space=self.color_space, **over)

    def loss_alpha(self, labelled: bool = True) -> float:
        """alpha as Eq. 6 uses it: ``alpha`` for the full model on ``labelled`` data, else 0.

        The paper's baseline has no global features and so no classification network (section
        4); without labels there is no class to predict. With 0 the class term is not computed
        and the classifier receives no gradient (:func:`joint_loss`).
        """
        return self.alpha if self.variant != "baseline" and labelled else 0.0


class Loss(NamedTuple):
    """The terms of Eq. 6 (:func:`joint_loss`), 0-d tensors named as ``log.csv``'s columns."""

    loss: torch.Tensor  # Eq. 6: colour_loss + alpha * class_loss
    colour_loss: torch.Tensor  # MSE of normalised a*b* (mean over pixels and channels; U, V or R, G, B: 4.8)
    class_loss: torch.Tensor  # cross-entropy over scene classes, detached; 0 when alpha is 0


#: The columns of ``log.csv``, one row per step: numbered from 0 with its epoch (step / steps per
#: epoch), the terms of Eq. 6, the learning rate, and the images per second of its logging window
#: (all processes together).
LOG_FIELDS = ["step", "epoch", *Loss._fields, "lr", "images_per_s"]
#: What a callback sees after every logged step: a row of ``log.csv`` (the book plots these).
StepInfo = make_dataclass("StepInfo", [("step", int), *((name, float) for name in LOG_FIELDS[1:])])


@dataclass
class Validation:
    """What a callback sees after every validation pass (a row of ``val.csv``): on the held-out
    photos, from their grayscale version, centred and not cropped (see :func:`validate`)."""

    step: int  # steps done before the pass
    epoch: float
    val_colour_loss: float  # as StepInfo.colour_loss
    val_top1: float  # scene accuracy, 0..1; NaN when the photos have no labels or the model no classifier
    val_top5: float
    images: int  # photos scored


@dataclass
class RunResult:
    """What :func:`train` did: steps reached (of ``total_steps``), images seen, seconds, logs."""

    out: Path
    steps: int
    images_seen: int
    wall_s: float  # seconds of the training loop in this call
    log: list[dict] = field(default_factory=list)  # the StepInfo rows of this call, as dicts
    val: list[dict] = field(default_factory=list)  # the Validation rows of this call, as dicts
    removed_gray: int = 0
    removed_corrupt: int = 0
    train_images: int = 0
    interrupted: bool = False
    total_steps: int = 0  # the run's length in steps
    already_finished: bool = False  # --resume of a finished run: nothing trained, no file touched


def joint_loss(
    out: ColorizerOutput, ab_target: torch.Tensor, labels: torch.Tensor | None, alpha: float
) -> Loss:
    """Eq. 6: MSE of normalised a*b* + alpha * cross-entropy over scene classes (:class:`Loss`).

    The MSE is the mean over pixels and both channels, which puts the two terms at similar
    magnitudes for alpha = 1/300, as the paper intends (section 4). With alpha = 0, no
    labels, or the baseline, the class term is not computed, so the classification head
    receives no gradient at all.
    """
    colour = F.mse_loss(out.ab.float(), ab_target.float())
    if alpha > 0 and out.logits is not None and labels is not None:
        cls = F.cross_entropy(out.logits.float(), labels, ignore_index=-1)
        return Loss(colour + alpha * cls, colour, cls.detach())
    return Loss(colour, colour, torch.zeros((), device=colour.device))


def make_train_step(model_fn, opt: torch.optim.Optimizer, autocast, alpha: float):
    """One optimisation step on a batch: forward, Eq. 6, backward, update. Returns the detached
    :class:`Loss` without waiting for the device."""

    def step(L: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor | None) -> Loss:
        with autocast:
            out = model_fn(L)
        loss = joint_loss(out, ab, labels if alpha > 0 else None, alpha)
        opt.zero_grad(set_to_none=True)
        loss.loss.backward()
        opt.step()
        return Loss(*(t.detach() for t in loss))

    return step


# -- set-up -------------------------------------------------------------------------------
def autocast_for(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device``: ``auto`` is bf16 on CUDA, fp32 (no
    autocast) elsewhere. Raises ``ValueError`` for another name."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    return contextlib.nullcontext()


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    """ADADELTA (section 3.4; lr 1.0 unless ``tc.lr``) or AdamW (lr 1e-3), with weight decay on
    conv/FC weights only (never on biases or batch norm)."""
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [
        {"params": decay, "weight_decay": tc.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if tc.optimizer == "adamw":
        fused = {"fused": True} if next(model.parameters()).is_cuda else {}
        return torch.optim.AdamW(groups, lr=1e-3 if tc.lr is None else tc.lr, **fused)
    return torch.optim.Adadelta(groups, lr=1.0 if tc.lr is None else tc.lr)


def lr_factor(step: int, total: int, tc: TrainConfig) -> float:
    """The learning rate's multiplier at ``step`` of ``total``: a linear warm-up over
    ``tc.warmup_steps``, then 1 (``constant``) or a cosine down to 0 at ``total`` (``cosine``)."""
    if step < tc.warmup_steps:
        return (step + 1) / tc.warmup_steps
    if tc.schedule == "constant":
        return 1.0
    t = (step - tc.warmup_steps) / max(1, total - tc.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


@torch.no_grad()
def validate(model: Colorizer, images: D.DecodedImages, autocast, batch_size: int = 256) -> dict:
    """Colour loss (in the model's colour space) and top-1/top-5 scene accuracy on grayscale
    input (centre, no crop), in eval mode."""
    s = model.cfg.global_size
    total, colour, top1, top5, labelled = 0, 0.0, 0, 0, 0
    for i in range(0, len(images), batch_size):
        x = images.pixels[i : i + batch_size].float() / 255.0
        if x.shape[-1] != s:
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        L, ab = D.lab_batch(x, model.cfg.color_space)
        with autocast, eval_mode(model):
            out = model(L)
        colour += joint_loss(out, ab, None, 0.0).colour_loss.item() * len(x)
        total += len(x)
        y = images.labels[i : i + batch_size]
        known = y >= 0
        if out.logits is not None and known.any():
            logits, y = out.logits.float()[known], y[known]
            top1 += int(M.topk_accuracy(logits, y, 1).sum())
            top5 += int(M.topk_accuracy(logits, y, 5).sum())
            labelled += len(y)
    return {
        "val_colour_loss": colour / max(1, total),
        "val_top1": top1 / labelled if labelled else float("nan"),
        "val_top5": top5 / labelled if labelled else float("nan"),
        "images": total,
    }


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


# -- the loop ---------------------------------------------------------------------------------
Callback = Callable[[StepInfo | Validation], None]
TrainingData = tuple[D.DecodedImages, D.DecodedImages | None]  # decoded (train, val) images


def train(tc: TrainConfig, out: str | os.PathLike, resume: bool = False, callbacks: Sequence[Callback] = (),
          progress: bool = True, data: TrainingData | None = None) -> RunResult:
    """Train a colorizer (Eq. 6, section 3.3) into ``out``: a new folder, or one to continue (``resume``).

    ``data``: decoded (train, val) images, to skip loading. ``callbacks`` get a :class:`StepInfo` per
    logged step and a :class:`Validation` per validation pass; ``progress=False`` prints nothing but
    an interruption's line. The folder is checked before any data is read and appears with its first
    file. ``resume`` continues from ``checkpoint.pt`` exactly; a finished run returns at once
    (``already_finished``, no file touched). Raises ``FileExistsError`` (``out`` holds another run),
    :class:`~colorlib.checkpoint.CheckpointError` (nothing to resume, a refused or unreadable checkpoint,
    another configuration), :class:`~colorlib.data.DataError`, :class:`~colorlib.io.WriteError` and
    ``FloatingPointError`` (a loss not finite; the last checkpoint is from before it), each one line.
    """
    out, procs = Path(out), processes(tc.device)  # the device is checked before anything is read
    state = check_run_folder(out, resume, procs.rank, asdict(tc) | {"world_size": procs.world})
    if (done := _finished(out, state, tc, procs.world, _total_from(state, tc))) is not None:
        return done
    with distributed(procs):
        t = _Training(tc, out, procs, state, data, callbacks, progress)  # model, optimiser, batches, logs
        step = t.start  # 0, the checkpoint's step, or the end for a run found finished only now
        with t.bar, StopSignals(procs, tc.log_every, t.total) as stop:
            try:
                while step < t.total:
                    L, ab, labels = t.source.batch(step, t.cfg.global_size, tc.min_scale)
                    t.optimise(step, L, ab, labels)  # forward, Eq. 6, backward, update; the LR schedule
                    step += 1
                    if t.log_due(step):
                        t.write_log()
                    if t.val_due(step):
                        t.validate(step)
                    if step % tc.checkpoint_every == 0 or step == t.total:
                        t.save(step)
                    if stop.requested(step):  # Ctrl-C or SIGTERM, seen during the step
                        t.interrupt(step)
                        break
            except KeyboardInterrupt:  # raised by a callback, or Ctrl-C where no handler could be set
                t.interrupt(step)
    return t.finish(step)


class _Training:
    """A run between its set-up and its end (model, optimiser, schedule, batches, logs, result);
    its methods are the loop's steps that write files or talk, so :func:`train` shows the loop."""

    def __init__(self, tc: TrainConfig, out: Path, procs: Processes, state: dict | None,
                 data: TrainingData | None, callbacks: Sequence[Callback], progress: bool):
        self.tc, self.out, self.procs, self.callbacks = tc, out, procs, tuple(callbacks)
        self.talk = progress and procs.rank == 0  # progress bar, notes and validation lines
        torch.manual_seed(tc.seed)
        train_imgs, val_imgs = data or load_training_data(tc, tc.model_config().global_size, self.talk)
        alpha = tc.loss_alpha(train_imgs.labelled)
        if self.talk and alpha != tc.loss_alpha():
            print("note: these images have no labels, so the classification loss is off (alpha = 0)")
        self.cfg = tc.model_config(len(train_imgs.classes) or None)
        self.model = Colorizer(self.cfg).to(procs.device)
        if procs.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        opt = self.opt = make_optimizer(self.model, tc)
        prepare = functools.partial(D.prepare_batch, space=tc.color_space)
        prepare = torch.compile(prepare) if tc.compile else prepare
        self.source = D.BatchSource(train_imgs.to(procs.device), tc.batch_size, tc.seed, procs.rank,
                                  procs.world, prepare)
        self.val_imgs = None if val_imgs is None else val_imgs.to(procs.device)
        self.total = tc.steps or max(1, round((tc.epochs or 1) * self.source.steps_per_epoch))
        self.sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, self.total, tc))
        self.meta = _run_meta(tc, procs, self.cfg, train_imgs, self.source.steps_per_epoch, self.total)
        self.finished = _finished(out, state, tc, procs.world, self.total)
        self.start, self.wall_before = self._resume_or_begin(state)
        step_model = _parallel(self.model, tc, procs, alpha)
        autocast = self.autocast = autocast_for(procs.device, tc.precision)
        self.train_step = make_train_step(step_model, opt, autocast, alpha)
        images_per_step = tc.batch_size * procs.world
        self.log = LossLog(out / "log.csv" if procs.rank == 0 else None, images_per_step,
                           self.source.steps_per_epoch)
        self.result = RunResult(out, self.start, self.start * images_per_step, 0.0, total_steps=self.total,
                                removed_gray=train_imgs.removed_gray, train_images=len(train_imgs),
                                removed_corrupt=train_imgs.removed_corrupt)
        self.bar = tqdm(total=self.total, initial=self.start, desc=f"train {out.name}", unit="step",
                        disable=not self.talk or self.finished is not None, dynamic_ncols=True)
        self.t0 = time.perf_counter()

    def _resume_or_begin(self, state: dict | None) -> tuple[int, float]:
        """Load the checkpoint (``resume``) or write ``config.json`` (a new run); returns the step to
        start at and the seconds of training before it. A finished run is left untouched."""
        if state is None:
            if self.procs.rank == 0:
                start_run_folder(self.out, self.meta)
            return 0, 0.0
        if self.finished is not None:  # an older run that did not record its steps per epoch
            return self.finished.steps, 0.0
        start = load_checkpoint(self.out / "checkpoint.pt", self.model, self.opt, self.sched, self.meta,
                                state=state)
        wall_before = float(state["meta"].get("run", {}).get("wall_s", 0.0))
        state.clear()  # the weights and optimiser state are in place now: free the read copies
        if self.procs.rank == 0:
            truncate_log(self.out / "log.csv", start)
            truncate_log(self.out / "val.csv", start + 1)
        return start, wall_before

    def optimise(self, step: int, L: torch.Tensor, ab: torch.Tensor, labels: torch.Tensor) -> None:
        """One optimisation step on ``step``'s batch, then the LR schedule's; losses kept for the log."""
        # dropout: reproducible on resume, and other masks on each DDP process
        torch.manual_seed((self.tc.seed * 1_000_033 + step) * self.procs.world + self.procs.rank)
        loss = self.train_step(L, ab, labels)
        self.log.add(step, loss._asdict() | {"lr": torch.full_like(loss.loss, self.sched.get_last_lr()[0])})
        self.sched.step()
        self.bar.update(1)

    def log_due(self, step: int) -> bool:
        """Whether the losses up to ``step`` are written now: every ``log_every`` steps, at each
        epoch's end and at the run's."""
        return step % self.tc.log_every == 0 or step == self.total or step % self.source.steps_per_epoch == 0

    def val_due(self, step: int) -> bool:
        """Whether a validation pass follows ``step``: every ``val_every`` epochs, and at the end."""
        per_epoch = self.source.steps_per_epoch
        return (step % per_epoch == 0 and (step // per_epoch) % self.tc.val_every == 0) or step == self.total

    def write_log(self) -> None:
        """Write the logged steps' rows, hand them to the callbacks, then stop the run (the finite-loss
        guard, ``FloatingPointError``) if a loss among them is not finite."""
        rows = self.log.flush()
        if rows and self.procs.rank == 0:
            self.result.log.extend(rows)
            self.bar.set_postfix(loss=f"{rows[-1]['loss']:.4f}", img_s=f"{rows[-1]['images_per_s']:.0f}")
            for row in rows:
                for cb in self.callbacks:
                    cb(StepInfo(**row))
        check_finite(rows)

    def validate(self, step: int) -> None:
        """A validation pass after ``step`` (rank 0; none without validation photos): ``val.csv``,
        the result, the callbacks, and a line when not quiet."""
        if self.val_imgs is None or self.procs.rank != 0:
            return
        epoch = round(step / self.source.steps_per_epoch, 4)
        v = Validation(step, epoch, **validate(self.model, self.val_imgs, self.autocast))
        append_rows(self.out / "val.csv", [asdict(v)])
        self.result.val.append(asdict(v))
        if self.talk:
            self.bar.write(f"step {step}: val colour loss {v.val_colour_loss:.5f}  top-1 {v.val_top1:.3f}  "
                           f"top-5 {v.val_top5:.3f}")
        for cb in self.callbacks:
            cb(v)

    def save(self, step: int) -> None:
        """Checkpoint at ``step`` (rank 0 writes). The log is written first: ``log.csv`` reaches the
        checkpoint's step, and the finite-loss guard runs before any weights are saved."""
        self.write_log()
        if self.procs.rank == 0:
            wall_s = round(self.wall_before + time.perf_counter() - self.t0, 3)
            self.meta["run"].update(step=step, wall_s=wall_s)
            save_checkpoint(self.out / "checkpoint.pt", self.model, self.opt, self.sched, step, self.meta)

    def interrupt(self, step: int) -> None:
        """Stop at ``step``: its validation if due and not yet run (a resume starts after it), a
        checkpoint, and one line saying how to continue."""
        if self.val_due(step) and not (self.result.val and self.result.val[-1]["step"] == step):
            self.validate(step)
        self.save(step)
        self.result.interrupted = True
        if self.procs.rank == 0:
            self.bar.write(f"interrupted: checkpoint written at step {step} to {self.out / 'checkpoint.pt'}; "
                           "continue with --resume")

    def finish(self, step: int) -> RunResult:
        """What :func:`train` returns, the loop having stopped after ``step``."""
        if self.finished is not None:
            return self.finished
        images_per_step = self.tc.batch_size * self.procs.world
        self.result.steps, self.result.images_seen = step, step * images_per_step
        self.result.wall_s = time.perf_counter() - self.t0
        return self.result


def _parallel(model: Colorizer, tc: TrainConfig, procs: Processes, alpha: float) -> torch.nn.Module:
    """What a step calls: ``model`` in DistributedDataParallel under torchrun, compiled with
    ``tc.compile``."""
    if procs.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[procs.device.index] if procs.device.type == "cuda" else None,
            # without the class loss the classification head takes no part in the loss
            find_unused_parameters=alpha == 0 and model.classifier is not None,
        )
    return torch.compile(model) if tc.compile else model


def _run_meta(tc: TrainConfig, procs: Processes, cfg: ModelConfig, images: D.DecodedImages,
              steps_per_epoch: int, total: int) -> dict:
    """What ``config.json`` and every checkpoint record about the run, as plain data (what a
    weights_only checkpoint can hold); ``run`` gains the step and wall time at each checkpoint,
    for ``colorlib info``."""
    return json.loads(json.dumps({
        "train": asdict(tc) | {"world_size": procs.world}, "model": cfg.to_dict(), "classes": images.classes,
        "run": {"train_images": len(images), "steps_per_epoch": steps_per_epoch, "total_steps": total,
                "device": device_name(procs.device)},
    }))


def _total_from(state: dict | None, tc: TrainConfig) -> int | None:
    """The run's length in steps as ``tc`` asks for it, if known without the data: ``--steps``,
    or ``--epochs`` times the steps per epoch the checkpoint recorded (older runs did not)."""
    if tc.steps:
        return tc.steps
    per_epoch = (state or {}).get("meta", {}).get("run", {}).get("steps_per_epoch")
    return max(1, round((tc.epochs or 1) * per_epoch)) if per_epoch else None


def _finished(out: Path, state: dict | None, tc: TrainConfig, world: int,
              total: int | None) -> RunResult | None:
    """What ``train(..., resume=True)`` returns for a run already at (or past) its last step, ``total``;
    None for a new run, one still to train, or a length not known yet."""
    if state is None or total is None or int(state["step"]) < total:
        return None
    step = int(state["step"])
    run = state.get("meta", {}).get("run", {})
    return RunResult(out, step, step * tc.batch_size * world, 0.0, train_images=run.get("train_images", 0),
                     total_steps=total, already_finished=True)
