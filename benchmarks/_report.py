"""What every benchmark script shares: the machine it ran on and the JSON report it writes.

A report is ``{"benchmark", "command", "git_commit", "git_dirty", "date", "machine", "records"}``:
``command`` is the command line that produced it, ``git_commit`` the commit read when the report
was made (before the measurement), ``git_dirty`` whether tracked files had uncommitted changes then
(see :mod:`gossip_learning.provenance`), ``machine`` the CPU count, platform, processor, library
versions and the load average before and after the measurement (other processes on the machine
slow every figure down), ``records`` one flat dict of numbers/strings per measured line.

    report = Report("feature_extraction", out=args.json, allow_dirty=args.allow_dirty)
    ...measure...
    report.add(images=2000, images_per_s=412.0)
    report.write(args.json)                 # JSON with the load average after; None: no file
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import gossip_learning
from gossip_learning import atomic

ROOT = Path(__file__).resolve().parents[1]


def provenance() -> ModuleType:
    """``gossip_learning.provenance`` of the code that runs; for an older checkout measured
    through ``PYTHONPATH`` that predates it (the before-rework benchmark), this checkout's module
    asking git about that checkout (its commit and whether its tree is clean)."""
    try:
        from gossip_learning import provenance as own

        return own
    except ImportError:
        pass
    spec = importlib.util.spec_from_file_location(
        "_provenance_of_older_checkout", ROOT / "src" / "gossip_learning" / "provenance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.CHECKOUT = Path(gossip_learning.__file__).resolve().parent
    return module


def command_line(argv: list[str] | None = None) -> str:
    """``python <script> <args>`` as typed from the repository root (script path relative),
    with ``PYTHONPATH=...`` in front when it was set (e.g. to measure another checkout's code)."""
    args = list(sys.argv if argv is None else argv)
    script = Path(args[0]).resolve() if args else Path("?")
    try:
        shown = script.relative_to(ROOT).as_posix()
    except ValueError:
        shown = str(script)
    env = [f"PYTHONPATH={os.environ['PYTHONPATH']}"] if os.environ.get("PYTHONPATH") else []
    return shlex.join([*env, "python", shown, *args[1:]])


def processor() -> str:
    """CPU model name (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_avg() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def format_load(load: list[float]) -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*load)


def machine(load_before: list[float], load_after: list[float]) -> dict[str, Any]:
    """The machine and library versions; torch only if the benchmark imported it."""
    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": processor(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    out["load_avg_before"] = load_before
    out["load_avg_after"] = load_after
    return out


def allow_dirty_flag(parser: argparse.ArgumentParser) -> None:
    """``--allow-dirty``: write into docs/results/ from a checkout with uncommitted changes."""
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="write --json into docs/results/ although tracked files have uncommitted changes "
        "(recorded in the report)",
    )


class Report:
    """Collects records of one benchmark run and writes them as JSON. Made before the
    measurement: it reads the commit then, and refuses (SystemExit) a report for ``out`` in
    docs/results/ from a dirty checkout unless ``allow_dirty``."""

    def __init__(
        self,
        name: str,
        argv: list[str] | None = None,
        out: str | os.PathLike[str] | None = None,
        allow_dirty: bool = False,
    ) -> None:
        self.name = name
        self.command = command_line(argv)
        prov = provenance()
        self.git = prov.git_record(allow_dirty)
        prov.refuse_dirty(self.git, out)
        self.load_before = load_avg()
        self.records: list[dict[str, Any]] = []

    def add(self, **record: Any) -> dict[str, Any]:
        """Add one measured line (flat: numbers and strings); returns it."""
        for key, value in record.items():
            if not isinstance(value, str | int | float | bool) and value is not None:
                raise TypeError(f"record field {key!r} is {type(value).__name__}, not a scalar")
        self.records.append(record)
        return record

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "command": self.command,
            **self.git,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(self.load_before, load_avg()),
            "records": self.records,
        }

    def write(self, path: str | os.PathLike[str] | None) -> dict[str, Any]:
        """Write the report to ``path`` (if given, atomically) and return it."""
        report = self.as_dict()
        if path is not None:
            atomic.write_text(path, json.dumps(report, indent=2) + "\n")
            print(f"wrote {path}")
        return report
