"""Where a set of results came from: the command, the code version, the date and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=Path(__file__).resolve().parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def run_info(command: Sequence[str]) -> dict[str, Any]:
    """A JSON-able record of ``command`` run now, here (commit unknown outside a git checkout)."""
    try:
        commit = _git("rev-parse", "HEAD")
        if _git("status", "--porcelain", "--untracked-files=no"):
            commit += "+local changes"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "command": " ".join(command),
        "git_commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
        },
    }
