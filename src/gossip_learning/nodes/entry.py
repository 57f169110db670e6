"""Console entry points of the node executables (``setup.py``): SIGINT is handled from the first
line, before rclpy, numpy and the node's module load (seconds on a busy robot). A terminal Ctrl-C
during start-up then ends the process with status 0 and no traceback, like one later on."""

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


def _run(module: str) -> int:
    interrupt_once()
    try:
        main = importlib.import_module(f"gossip_learning.nodes.{module}").main
    except KeyboardInterrupt:
        return 0  # Ctrl-C while starting: nothing to tear down yet
    return int(main())


def robot() -> int:
    """``robot_node``."""
    return _run("robot")


def mobility() -> int:
    """``mobility_node``."""
    return _run("mobility")


def monitor() -> int:
    """``monitor_node``."""
    return _run("monitor")


def swarm() -> int:
    """``swarm_node``."""
    return _run("swarm")


def plant() -> int:
    """``plant_node``."""
    return _run("plant")
