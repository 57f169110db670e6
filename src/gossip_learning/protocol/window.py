"""One gossip step's merge window: cumulative FedAvg from the robot's own model.

A window opens at the step's first phase and closes at its FINISH; a model is merged only while
its step's window is open, and each sender at most once. The window also logs, for the recorder,
each step's mixing row and whether an exchange was completed.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from gossip_learning.aggregation import CumulativeFedAvg
from gossip_learning.config import DefenceConfig
from gossip_learning.messages import Layer, Message


class Accumulator(Protocol):
    """What a merge window needs of its accumulator: :class:`CumulativeFedAvg`'s interface
    (the default), or a coprocessor's (``coprocessor.CoprocessorAccumulator``)."""

    active: bool

    @property
    def nbytes(self) -> int: ...

    @property
    def merged(self) -> int: ...

    def reset(self, owner: int, own: np.ndarray, weight: float) -> None: ...

    def out_of_bound(self, model: np.ndarray) -> bool: ...

    def add(self, sender: int, model: np.ndarray, weight: float) -> bool: ...

    def mixing_row(self) -> dict[int, float]: ...

    def discard(self) -> None: ...

    def finalise(self, out: np.ndarray) -> np.ndarray: ...


class MergeWindow:
    """The accumulator of one robot and the step it is open for (``acc``: default a
    :class:`CumulativeFedAvg` of ``num_params`` with the defence's norm bound and clipping)."""

    def __init__(
        self,
        robot_id: int,
        num_params: int,
        defence: DefenceConfig | None = None,
        acc: Accumulator | None = None,
    ) -> None:
        defence = defence or DefenceConfig()
        self.robot_id = robot_id
        self.acc: Accumulator = (
            CumulativeFedAvg(num_params, defence.max_rms, defence.clip_ratio)
            if acc is None
            else acc
        )
        # a second model in one sender's name within a step: someone else used its id
        self._repeat = "repeat_sender" if defence.checks else "duplicate"
        self._span: tuple[int, int] | None = None  # (first slot, finish slot) of the open step
        self.merged_total = 0
        self.has_partner = False
        self.mix_log: list[tuple[int, dict[int, float]]] = []
        self.exchanges: list[tuple[Layer, bool, bool]] = []

    @property
    def nbytes(self) -> int:
        """Model-sized memory of the accumulator."""
        return self.acc.nbytes

    def begin_round(self) -> None:
        """Forget the last round's logs."""
        self.mix_log = []
        self.exchanges = []

    def open(self, own: np.ndarray, weight: float, first: int, finish: int) -> None:
        """Start a step at slot ``first`` that closes at slot ``finish``."""
        self.acc.reset(self.robot_id, own, weight)
        self._span = (first, finish)
        self.has_partner = False

    def is_open_for(self, step: int) -> bool:
        """Whether a model of step ``step`` may be merged now."""
        return self._span is not None and self.acc.active and self._span[0] <= step < self._span[1]

    def merge(self, msg: Message) -> str | None:
        """Merge ``msg``'s model; else the reason it was not (its sender was already merged
        this step, or the model is outside the norm bound)."""
        assert msg.model is not None
        if self.acc.out_of_bound(msg.model):
            return "norm_bound"
        if not self.acc.add(msg.sender, msg.model, float(msg.samples)):
            return self._repeat
        self.merged_total += 1
        return None

    def close(self, slot: int, model: np.ndarray) -> int:
        """Close the step, writing the average into ``model`` if anything was merged; return
        the number of other senders merged."""
        merged = 0
        if self.acc.active:
            merged = self.acc.merged
            if merged:
                self.mix_log.append((slot, self.acc.mixing_row()))
                self.acc.finalise(out=model)
            else:
                self.acc.discard()
        self._span = None
        return merged

    def close_step(self, slot: int, layer: Layer, model: np.ndarray) -> None:
        """Close a gossip step and log whether it completed an exchange."""
        merged = self.close(slot, model)
        self.exchanges.append((layer, self.has_partner, merged > 0))
