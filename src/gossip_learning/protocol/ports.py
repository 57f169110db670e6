"""The ports the agent talks through besides its transport: training.

A :class:`Trainer` trains this robot's model on the robot's own data. The agent starts a job
in its TRAIN phase and collects the result at its next phase, so a trainer may run the job at
once (in-process), in a worker thread (a ROS node, whose executor must keep handling messages),
batched with every other robot of the round (the in-process simulator), or on a coprocessor.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class TrainJob(Protocol):
    """A training call in progress."""

    def result(self) -> tuple[np.ndarray, float]:
        """Wait for and return (new params, training loss)."""
        ...


class Trainer(Protocol):
    """Trains one robot's model on its own data: ``train(params, round) -> (params, loss)``."""

    def start(self, params: np.ndarray, round_no: int) -> TrainJob:
        """Begin training from ``params`` (a copy the trainer may keep) for round ``round_no``."""
        ...
