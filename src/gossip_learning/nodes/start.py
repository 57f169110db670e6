"""The first import of the node executables (``scripts/*_node``), nothing else imports it: from
the moment it has loaded, a Ctrl-C ends the process with status 0 and no traceback, until
:func:`gossip_learning.nodes.entry.main` installs the handler the node runs with. Left before it:
the interpreter's own start-up and two near-empty package ``__init__`` files."""

from __future__ import annotations

import signal
from types import FrameType


def _leave_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


signal.signal(signal.SIGINT, _leave_quietly)

from gossip_learning.nodes.entry import mobility, monitor, plant, robot, swarm  # noqa: E402

__all__ = ["mobility", "monitor", "plant", "robot", "swarm"]
