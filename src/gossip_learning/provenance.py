"""Where a set of results came from: the command, the code version, the date and the machine.

The commit is read when the run starts (:func:`run_info`), with whether the checkout had
uncommitted changes to tracked files then (``git_dirty``; ``git_changed`` lists them). Changes
under ``docs/results/`` and ``docs/figures/`` do not count: they are what runs write, not code.
A run that writes into ``docs/results/`` from a dirty checkout is refused before any work
(:func:`refuse_dirty`) unless it was asked for (``--allow-dirty``, then recorded as
``allow_dirty``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Paths whose changes do not make a checkout dirty: the outputs that runs write.
OUTPUTS = ("docs/results/", "docs/figures/")


#: Where git is asked (the package's own checkout: the code that runs).
CHECKOUT = Path(__file__).resolve().parent


def _git(*args: str) -> str:
    """git's output, trailing whitespace dropped (a status line starts with a space)."""
    return subprocess.run(
        ["git", *args],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.rstrip()


def git_state() -> tuple[str, list[str]]:
    """The checkout's commit and its tracked files with uncommitted changes (outputs aside);
    ``("unknown", [])`` outside a git checkout."""
    try:
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "-z", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown", []
    # "XY path\0" (a rename adds "\0old path"): the path after the two status letters
    changed = [entry[3:] for entry in status.split("\0") if entry[2:3] == " "]
    return commit, [f for f in changed if not f.startswith(OUTPUTS)]


def repo_root() -> Path | None:
    """The top of the package's git checkout (None outside one)."""
    try:
        return Path(_git("rev-parse", "--show-toplevel"))
    except (OSError, subprocess.CalledProcessError):
        return None


def writes_published_results(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` lies in the checkout's ``docs/results/`` (what the docs are made from)."""
    root = repo_root()
    if path is None or root is None:
        return False
    return Path(path).resolve().is_relative_to((root / "docs" / "results").resolve())


def refuse_dirty(info: dict[str, Any], path: str | os.PathLike[str] | None) -> None:
    """Stop (before any work) a run from a dirty checkout that would write ``path`` into
    ``docs/results/``, unless ``info`` says it was allowed."""
    if info.get("git_dirty") and not info.get("allow_dirty") and writes_published_results(path):
        changed = ", ".join(info.get("git_changed", [])[:5])
        raise SystemExit(
            f"error: {path} is in docs/results/ but the checkout has uncommitted changes "
            f"({changed}): commit them first, or pass --allow-dirty (recorded in the file)"
        )


def load_avg() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def git_record(allow_dirty: bool = False) -> dict[str, Any]:
    """``git_commit``, ``git_dirty`` (and ``git_changed``, ``allow_dirty`` where they apply),
    read now: call it before the run."""
    commit, changed = git_state()
    out: dict[str, Any] = {"git_commit": commit, "git_dirty": bool(changed)}
    if changed:
        out["git_changed"] = changed
    if allow_dirty:
        out["allow_dirty"] = True
    return out


def run_info(command: Sequence[str], allow_dirty: bool = False) -> dict[str, Any]:
    """A JSON-able record of ``command`` starting now, here: call it before the run."""
    return {
        "command": " ".join(command),
        **git_record(allow_dirty),
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg": load_avg(),
        },
    }
