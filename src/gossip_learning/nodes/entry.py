"""What the node executables (``scripts/<node>_node``, installed by ``setup.py``) run: SIGINT is
handled from their second line, before rclpy, numpy and the node's module load (seconds on a
busy robot), so a terminal Ctrl-C during start-up ends the process with status 0 and no
traceback, like one later on. They are plain scripts, not console_scripts entry points, whose
generated wrapper spends its first second in ``importlib.metadata`` where a Ctrl-C raises."""

from __future__ import annotations

import importlib
import signal
import threading
from typing import Any


def _first_interrupt_only(signum: int, frame: Any) -> None:
    """SIGINT handler: the first raises KeyboardInterrupt, every later one is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def interrupt_once() -> None:
    """Make SIGINT interrupt this process once. A terminal Ctrl-C reaches every process of the
    launch's group and launch forwards one more SIGINT to each, so a node sees two; the second
    must not raise inside the teardown (a traceback, and exit code -2 instead of 0). Call it
    before ``rclpy.init``: rclpy's handler shuts the context down and then calls this one."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _first_interrupt_only)


NODES = ("robot", "mobility", "monitor", "swarm", "plant")


def main(node: str) -> int:
    """Run ``<node>_node`` (one of :data:`NODES`): SIGINT first, then the node's module."""
    interrupt_once()
    if node not in NODES:
        raise SystemExit(f"unknown node {node!r}; one of {', '.join(NODES)}")
    try:
        run = importlib.import_module(f"gossip_learning.nodes.{node}").main
    except KeyboardInterrupt:
        return 0  # Ctrl-C while starting: nothing to tear down yet
    return int(run())
