"""Signals from ``ros2 launch`` to its nodes that never take a node's exit status away.

Before Python 3.13, asyncio's subprocess transport signals a child through
``subprocess.Popen.send_signal``, which first *polls* the child: ``waitpid`` reaps it if it has
just exited. asyncio's child watcher then finds no child to wait for, logs "Unknown child process
pid N, will report returncode 255", and launch reports the node as died with exit code 255 although
it exited 0 (CPython gh-87744). A terminal Ctrl-C hits exactly this window: every node gets the
SIGINT from the terminal and exits at once, while launch forwards one more SIGINT to each.

:func:`signal_children_without_reaping` makes the transport look without reaping
(``waitid`` with ``WNOWAIT``): a child that has exited is left for the watcher and not signalled;
a running one gets the signal with ``os.kill``. Python 3.13 and later send with ``os.kill``
themselves and are left as they are.
"""

from __future__ import annotations

import os
import signal
import sys
from asyncio import base_subprocess

#: asyncio's own methods, as they were before anything here replaced them
STDLIB_METHODS = {
    name: getattr(base_subprocess.BaseSubprocessTransport, name)
    for name in ("send_signal", "terminate", "kill")
}


def has_exited(pid: int) -> bool:
    """Whether child ``pid`` has ended (or is no child of this process any more), without
    reaping it: its exit status stays for whoever waits for it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True  # reaped already: the pid may belong to another process by now
    return info is not None


def _send_signal(self: base_subprocess.BaseSubprocessTransport, sig: int) -> None:
    self._check_proc()  # ProcessLookupError once the transport is closed
    proc = self._proc
    assert proc is not None
    if self._returncode is None and not has_exited(proc.pid):
        os.kill(proc.pid, sig)


def _terminate(self: base_subprocess.BaseSubprocessTransport) -> None:
    _send_signal(self, signal.SIGTERM)


def _kill(self: base_subprocess.BaseSubprocessTransport) -> None:
    _send_signal(self, signal.SIGKILL)


def signal_children_without_reaping() -> bool:
    """Put the non-reaping ``send_signal``/``terminate``/``kill`` on asyncio's subprocess
    transport where this Python still reaps there (POSIX, before 3.13). Returns whether it is in
    place; calling it again changes nothing."""
    if sys.platform == "win32" or sys.version_info >= (3, 13):
        return False
    for name, method in (("send_signal", _send_signal), ("terminate", _terminate), ("kill", _kill)):
        setattr(base_subprocess.BaseSubprocessTransport, name, method)
    return True
