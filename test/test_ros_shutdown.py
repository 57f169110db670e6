"""``transports.ros.shutdown`` at the end of a node process that got Ctrl-C.

On SIGINT, rclpy's signal thread shuts the default context down by itself, at a moment of its
own, while the interrupted main thread tears down and shuts the context down too. Checking
``rclpy.ok()`` and then calling ``rclpy.shutdown()`` lost that race now and then ("rcl_shutdown
already called": a traceback and exit code 1 in ``test_ros_launch_interrupt``). Here the race is
run thousands of times in a fresh process (signal handlers and the default context are global),
loopback only; the check-then-shut version failed in 253 and 828 of 3000 runs on this machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")

from gossip_learning.nodes.launch_support import loopback_env, loopback_only

pytestmark = pytest.mark.ros

RACE = """
import os, signal, sys, rclpy
from gossip_learning.transports.ros import shutdown

signal.signal(signal.SIGINT, lambda *_: None)  # the node's own handler (no KeyboardInterrupt here)
failed = []
for _ in range(int(sys.argv[1])):
    rclpy.init()  # the default context: rclpy's SIGINT handling is installed
    os.kill(os.getpid(), signal.SIGINT)  # its signal thread now shuts the context down...
    try:
        shutdown()  # ...while this thread does it too
    except Exception as exc:
        failed.append(repr(exc))
    assert not rclpy.ok(), "the context is still up"
    rclpy.utilities.try_shutdown()  # a fresh default context for the next run
ctx = rclpy.Context()
rclpy.init(context=ctx)
shutdown(ctx)  # a context nobody else shuts down is shut down
assert not ctx.ok()
print(f"failed {len(failed)}", *failed[:3], sep="\\n")
"""


def test_shutdown_never_fails_when_rclpys_signal_thread_gets_there_first(tmp_path: Path) -> None:
    env = loopback_env(94, tmp_path / "ros_log")
    cmd = loopback_only([sys.executable, "-c", RACE, "3000"])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.splitlines()[0] == "failed 0", proc.stdout[-2000:]
