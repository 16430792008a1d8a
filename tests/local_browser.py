"""Debian's Chromium for the browser tests (the book's pages, the Voila apps): where it is, the
flags it runs with, and a free port on 127.0.0.1, the only address the tests reach. The
``browser`` fixture (tests/conftest.py) launches it through Playwright, never a downloaded one."""

from __future__ import annotations

import shutil
import socket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
