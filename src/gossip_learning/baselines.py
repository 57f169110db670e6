"""Baselines that are not gossip: CFL as an explicit server aggregator.

CFL (centralised FedAvg) robots train like every other robot; after training a server with
perfect links to all robots averages their models, weighted by sample counts, and hands the
average back. The simulator runs :meth:`CflServer.aggregate` right after the TRAIN phase.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gossip_learning.aggregation import weighted_average
from gossip_learning.protocol import RobotAgent


class CflServer:
    """FedAvg over every robot, once per round."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = np.asarray(samples, dtype=np.float64)

    def aggregate(self, agents: Sequence[RobotAgent], models: np.ndarray) -> None:
        """Average ``models`` (one row per agent) and hand the result to every agent."""
        avg = weighted_average(models, self.samples)
        for a in agents:
            a.adopt(avg)
