"""A node process's age (time to active) and how it ends: its last output first, then out
without a per-entity DDS teardown.

Destroying a node's publishers and subscriptions one by one makes Fast DDS tell every matched
peer about every endpoint that goes; with 60 robot processes all ending in the same second on
two cores, every one of them sat in ``destroy_publisher`` past the 5 s teardown guard (exit 1
from the watchdog, in every process, on every run). A process that is done has nothing left to
say on DDS (its last reports went out during the linger), so :func:`end_process` writes the
node's own last output (``before_exit``: the monitor's plots, the plant's summary line), flushes
stdio and leaves with ``os._exit``; the operating system closes the sockets and shared memory.
Not even ``rclpy.shutdown``: at a load of 85 on two cores, eight of 60 processes spent more than
5 s of wall clock in its logging and signal-handler teardown (CPU-starved, not hung) and were cut
by the guard. The teardown guard (:func:`gossip_learning.nodes.base.teardown_guard`) still
bounds what is left, as the last resort it was meant to be.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

#: What the teardown guard prints when it fires (faulthandler's own line); benchmarks count it.
WATCHDOG_MARK = "Timeout ("


#: Modules a node process keeps out (``sys.modules`` entries of ``None``): rosidl_generator_py's
#: code generator (lark, empy; 7-8 MB of memory per process), which its package imports beside
#: the one function a message's type support needs at run time and treats as optional, and
#: OpenSSL's ``_hashlib`` (3-4 MB), which ``numpy.random`` pulls in through ``secrets``/``hmac``
#: and without which ``hashlib``/``hmac`` use Python's own SHA-2 (a fleet key's scrypt brings it
#: back: :func:`gossip_learning.auth.derive_key`).
LEAN_SKIPPED = ("rosidl_generator_py.generate_py_impl", "_hashlib")


def lean_imports() -> None:
    """Keep :data:`LEAN_SKIPPED` out of this process (a failed import, which their importers
    handle). Call it first, before numpy, rclpy or any message type is imported."""
    for name in LEAN_SKIPPED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def process_age_s() -> float:
    """Seconds since this process started (from ``/proc``: interpreter start-up and imports
    included); NaN where ``/proc`` is not there."""
    try:
        fields = Path("/proc/self/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime, field 22
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return math.nan
    return max(0.0, uptime - started)


def last_output(nodes: Iterable[Any]) -> None:
    """Call each node's ``before_exit`` (its final files and log lines), if it has one; a failure
    there is printed and does not stop the others."""
    for node in nodes:
        hook = getattr(node, "before_exit", None)
        if hook is None:
            continue
        try:
            hook()
        except Exception as exc:  # the process is ending: report, go on
            print(f"{type(node).__name__}.before_exit failed: {exc}", file=sys.stderr)


def end_process(
    code: int, nodes: Iterable[Any] = (), executor: Any = None, interrupted: bool = False
) -> NoReturn:
    """Leave this node process with ``code``: the nodes' last output, then stdio flushed and
    ``os._exit``, with no executor, context or DDS entity torn down (their threads and the
    participant end with the process). The flush runs under the teardown guard: a pipe the
    launch does not drain is the one thing left that could block. An ``interrupted`` process
    (SIGINT) shuts ``executor`` and the rcl context down first, under the same guard: a monitor
    that skipped it did not end on the launch's SIGINT in the launch tests (cause not found)."""
    from gossip_learning.nodes.base import teardown_guard

    last_output(nodes)
    with teardown_guard():
        if interrupted:  # Ctrl-C / the launch's SIGINT: the orderly context shutdown, as before
            from gossip_learning.transports.ros import shutdown

            if executor is not None:
                executor.shutdown(timeout_sec=1.0)
            shutdown()
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    raise AssertionError("unreachable")  # pragma: no cover
