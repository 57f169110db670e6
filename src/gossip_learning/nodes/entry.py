"""Console entry points of the node executables (``setup.py``): SIGINT is handled before rclpy,
numpy and the node's module load (seconds on a busy robot), so a terminal Ctrl-C during start-up
ends the process with status 0 and no traceback, like one later on. The executables are
plain scripts (``scripts/*_node``) whose first import is :mod:`gossip_learning.nodes.start`, so
no entry-point lookup runs before it (setuptools' wrapper scanned the installed distributions
first: seconds on a loaded robot, in which a Ctrl-C printed a traceback)."""

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
    if node not in NODES:
        raise SystemExit(f"unknown node {node!r}; one of {', '.join(NODES)}")
    try:
        interrupt_once()  # inside the try: nodes/start.py's handler held until here
        from gossip_learning.nodes.process import lean_imports

        lean_imports()
        run = importlib.import_module(f"gossip_learning.nodes.{node}").main
    except KeyboardInterrupt:
        return 0  # Ctrl-C while starting: nothing to tear down yet
    return int(run())


def robot() -> int:
    """``robot_node``."""
    return main("robot")


def mobility() -> int:
    """``mobility_node``."""
    return main("mobility")


def monitor() -> int:
    """``monitor_node``."""
    return main("monitor")


def swarm() -> int:
    """``swarm_node``."""
    return main("swarm")


def plant() -> int:
    """``plant_node``."""
    return main("plant")
