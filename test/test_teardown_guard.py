"""A node process whose DDS teardown hangs still ends: the guard needs no GIL.

Fast DDS 2.14 can spin for good while destroying a participant, inside a C call that holds the
GIL. Here a C call that holds the GIL (``ctypes.PyDLL``: libc's ``sleep`` without releasing it)
stands in for it; a guard built on a Python timer would wait the whole sleep.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")

_HANG = """
import ctypes
from gossip_learning.nodes.base import teardown_guard
with teardown_guard(1.0):
    ctypes.PyDLL(None).sleep(60)  # holds the GIL for 60 s
print("guard did not fire")
"""

_QUICK = """
from gossip_learning.nodes.base import teardown_guard
with teardown_guard(1.0):
    pass
import time
time.sleep(1.5)  # past the guard's deadline: it was cancelled
print("done")
"""


def test_a_teardown_that_holds_the_gil_is_cut_short() -> None:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _HANG], capture_output=True, text=True, timeout=50)
    assert time.monotonic() - start < 30
    assert proc.returncode == 1
    assert "Timeout" in proc.stderr and "guard did not fire" not in proc.stdout


def test_a_teardown_that_ends_in_time_leaves_the_exit_code_alone() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _QUICK], capture_output=True, text=True, timeout=50
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
