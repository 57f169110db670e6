"""What a robot agent tells the outside: its round report, its status, its last training loss
and its DK-means state (read-only views, under the agent's lock where they read several fields)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from gossip_learning.dkmeans import ClusterState
from gossip_learning.protocol.report import RoundReport

if TYPE_CHECKING:
    from gossip_learning.protocol.membership import Membership
    from gossip_learning.protocol.ports import Learning


class AgentViews:
    """The reporting side of :class:`~gossip_learning.protocol.agent.RobotAgent`."""

    lock: threading.RLock
    _params: np.ndarray
    learning: Learning
    membership: Membership

    def report(self) -> RoundReport:
        """This robot's account of the round so far (for the recorder)."""
        with self.lock:
            return RoundReport.of(self)  # type: ignore[arg-type]

    def status(self) -> dict[str, Any]:
        """A JSON-able summary of this robot now (for monitors and logs)."""
        d = self.report().to_dict()
        d["param_norm"] = float(np.linalg.norm(self._params))
        return d

    @property
    def train_loss(self) -> float:
        """Mean loss of the last local training (NaN before any)."""
        return self.learning.loss

    @property
    def state(self) -> ClusterState:
        """This robot's DK-means state."""
        return self.membership.state
