"""``colorlib apps``: start the class apps (:mod:`colorlib.apps`) in Voila, which runs each
notebook in a kernel of its own for every browser tab and shows its widgets, never its code.

    colorlib apps study --answers class-answers/      # the naturalness study, one CSV per participant
    colorlib apps style                               # style transfer: two photos and a mixing slider
    colorlib apps style --ip 0.0.0.0 --port 8866      # for a class: reachable from other machines
    colorlib apps alpha --runs alpha-runs/            # chapter 5's alpha control, its runs kept there

Voila comes with the ``apps`` extra (``pip install "colorlib[apps]"``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from ..apps import (
    ALPHA_RUNS,
    ALPHA_STEPS,
    INSTALL_APPS,
    STUDY_ANSWERS,
    STUDY_SEED,
    STUDY_STIMULI,
    STUDY_TRIALS,
    alpha_runs_dir,
    notebook,
)
from .common import UserError, check_folder


def _study_settings(a: argparse.Namespace) -> dict[str, str]:
    """The study app's environment: the stimuli (loaded from ``--stimuli``, else rendered once
    here, so no participant waits for it), the answers folder, trials per condition and seed."""
    from ..study import Stimuli, StudyError, make_stimuli  # loads torch only when rendering

    if a.images < 1 or a.trials is not None and a.trials < 1:  # --trials 0 was the default, -1 'needs -3 photos'
        raise UserError(f"{'--images' if a.images < 1 else '--trials'} must be at least 1, "
                        f"got {a.images if a.images < 1 else a.trials}")
    check_folder(a.answers, "--answers")  # before rendering (seconds), not when the first answer comes
    try:
        stimuli = Stimuli.load(a.stimuli) if a.stimuli else make_stimuli(n_images=a.images, seed=a.seed)
    except StudyError as e:
        raise UserError(str(e)) from None
    trials = a.trials or len(stimuli) // len(stimuli.conditions)
    if trials < 1 or trials * len(stimuli.conditions) > len(stimuli):
        raise UserError(f"--trials {trials} per condition x {len(stimuli.conditions)} conditions needs "
                        f"{trials * len(stimuli.conditions)} photos; the stimuli have {len(stimuli)}")
    answers = Path(a.answers).resolve()
    answers.mkdir(parents=True, exist_ok=True)
    print(f"stimuli: {len(stimuli)} photos x {len(stimuli.conditions)} conditions ({stimuli.manifest})\n"
          f"answers: {answers} (one CSV per participant; merge them with `colorlib study {a.answers}`)")
    return {STUDY_STIMULI: str(stimuli.manifest.resolve()), STUDY_ANSWERS: str(answers),
            STUDY_TRIALS: str(trials), STUDY_SEED: str(a.seed)}


def _alpha_settings(a: argparse.Namespace) -> dict[str, str]:
    """The alpha app's environment: its runs folder (made now, absolute) and steps per run."""
    if a.steps < 1:
        raise UserError(f"--steps must be at least 1, not {a.steps}")
    runs = check_folder(a.runs, "--runs").resolve() if a.runs else alpha_runs_dir()
    if not a.runs:
        check_folder(runs, "the runs folder ($COLORLIB_CACHE/alpha-lab; give --runs)")
    runs.mkdir(parents=True, exist_ok=True)
    print(f"runs: {runs} ({a.steps} steps each; delete a run's folder to train it again)")
    return {ALPHA_RUNS: str(runs), ALPHA_STEPS: str(a.steps)}


def _data_settings() -> dict[str, str]:
    """The data folder this command finds (``$COLORLIB_DATA``, else ``../shared/data`` beside the
    repository or the current folder), handed to the kernels: Voila starts them in the notebook's
    folder inside the package, where ``../shared/data`` names nothing. None found: the apps use
    the package photos and say so."""
    from ..data import DataError, data_root

    try:
        return {"COLORLIB_DATA": str(data_root().resolve())}
    except DataError as e:
        if os.environ.get("COLORLIB_DATA"):  # set, but wrong: say so before serving
            raise UserError(str(e)) from None
        return {}


def port_number(text: str) -> int:
    """``--port``: a TCP port, 1 to 65535 (else one usage line, exit 2)."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text!r}")
    return port


#: ``--port``'s default, and how many ports after it are tried when it is taken (``--port`` given: none).
DEFAULT_PORT = 8866
PORT_TRIES = 20


def _check_address(ip: str, port: int | None) -> int:
    """The port to serve on at ``--ip``: ``--port`` itself, or without it the first free one of
    8866, 8867, ... (:data:`PORT_TRIES`). Checked by binding it as Voila will (tornado's
    ``bind_sockets``, then closed at once), so every mistake is one line, exit 2, before any work:
    an address that is no address or not this machine's, a port in use or not allowed.

    A port given with ``--port`` that is in use is refused, never replaced: the teacher has told
    the class that address, and the server already on it (often the last lesson's app, still
    running) is not this one. Voila is then told not to look for another (``port_retries=0``)."""
    import errno
    import socket

    from tornado.netutil import bind_sockets

    for candidate in [port] if port else range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES):
        try:
            for s in bind_sockets(candidate, ip or None):
                s.close()
            return candidate
        except (socket.gaierror, UnicodeError) as e:
            raise UserError(f"--ip {ip}: not an address to serve on ({e})") from None
        except OSError as e:
            if e.errno == errno.EADDRINUSE and not port:
                continue
            if e.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} is in use on {ip} (another server, perhaps an app still "
                                f"running): stop it, or give another --port") from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise UserError(f"--ip {ip}: not an address of this machine (127.0.0.1: this machine "
                                f"only; 0.0.0.0: every network it is on)") from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise UserError(f"no permission to serve on port {candidate} (ports below 1024 need "
                                f"root): give --port {DEFAULT_PORT} or another above 1023") from None
            raise UserError(f"cannot serve on {ip} port {candidate}: {e.strerror or e}") from None
    raise UserError(f"ports {DEFAULT_PORT} to {DEFAULT_PORT + PORT_TRIES - 1} are all in use on {ip}: "
                    "give a free one with --port")


def _url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip  # an IPv6 address
    return f"http://{host or '0.0.0.0'}:{port}/"


def cmd_apps(a: argparse.Namespace) -> None:
    """Print the app's notebook path (``--path``), or replace this process by Voila serving it."""
    path = notebook(a.app)
    if a.path:
        print(path)
        return
    if importlib.util.find_spec("voila") is None:
        raise UserError(f"the apps run in Voila, which is not installed: {INSTALL_APPS}")
    port = _check_address(a.ip, a.port)
    env = dict(os.environ, **_data_settings())
    if a.app == "study":
        env.update(_study_settings(a))
    elif a.app == "alpha":
        env.update(_alpha_settings(a))
    args = [sys.executable, "-m", "voila", str(path), f"--port={port}", f"--Voila.ip={a.ip}",
            "--Voila.port_retries=0"]  # the port checked above, or Voila's own error: never another one
    args += ["--no-browser"] if a.no_browser else []
    taken = f" ({DEFAULT_PORT} is in use)" if not a.port and port != DEFAULT_PORT else ""
    print(f"starting Voila on {_url(a.ip, port)}{taken} (Ctrl-C stops it)", flush=True)
    sys.stderr.flush()
    os.execve(sys.executable, args, env)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib apps`` and its options."""
    s = sub.add_parser("apps", help="start a class app in Voila: the user study, style transfer or alpha",
                       description="Serve one of colorlib's apps with Voila (pip install \"colorlib[apps]\"): "
                                   "'study', the naturalness study of Figure 5 (each participant types an id; "
                                   "answers go to --answers, one CSV per participant, the format "
                                   "`colorlib study` merges); 'style', style transfer through the global "
                                   "features (section 4.5); or 'alpha', chapter 5's \"tweak alpha by hand\" "
                                   "(choose the weight of the class loss in Eq. 6, train a small model on the "
                                   "CPU, compare the runs; they are kept in --runs). Voila has no login: on a "
                                   "shared network, serve it behind the class's JupyterHub or a proxy with one.")
    s.add_argument("app", choices=["study", "style", "alpha"])
    s.add_argument("--port", type=port_number,
                   help=f"port to serve on, 1-65535; refused when in use (default {DEFAULT_PORT}, or the next "
                        "free one, said when it starts)")
    s.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for a class)")
    s.add_argument("--no-browser", action="store_true", help="do not open a browser")
    s.add_argument("--path", action="store_true", help="print the app's notebook path (for voila) and exit")
    g = s.add_argument_group("study")
    g.add_argument("--answers", default="study-answers",
                   help="folder of the participants' CSVs (default study-answers)")
    g.add_argument("--stimuli", metavar="MANIFEST",
                   help="a rendered stimuli set (manifest-n*.json of colorlib.study.make_stimuli, the "
                        "classroom kit's study-stimuli/); default: render --images photos once")
    g.add_argument("--images", type=int, default=6,
                   help="photos to render without --stimuli (MiniPlaces val when found, else the "
                        "packages' photos; default 6)")
    g.add_argument("--trials", type=int, help="trials per condition (default: as many as the photos allow)")
    g.add_argument("--seed", type=int, default=0, help="seed of the participants' orders (default 0)")
    g = s.add_argument_group("alpha")
    g.add_argument("--runs", metavar="FOLDER",
                   help="folder of the trained runs, shared by every tab (default $COLORLIB_CACHE/alpha-lab, "
                        "else ~/.cache/colorlib/alpha-lab)")
    g.add_argument("--steps", type=int, default=120,
                   help="training steps per run (default 120, chapter 5's: about a minute on a CPU)")
    s.set_defaults(func=cmd_apps)
