"""The ``colorlib`` command: colorize photos, train, inspect, evaluate and time models.

    colorlib colorize photo.jpg -o photo-color.png
    colorlib train --smoke --out runs/smoke
    colorlib info --model miniplaces-full

Run ``colorlib COMMAND --help`` for each command's options.
"""

# ruff: noqa: E402 (the imports after the OpenMP setting below, which must come before torch loads)
from __future__ import annotations

import os
import sys

# `colorlib evaluate` runs scikit-image's metric threads between torch's parallel regions on the
# same cores; OpenMP workers that spin after each region would take the cores from them. OpenMP
# reads this once, when torch loads, so it is set before the imports below load torch.
if sys.argv[1:2] == ["evaluate"]:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import io
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from PIL import Image
from tqdm.auto import tqdm

from . import cli_eval
from .cli_eval import UserError, device_option
from .cli_eval import open_model as _load
from .device import DEVICE_HELP
from .imageio import save_image
from .infer import DEFAULT_MAX_PIXELS, classify, colorize, global_features_of, output_gain
from .io import WriteError, check_writable
from .model import mix_global

DEFAULT_MODEL = "miniplaces-full"


STDIO = "-"  # as an input: read one image from standard input; as -o: write PNG to standard output


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``colorlib CMD: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


# -- a batch of inputs: each one that can be read is processed; each one that cannot, one line --
@dataclass
class Input:
    """One image of a batch: named on the command line, or found in a folder named there."""

    name: str  # as the user gave it (``-`` for standard input)
    path: Path | None  # None: standard input
    in_folder: bool = False  # found in a folder given as an input
    error: str | None = None  # why it cannot be read, known while listing the inputs
    _stdin: bytes | None = None

    @property
    def label(self) -> str:
        """The name messages give it."""
        return "standard input" if self.path is None else self.name

    def source(self) -> Path | io.BytesIO:
        """What the library reads: the path, or standard input's bytes (read once)."""
        if self.path is not None:
            return self.path
        if self._stdin is None:
            self._stdin = sys.stdin.buffer.read()
        return io.BytesIO(self._stdin)


def image_inputs(args: list[str]) -> list[Input]:
    """The inputs ``args`` name: a file; a folder, which stands for the image files in it (sorted
    by name; hidden files and names PIL cannot open are left out; an empty one is a failed
    input); ``-``, one image from standard input. Something that is neither a file nor a folder
    (a device such as ``/dev/null``, a pipe) is a failed input, never read. Raises
    :class:`UserError` for ``-`` given twice."""
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    inputs: list[Input] = []
    for arg in args:
        path = Path(arg)
        if arg == STDIO:
            inputs.append(Input(arg, None))
        elif path.is_dir():
            try:
                files = sorted(f for f in path.iterdir() if f.suffix.lower() in readable
                               and not f.name.startswith(".") and f.is_file())
            except OSError as e:
                inputs.append(Input(arg, path, error=f"cannot list the folder {arg}: {e.strerror or e}"))
                continue
            if not files:
                inputs.append(Input(arg, path, error=f"{arg}: no image files in this folder"))
            inputs += [Input(str(f), f, in_folder=True) for f in files]
        elif path.exists() and not path.is_file():
            inputs.append(Input(arg, path, error=f"{arg} is not a regular file (a device, pipe or socket)"))
        else:
            inputs.append(Input(arg, path))  # a missing file fails when it is read, with the others
    if sum(i.path is None for i in inputs) > 1:
        raise UserError("- (standard input) can be given only once")
    return inputs


def _one_line(item: Input, e: BaseException | str) -> str:
    """``e`` as one line that names the input (put in front unless the message names it)."""
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, BaseException) and not isinstance(e, (ValueError, OSError, MemoryError)):
        text = f"{type(e).__name__}: {text}"  # an unexpected kind: say which, so it can be reported
    return text if item.name in text else f"{item.label}: {text}"


def run_each(command: str, inputs: list[Input], work: Callable[[Input], None], progress: bool = True) -> int:
    """Call ``work(item)`` for every input; one that fails never stops the others.

    A failure prints one line on stderr, ``colorlib COMMAND: error: INPUT: why``; each
    ``UserWarning`` or ``RuntimeWarning`` raised for an input that succeeds (a multi-frame file,
    a damaged EXIF block, a very large image) prints one ``note:`` line. ``BrokenPipeError``
    (the reader of standard output went away) stops the batch. ``progress``: a bar on stderr
    for three inputs or more, when stderr is a terminal. Returns how many inputs failed.
    """
    failed = 0
    bar = None if progress and len(inputs) > 2 else True  # tqdm: None = only on a terminal
    for item in tqdm(inputs, desc=command, unit="image", disable=bar):
        reason = item.error
        if reason is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)  # every input's own, not once per run
                try:
                    work(item)
                except BrokenPipeError:
                    raise
                except Exception as e:  # noqa: BLE001 - whatever one photo's decoder raises fails that photo
                    reason = _one_line(item, e)
        if reason is not None:
            failed += 1
            tqdm.write(f"colorlib {command}: error: {reason}", file=sys.stderr)
            continue
        notes = [_one_line(item, str(w.message)) for w in caught
                 if issubclass(w.category, (UserWarning, RuntimeWarning))]
        for note in dict.fromkeys(notes):
            tqdm.write(f"colorlib {command}: note: {note}", file=sys.stderr)
    return failed


# -- colorize -------------------------------------------------------------------------------
def _check_colorize_options(a: argparse.Namespace) -> None:
    if a.output and a.out_dir:
        raise UserError("give -o or --out-dir, not both (--out-dir DIR is -o DIR/)")
    if a.mix is not None and not a.global_image:
        raise UserError("--mix needs --global-image (the photo to mix global features with)")
    if a.mix is not None and not 0 <= a.mix <= 1:
        raise UserError(f"--mix must be in [0, 1], got {a.mix}")
    if a.max_pixels < 0:
        raise UserError(f"--max-pixels must be a number of pixels, or 0 for no bound; got {a.max_pixels}")
    if a.global_image and not Path(a.global_image).is_file():
        why = "not a regular file" if Path(a.global_image).exists() else "no such image file"
        raise UserError(f"{why}: {a.global_image} (--global-image)")


def _global_features(a: argparse.Namespace, model):
    """The --global-image's global features (None without it), or a :class:`UserError`."""
    if not a.global_image:
        return None
    if model.global_features is None:
        raise UserError(f"{a.model} is a baseline model: it has no global features to transfer")
    try:
        return global_features_of(model, a.global_image)
    except (ValueError, OSError, MemoryError) as e:
        raise UserError(f"--global-image: {' '.join(str(e).split())}") from None


def cmd_colorize(a: argparse.Namespace) -> None:
    _check_colorize_options(a)
    jobs = _colorize_targets(image_inputs(a.images), a.global_image, a.out_dir or a.output, bool(a.out_dir))
    model = _load(a.model, a.device)
    try:
        output_gain(model, a.saturation)
    except ValueError as e:
        raise UserError(f"--{e}") from None
    other = _global_features(a, model)
    targets = {id(item): target for item, target in jobs}
    if STDIO in targets.values() and sys.stdout.isatty():
        raise UserError("-o - writes a PNG to standard output, which is a terminal: redirect it (> out.png)")
    say = sys.stderr if STDIO in targets.values() else sys.stdout  # stdout carries only the image then

    def work(item: Input) -> None:
        target = targets[id(item)]
        g = other if a.mix is None else mix_global(global_features_of(model, item.source()), other, a.mix)
        result = colorize(model, item.source(), global_features=g, saturation=a.saturation,
                          max_pixels=a.max_pixels or None)
        if target == STDIO:
            buf = io.BytesIO()
            result.save(buf, format="PNG")
            sys.stdout.buffer.write(buf.getvalue())
            sys.stdout.flush()
        else:
            save_image(result, target)
        if not a.quiet:
            tqdm.write(f"{item.label} -> {'standard output' if target == STDIO else target}", file=say)

    failed = run_each("colorize", [item for item, _ in jobs], work, progress=not a.quiet)
    if failed or not a.quiet:
        print(f"colorlib colorize: {len(jobs) - failed} written, {failed} failed", file=sys.stderr)
    if failed:
        sys.exit(1)


def _colorize_targets(inputs: list[Input], global_image: str | None, out: str | None,
                      out_is_folder: bool = False) -> list[tuple[Input, Path | str | None]]:
    """Each input with where its colorized image goes (``-``: standard output; None for an
    input already known to fail). Images found in a folder that this run writes are not
    inputs of it (a second run over a folder does not colorize the first run's results).

    Raises :class:`UserError`, before any work, for an output that is an input photo, two
    inputs sharing an output, and those of :func:`_output_place` and :func:`_check_image_target`.
    """
    place = _output_place(inputs, out, out_is_folder)

    def target(item: Input) -> Path | str:
        if place == STDIO:
            return STDIO
        if place is not None and not place.is_folder:
            return place.path
        stem = "stdin" if item.path is None else item.path.stem
        return (place.path if place else item.path.parent) / f"{stem}-color.png"

    jobs = [(i, None if i.error else target(i)) for i in inputs]
    written = {Path(t).resolve() for _, t in jobs if t not in (None, STDIO)}
    jobs = [(i, t) for i, t in jobs if not (i.in_folder and i.path.resolve() in written)]
    named = [i.path for i in inputs if i.path and not i.in_folder]
    named += [Path(global_image)] if global_image else []
    given = {p.resolve() for p in named}
    seen: dict[Path, str] = {}
    for item, t in jobs:
        if t in (None, STDIO):
            continue
        r = t.resolve()
        if r in given:
            raise UserError(f"refusing to overwrite the input photo {t} (use -o or --out-dir)")
        if r in seen:
            raise UserError(f"{seen[r]} and {item.label} would both be written to {t}; use --out-dir")
        seen[r] = item.label
        _check_image_target(t)
    return jobs


@dataclass
class _Place:
    path: Path
    is_folder: bool


def _output_place(inputs: list[Input], out: str | None, out_is_folder: bool) -> _Place | str | None:
    """What ``-o OUT`` means (None: no -o, each output beside its input).

    ``-`` writes the one input's PNG to standard output. With one input file, a name with an
    image suffix is that file. Otherwise (several inputs, a folder among them, an existing
    folder, a name ending in ``/`` or without a suffix, ``--out-dir``) it is a folder, created
    when missing, that gets ``STEM-color.png`` files. Raises :class:`UserError` for an image
    suffix with several inputs, a suffix that names no format, ``-`` with several inputs, and
    standard input without ``-o``.
    """
    single = len(inputs) == 1 and not inputs[0].in_folder and not (inputs[0].path and inputs[0].path.is_dir())
    if out is None:
        if any(i.path is None for i in inputs):
            raise UserError("reading standard input (-) needs -o: a file, a folder, or - for standard output")
        return None
    if out == STDIO:
        if not single:
            raise UserError("-o - writes one image to standard output: give one input file")
        return STDIO
    path = Path(out)
    if out_is_folder or out.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return _Place(path, is_folder=True)
    known = path.suffix.lower() in Image.registered_extensions()
    if single and not known:
        raise UserError(f"cannot tell the image format of {out}: give a name ending in .png or .jpg "
                        "(or a folder's name ending in /)")
    if not single and known:
        raise UserError(f"-o {out} names one image file, but there are several inputs: "
                        "give a folder (-o DIR/ or --out-dir DIR)")
    return _Place(path, is_folder=not single)


def _check_image_target(path: Path) -> None:
    """Refuse now a colour image that could not be written to ``path`` later: a suffix that names
    no format, a format PIL cannot write in colour, a place :func:`colorlib.io.check_writable` refuses."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"cannot tell the image format of {path}: give a name ending in .png or .jpg")
    if not _writes_colour(fmt):
        raise UserError(f"PIL cannot write {fmt} images in colour ({path}): "
                        "give a name ending in .png or .jpg")
    try:
        check_writable(path)
    except WriteError as e:
        raise UserError(str(e)) from None


@functools.cache
def _writes_colour(fmt: str) -> bool:
    """Whether PIL can encode an RGB image as ``fmt`` (:func:`colorlib.imageio.save_image`
    composites RGBA over white where the format has no alpha, so RGB is what each must take)."""
    if fmt not in Image.SAVE:
        return False
    try:
        Image.new("RGB", (1, 1)).save(io.BytesIO(), format=fmt)
    except (OSError, ValueError, KeyError):
        return False
    return True


# -- classify ---------------------------------------------------------------------------------
def cmd_classify(a: argparse.Namespace) -> None:
    if a.top < 1:
        raise UserError("--top must be at least 1")
    inputs = image_inputs(a.images)
    model = _load(a.model, a.device)
    if model.classifier is None:
        raise UserError(f"{a.model} is a baseline model: it has no classifier (no global features); "
                        "use miniplaces-full or a sweep-alpha-* model")

    def work(item: Input) -> None:
        ranked = classify(model, item.source(), a.top)
        if not all(math.isfinite(p) for _, p in ranked):
            raise ValueError(f"{item.label}: the model gave a probability that is not a number (NaN)")
        ranked = [(name, round(p, 4)) for name, p in ranked]
        if a.json:
            print(json.dumps({"file": item.name, f"top{len(ranked)}": ranked}, allow_nan=False))
        else:
            print(item.label)
            for rank, (name, p) in enumerate(ranked, 1):
                print(f"  {rank}. {name:<28} {p:6.1%}")

    failed = run_each("classify", inputs, work, progress=False)  # each result is its own progress
    if failed or len(inputs) > 1:
        print(f"colorlib classify: {len(inputs) - failed} classified, {failed} failed", file=sys.stderr)
    if failed:
        sys.exit(1)


def add_classify(sub) -> None:
    c = sub.add_parser("classify", help="scene classes of photos, from their grayscale version",
                       description="The classification head (section 3.3) on each image's L*: the "
                                   "top classes with their probabilities. Every input that can be read "
                                   "is classified; each one that cannot gets one line on stderr, and "
                                   "the exit status is then 1.")
    c.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, folders (their image files), or - for one image from standard input")
    c.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"a model with a classifier (default {DEFAULT_MODEL})")
    c.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    c.add_argument("--json", action="store_true",
                   help='one line per image: {"file": ..., "top5": [[class, probability], ...]} '
                        "(the key is topK for --top K); failures go to stderr")
    c.add_argument("--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    c.set_defaults(func=cmd_classify)


# -- train ------------------------------------------------------------------------------------
SMOKE = dict(config="tiny", steps=80, batch_size=32, train_limit=2000, val_limit=200, log_every=5,
             checkpoint_every=40, optimizer="adamw", lr=3e-3)


def cmd_train(a: argparse.Namespace) -> None:
    from .checkpoint import CheckpointError, save_model
    from .data import DataError
    from .train import TrainConfig, train

    if a.steps is not None and a.epochs is not None:
        raise UserError("give --steps or --epochs, not both")
    kw = dict(SMOKE) if a.smoke else {}
    for name in ("config", "variant", "width", "dropout", "alpha", "optimizer", "lr", "weight_decay",
                 "schedule", "warmup_steps", "batch_size", "steps", "epochs", "min_scale", "seed", "data",
                 "shards", "val_limit", "checkpoint_every", "log_every", "precision", "device", "workers"):
        v = getattr(a, name)
        if v is not None:
            kw[name] = v
    if a.epochs is not None:
        kw.pop("steps", None)  # --smoke --epochs 2: the user's length, not the smoke run's
    if a.limit is not None:
        kw["train_limit"] = a.limit
    if a.compile:
        kw["compile"] = True
    if kw.get("steps") is None and kw.get("epochs") is None:
        kw["epochs"] = 1.0
    try:
        tc = TrainConfig(**kw)  # checks every option (the device too) before the run folder exists
        result = train(tc, a.out, resume=a.resume, progress=not a.quiet)
    except (DataError, CheckpointError, FileExistsError, ValueError, WriteError, FloatingPointError) as e:
        raise UserError(str(e)) from None
    if int(os.environ.get("RANK", 0)) != 0:
        return
    if result.already_finished:  # nothing trained, no file touched
        where = (f"already finished at step {result.steps} of {result.total_steps}"
                 if result.steps == result.total_steps else
                 f"is already at step {result.steps}, past the {result.total_steps} steps asked for")
        print(f"{a.out} {where}; nothing to train")
        return
    if not result.interrupted:
        from .checkpoint import load_model

        try:
            model = load_model(Path(a.out) / "checkpoint.pt")
            meta = {k: v for k, v in model.meta.items() if k != "model"}
            save_model(model, Path(a.out) / "model.safetensors", meta, half=False)
        except CheckpointError as e:
            raise UserError(str(e)) from None
    first = result.log[0]["loss"] if result.log else float("nan")
    last = result.log[-1]["loss"] if result.log else float("nan")
    print(f"{result.steps} steps, {result.images_seen} images seen in {result.wall_s:.1f} s "
          f"({result.train_images} training images; {result.removed_gray} gray/low-colour and "
          f"{result.removed_corrupt} unreadable removed). loss {first:.4f} -> {last:.4f}")
    if result.val:
        v = result.val[-1]
        print(f"validation: colour loss {v['val_colour_loss']:.5f}, top-1 {v['val_top1']:.3f}, "
              f"top-5 {v['val_top5']:.3f} on {v['images']} images")
    print(f"run folder: {a.out} (log.csv, val.csv, checkpoint.pt"
          f"{'' if result.interrupted else ', model.safetensors'})")
    if result.interrupted:
        sys.exit(130)


# -- info --------------------------------------------------------------------------------------
def cmd_info(a: argparse.Namespace) -> None:
    from .checkpoint import CheckpointError, available_models, model_name, models_dir
    from .model import weight_count
    from .train import run_summary

    if a.list:
        for name in available_models():
            print(name)
        return
    model = _load(a.model)
    meta = model.meta
    path = Path(model.source)
    card = models_dir() / f"{model_name(path)}.md"
    try:  # a run folder of ours: its figures from config.json, log.csv, val.csv and the checkpoint
        training = meta.get("training") or run_summary(path.parent, meta)
    except CheckpointError as e:
        raise UserError(str(e)) from None
    info = {
        "model": a.model,
        "file": str(path),
        "config": meta.get("model"),
        "weights": weight_count(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": training,
        "results": meta.get("results"),
    }
    results = models_dir() / "results.json"
    if results.exists() and Path(path).parent == models_dir():
        info["results"] = json.loads(results.read_text()).get("models", {}).get(model_name(path))
    if a.json:
        print(json.dumps(info, indent=1))
        return
    print(f"{info['model']}  ({info['file']})")
    cfg = info["config"]
    print(f"  network: {cfg['variant']}, width {cfg['width']}, global size {cfg['global_size']}, "
          f"{cfg['num_classes']} classes; {info['parameters']:,} parameters; "
          f"saturation {meta.get('saturation', 1.0)}")
    t = info.get("training") or {}
    if t:
        of = f" of {t['total_steps']:,}" if t.get("total_steps") else ""
        print(f"  training: {t.get('steps', 0):,}{of} steps, {t.get('images_seen', 0):,} images seen "
              f"({t.get('epochs') or 0:.1f} epochs of {t.get('train_images') or 0:,} images) in "
              f"{t.get('wall_s') or 0:.0f} s on {meta.get('device') or t.get('device') or '?'}")
        final = t.get("final") or {}
        if final.get("loss") is not None:
            print(f"  final training loss: {final['loss']:.5f} (colour {final['colour_loss']:.5f}, "
                  f"class {final['class_loss']:.3f})")
        v = t.get("val") or {}
        if v:
            top = (f", top-1 {v['val_top1']:.3f}, top-5 {v['val_top5']:.3f}"
                   if v.get("val_top1") is not None else "")
            print(f"  last validation (step {v['step']:,}, {v['images']:,} images): colour loss "
                  f"{v['val_colour_loss']:.5f}{top}")
    r = info.get("results") or {}
    if r:
        top = (f", top-1 {r['top1']:.1f}%, top-5 {r['top5']:.1f}%" if r.get("top1") is not None else "")
        print(f"  validation ({r['images']:,} colour images of MiniPlaces val): PSNR {r['psnr']:.2f} dB, "
              f"SSIM {r['ssim']:.3f}, CIEDE2000 {r['ciede2000']:.2f}, AuC {r['auc']:.2f}%, colourfulness "
              f"{r['cf_pred']:.1f} (truth {r['cf_true']:.1f}, gap {r['cf_gap']:.1f}){top}")
    if card.exists():
        print(f"  model card: {card}")


TRAIN_EXAMPLES = """examples:
  colorlib train --smoke --out runs/smoke                      # ~20 s on a CPU, real photos
  colorlib train --out runs/full --epochs 10                   # the full model, ADADELTA
  colorlib train --out runs/base --epochs 10 --variant baseline
  colorlib train --out runs/full --resume                      # after Ctrl-C or a crash
  torchrun --nproc_per_node 4 -m colorlib train --out runs/ddp --epochs 10

the recipe of the shipped miniplaces-* models (see data/models/README.md):
  colorlib train --out runs/mp --config miniplaces --epochs 38 --batch-size 256 \\
      --optimizer adamw --lr 2e-3 --weight-decay 0.05 --schedule cosine --warmup-steps 210 --min-scale 0.6
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``colorlib`` parser: a subcommand per ``add_*`` function; usage errors are one line."""
    p = OneLineParser(
        prog="colorlib",
        description="Automatic image colorization after Iizuka, Simo-Serra and Ishikawa, "
                    "'Let there be Color!' (SIGGRAPH 2016).",
        epilog="Shipped models: colorlib info --list. Data: --data, $COLORLIB_DATA or ../shared/data.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")  # subparsers are OneLineParsers too
    for add in (add_colorize, add_classify, add_train, add_info, *cli_eval.COMMANDS):
        add(sub)
    return p


def add_colorize(sub) -> None:
    c = sub.add_parser("colorize", help="colorize black-and-white (or any) photos",
                       description="Colorize photos of any size. The output keeps each input's lightness;\n"
                                   "only a*b* come from the network. Transparent input is colorized as seen\n"
                                   "over white; PNG, WebP and TIFF outputs keep its alpha. Every input that\n"
                                   "can be read is colorized; each one that cannot gets one line on stderr,\n"
                                   "and the exit status is then 1 (2: a usage mistake, found before any work).",
                       epilog="examples:\n"
                              "  colorlib colorize old.jpg -o old-color.png     # one file\n"
                              "  colorlib colorize scans/ -o colored/           # every image in scans/\n"
                              "  colorlib colorize - -o - < in.jpg > out.png    # a pipeline (PNG out)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (any mode; colour input is reduced to its luminance first), folders "
                        "(their image files), or - for one image from standard input")
    c.add_argument("-o", "--output", metavar="OUT",
                   help="with one input and an image suffix (.png, .jpg, ...): that file; - : PNG on "
                        "standard output; otherwise a folder (created if missing) for IMAGE-color.png "
                        "files (default: beside each input)")
    c.add_argument("--out-dir", metavar="DIR",
                   help="write IMAGE-color.png files into this folder (as -o DIR/)")
    c.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name, .safetensors/.pt file, or run folder (default {DEFAULT_MODEL})")
    c.add_argument("--global-image", help="take the global features from this photo (style transfer)")
    c.add_argument("--mix", type=float, help="with --global-image, in [0, 1]: 0 = own global features, "
                                              "1 = the other's")
    c.add_argument("--saturation", type=float,
                   help="gain on the predicted a*b*, in [0, 4] (default: the model's own, see its card; "
                        "1.0 = raw network)")
    c.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"the network sees at most N pixels (a larger photo is scaled down for it; a*b* are "
                        f"upsampled to full size); 0: no bound (default {DEFAULT_MAX_PIXELS:,})")
    c.add_argument("--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    c.add_argument("-q", "--quiet", action="store_true", help="print only failures and their count")
    c.set_defaults(func=cmd_colorize)


def add_train(sub) -> None:
    t = sub.add_parser("train", help="train a model (paper Eq. 6, ADADELTA by default)",
                       description="Train on MiniPlaces (tar shards or folder), Places365-Standard or "
                                   "a folder of colour photos. Ctrl-C writes a checkpoint; --resume "
                                   "continues it exactly. Under torchrun, trains with DDP. The run "
                                   "folder gets log.csv (every step), val.csv (every epoch), "
                                   "config.json, checkpoints and the final model.",
                       epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", help="data root (default: $COLORLIB_DATA, else ../shared/data)")
    t.add_argument("--out", required=True, help="run folder (new, or existing with --resume)")
    t.add_argument("--config", choices=["paper", "miniplaces", "tiny"],
                   help="model preset (default miniplaces; --smoke: tiny)")
    t.add_argument("--variant", choices=["full", "baseline"],
                   help="full (default) or the paper's baseline: no global features, no classifier")
    t.add_argument("--alpha", type=float, help="classification loss weight (default 1/300; baseline: 0)")
    t.add_argument("--width", type=float, help="channel multiplier (1.0 = paper)")
    t.add_argument("--dropout", type=float, help="dropout before the global FC layers")
    t.add_argument("--optimizer", choices=["adadelta", "adamw"], help="default adadelta, as the paper")
    t.add_argument("--lr", type=float, help="learning rate (default 1.0 for ADADELTA, 1e-3 for AdamW)")
    t.add_argument("--weight-decay", type=float, help="decoupled weight decay on conv/FC weights (default 0)")
    t.add_argument("--schedule", choices=["constant", "cosine"],
                   help="learning-rate schedule (default constant; cosine: warm-up, then down to 0)")
    t.add_argument("--warmup-steps", type=int, help="linear warm-up steps of --schedule cosine (default 0)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="optimisation steps in all")
    g.add_argument("--epochs", type=float, help="passes over the training images (default 1)")
    t.add_argument("--batch-size", type=int, help="per process (default 128, as the paper)")
    t.add_argument("--min-scale", type=float, help="random-resized crop area (1.0 = paper's crop)")
    t.add_argument("--seed", type=int,
                   help="seed of weights, crops and order (default 0; CPU runs repeat exactly)")
    t.add_argument("--shards", type=int, help="use only the first N MiniPlaces training shards")
    t.add_argument("--limit", type=int, help="use only the first N training images")
    t.add_argument("--val-limit", type=int, help="validation images per pass (0: none)")
    t.add_argument("--checkpoint-every", type=int,
                   help="steps between checkpoints (default 500, and at the end)")
    t.add_argument("--log-every", type=int,
                   help="steps between progress-bar updates (default 10; every step is logged)")
    t.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                   help="default auto: bf16 autocast on CUDA, fp32 on CPU")
    t.add_argument("--device", type=device_option, help=f"{DEVICE_HELP} (default auto)")
    t.add_argument("--workers", type=int, help="decode workers")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--smoke", action="store_true",
                   help="a tiny CPU run (tiny config, 80 steps on 2,000 images): checks everything works")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)


def add_info(sub) -> None:
    i = sub.add_parser("info", help="show a model's config, training and validation figures")
    i.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name, weights file or run folder (default {DEFAULT_MODEL})")
    i.add_argument("--list", action="store_true", help="list the shipped models")
    i.add_argument("--json", action="store_true",
                   help="print the same figures (config, training, validation results) as JSON")
    i.set_defaults(func=cmd_info)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        sys.exit(2)
    try:
        a.func(a)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except UserError as e:
        print(f"colorlib {a.command}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except WriteError as e:  # a result that could not be saved (a full disk): one line, no traceback
        print(f"colorlib {a.command}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # the reader went away (`colorlib info --list | head -1`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        sys.exit(1)


if __name__ == "__main__":
    main()
