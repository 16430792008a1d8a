"""The ``colorlib`` command: colorize photos, classify them, train, inspect, evaluate, time and
export models. One module per group of commands, each over the library (which never imports
this package); :mod:`.common` holds what they share.

    colorlib colorize photo.jpg -o photo-color.png
    colorlib train --smoke --out runs/smoke
    colorlib info --model miniplaces-full
    colorlib export-onnx --model miniplaces-full -o onnx/miniplaces-full

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

from .. import _stop_the_command_on_ctrl_c

try:  # the commands' modules load more (PIL, tqdm, the study): Ctrl-C then is one line, exit 130 too
    from ..io import WriteError
    from . import apps, benchmark, classify, colorize, evaluate, export, info, study, train
    from .common import CommandFailed, Interrupted, OneLineParser, UserError, printable
except KeyboardInterrupt:
    _stop_the_command_on_ctrl_c()
    raise

#: The command modules, in the order ``colorlib --help`` lists them; each has ``add_parser(sub)``.
COMMANDS = (colorize, classify, train, info, evaluate, benchmark, study, apps, export)


def build_parser() -> argparse.ArgumentParser:
    """The ``colorlib`` parser: a subcommand per module of :data:`COMMANDS`; usage errors are one line."""
    p = OneLineParser(
        prog="colorlib",
        description="Automatic image colorization after Iizuka, Simo-Serra and Ishikawa, "
                    "'Let there be Color!' (SIGGRAPH 2016).",
        epilog="Shipped models: colorlib info --list. Data: --data, $COLORLIB_DATA or ../shared/data.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")  # subparsers are OneLineParsers too
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Run ``colorlib ARGV`` (default: the process's arguments). Exit status 0 when done; 1 when
    work failed (an input, a write, an export; one line each on stderr); 2 for a usage mistake
    found before any work (one line); 130 after Ctrl-C (one line: in a batch, how many inputs
    were done; ``train`` first saves a checkpoint)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        sys.exit(2)
    try:
        a.func(a)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except UserError as e:
        print(f"colorlib {a.command}: error: {printable(e)}", file=sys.stderr)
        sys.exit(2)
    except (WriteError, CommandFailed) as e:  # a result that could not be saved (a full disk): one line
        print(f"colorlib {a.command}: error: {printable(e)}", file=sys.stderr)
        sys.exit(1)
    except Interrupted as e:  # Ctrl-C in a batch: how far it got
        print(f"colorlib {a.command}: {printable(e)}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:  # Ctrl-C anywhere else (train handles its own: it saves a checkpoint)
        print(f"colorlib {a.command}: stopped by Ctrl-C; any file written is whole", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`colorlib info --list | head -1`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - the last resort: one line, never a traceback (issue 11)
        if os.environ.get("COLORLIB_DEBUG"):
            raise
        print(f"colorlib {a.command}: error: {printable(_one_line(e))} (COLORLIB_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        sys.exit(1)


def _one_line(e: BaseException) -> str:
    """An unexpected error in one line: an OSError as its reason and file (``File name too
    long: 'x...'``), anything else as its first line, cut to 300 characters."""
    if isinstance(e, OSError) and e.strerror:
        text = f"{e.strerror}: {str(e.filename)[:120]!r}" if e.filename else e.strerror
    else:
        text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."
