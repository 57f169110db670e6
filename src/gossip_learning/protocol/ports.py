"""The ports the agent talks through besides its transport: training, and (simulator only) a
central matching.

A :class:`Trainer` trains this robot's model on the robot's own data. The agent starts a job
in its TRAIN phase and collects the result at its next phase, so a trainer may run the job at
once (in-process), in a worker thread (a ROS node, whose executor must keep handling messages),
batched with every other robot of the round (the in-process simulator), or on a coprocessor.
"""

from __future__ import annotations

import math
import threading
from typing import Protocol

import numpy as np

from gossip_learning.messages import Layer
from gossip_learning.protocol.bounds import gap


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


class Learning:
    """The agent's side of the Trainer port: one job at a time, its result taken into the model
    by :meth:`settle` (before the model is used again)."""

    def __init__(self, trainer: Trainer | None) -> None:
        self.trainer = trainer
        self.loss = math.nan
        self._job: TrainJob | None = None

    def start(self, model: np.ndarray, round_no: int) -> None:
        """Start training from (a copy of) ``model``; nothing without a trainer."""
        if self.trainer is not None:
            self._job = self.trainer.start(model.copy(), round_no)

    def settle(self, model: np.ndarray, lock: threading.RLock) -> float | None:
        """Wait for the started job (outside ``lock``: messages are handled meanwhile), then
        write its result into ``model`` under ``lock``; return how far it moved the model, in
        norms of the result (None: no job)."""
        job, self._job = self._job, None
        if job is None:
            return None
        params, loss = job.result()
        with lock:
            moved, norm, _ = gap(params, model)
            np.copyto(model, params)
            self.loss = loss
        return moved / norm if norm > 0 else None


class Matchmaker(Protocol):
    """A central matching of the pairwise gossip (``gossip.matching: oracle``): what the
    simulator knows and a robot cannot. Each robot asks for its own partner; the answer is
    symmetric (if a's partner is b, b's is a)."""

    def partner(self, robot_id: int, layer: Layer, round_no: int, slot: int) -> int | None:
        """Robot ``robot_id``'s partner in the ``layer`` gossip step of round ``round_no`` whose
        first phase is ``slot``, or None (left unmatched)."""
        ...
