"""A signal that reaches a node just after it exited must not cost launch the node's exit status.

The race of a terminal Ctrl-C is made deterministic here: the child exits, the event loop (whose
SIGCHLD handler collects children) is kept from running until the late signal has been sent."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import warnings
from asyncio import base_subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossip_learning.nodes.child_signals import (
    STDLIB_METHODS,
    has_exited,
    signal_children_without_reaping,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/stat")
OLD_PYTHON = sys.version_info < (3, 13)  # sends through Popen.send_signal, which reaps


@pytest.fixture(autouse=True)
def _restore_transport(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from asyncio's own methods (a launch file loaded earlier in this process
    may have replaced them), and whatever was there is put back afterwards."""
    cls = base_subprocess.BaseSubprocessTransport
    for name, method in STDLIB_METHODS.items():
        monkeypatch.setattr(cls, name, method)
    yield


def _zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_zombie(pid: int) -> None:
    """Blocks (never yields to an event loop) until child ``pid`` has exited, unreaped."""
    end = time.monotonic() + 30
    while not _zombie(pid):
        assert time.monotonic() < end, "the child did not exit"
        time.sleep(0.01)


def _late_signal_exit_code(sig: int, method: str = "send_signal") -> int:
    """Exit code asyncio reports for a child that exits 0 and is signalled before the loop has
    collected it (a SIGCHLD watcher: children are collected only when the loop runs)."""

    async def run() -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            watcher = asyncio.SafeChildWatcher()
            watcher.attach_loop(asyncio.get_running_loop())
            asyncio.set_child_watcher(watcher)
        try:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
            _wait_zombie(proc.pid)
            getattr(proc, method)(*([sig] if method == "send_signal" else []))
            return await asyncio.wait_for(proc.wait(), 30)
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                asyncio.set_child_watcher(None)
            watcher.close()

    return asyncio.run(run())


needs_watchers = pytest.mark.skipif(
    not hasattr(asyncio, "SafeChildWatcher"), reason="this Python has no child watchers"
)


@needs_watchers
@pytest.mark.skipif(not OLD_PYTHON, reason="this Python's asyncio signals without reaping")
def test_without_it_a_late_signal_turns_exit_0_into_255() -> None:
    """The failure the fix is for, on this Python: asyncio reports 255 for a clean exit."""
    assert _late_signal_exit_code(signal.SIGINT) == 255


@needs_watchers
@pytest.mark.parametrize("method", ["send_signal", "terminate", "kill"])
def test_with_it_a_late_signal_keeps_the_real_exit_code(method: str) -> None:
    assert signal_children_without_reaping() == OLD_PYTHON
    assert _late_signal_exit_code(signal.SIGINT, method) == 0


@pytest.mark.parametrize(
    ("method", "code"),
    [("send_signal", -signal.SIGINT), ("terminate", -signal.SIGTERM), ("kill", -signal.SIGKILL)],
)
def test_a_running_child_still_gets_the_signal(method: str, code: int) -> None:
    signal_children_without_reaping()

    async def run() -> int:
        # a shell's background job hands its children SIGINT ignored: restore the default
        proc = await asyncio.create_subprocess_exec(
            "sleep", "60", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
        )
        getattr(proc, method)(*([signal.SIGINT] if method == "send_signal" else []))
        return await asyncio.wait_for(proc.wait(), 30)

    assert asyncio.run(run()) == code


def test_a_second_call_changes_nothing() -> None:
    cls = base_subprocess.BaseSubprocessTransport
    signal_children_without_reaping()
    first = (cls.send_signal, cls.terminate, cls.kill)
    assert signal_children_without_reaping() == OLD_PYTHON
    assert (cls.send_signal, cls.terminate, cls.kill) == first


def test_has_exited_leaves_the_exit_status_to_the_waiter() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    _wait_zombie(child.pid)
    assert has_exited(child.pid)
    assert has_exited(child.pid)  # asked twice: still there to be collected
    assert child.wait(timeout=30) == 3
    assert has_exited(child.pid)  # collected: no child of ours any more


def test_has_exited_is_false_for_a_running_child() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert not has_exited(child.pid)
    finally:
        child.kill()
        child.wait()
