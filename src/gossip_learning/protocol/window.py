"""A merge window: cumulative FedAvg from the robot's own model.

``gossip.window: step`` (the default): a window opens at a gossip step's first phase and closes at
its FINISH, so the next step starts from that step's average. ``round`` (the authors' code): one
window per layer spans all of its steps; it opens at the layer's first step and closes at the
FINISH of its last one, so the model a robot sends in every step of the layer is the one it
entered the layer with (the post-training model on the intra layer), and a sender heard again in
a later step of the window is merged once (a repeat in another step is counted, not refused).
``gossip.window_start: before_training`` (one version of the authors' code): the round's first
window starts from the model the robot held before this round's local training, while the
models it receives are post-training ones; a robot that merges nobody keeps its trained model.
A model is merged only while a window is open for its step, and each sender at most once. The
window also logs, for the recorder, each window's mixing row and whether each step completed an
exchange.
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
        per_round: bool = False,
        untrained_own: bool = False,
    ) -> None:
        defence = defence or DefenceConfig()
        self.robot_id = robot_id
        self.per_round = per_round  # gossip.window: round
        # the model before training, held for the round's first window (``_held``)
        self._untrained = np.zeros(num_params) if untrained_own else None
        self._held = False
        self.acc: Accumulator = (
            CumulativeFedAvg(num_params, defence.max_rms, defence.clip_ratio)
            if acc is None
            else acc
        )
        # a second model in one sender's name within a step: someone else used its id
        self._repeat = "repeat_sender" if defence.checks else "duplicate"
        self._span: tuple[int, int] | None = None  # (first slot, finish slot) of the open window
        self._step_senders: set[int] = set()  # senders whose model arrived in the current step
        self.merged_total = 0
        self.repeats = 0  # round window: models of senders already merged in an earlier step
        self.has_partner = False
        self.mix_log: list[tuple[int, dict[int, float]]] = []
        self.exchanges: list[tuple[Layer, bool, bool]] = []

    @property
    def nbytes(self) -> int:
        """Model-sized memory of the accumulator (and of the held untrained model)."""
        return self.acc.nbytes + (0 if self._untrained is None else self._untrained.nbytes)

    def begin_round(self) -> None:
        """Forget the last round's logs."""
        self.mix_log = []
        self.exchanges = []

    def hold_untrained(self, model: np.ndarray) -> None:
        """Keep ``model`` (the one before local training) as the own term of the round's first
        window, when the window was made with ``untrained_own``."""
        if self._untrained is not None:
            self._untrained[:] = model
            self._held = True

    def open(self, own: np.ndarray, weight: float, first: int, finish: int) -> None:
        """Start a step at slot ``first`` whose FINISH is at slot ``finish``. With a round window
        still open (a later step of the same layer) the step joins it: the accumulator keeps
        what it merged and the window now ends at ``finish``."""
        if self.per_round and self._span is not None and self.acc.active:
            self._span = (self._span[0], finish)
        else:
            if self._held and self._untrained is not None:
                own, self._held = self._untrained, False
            self.acc.reset(self.robot_id, own, weight)
            self._span = (first, finish)
        self._step_senders = set()
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
            if msg.sender in self._step_senders or msg.sender == self.robot_id:
                return self._repeat
            # round window: merged in an earlier step of this window; the exchange is fine
            self._step_senders.add(msg.sender)
            self.repeats += 1
            return None
        self._step_senders.add(msg.sender)
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
        self._step_senders = set()
        return merged

    def close_step(self, slot: int, layer: Layer, model: np.ndarray, last: bool = True) -> None:
        """End a gossip step and log whether it completed an exchange; close the window unless
        it is a round window and this is not the ``last`` step of its layer."""
        completed = bool(self._step_senders)
        if not self.per_round or last:
            self.close(slot, model)
        self.exchanges.append((layer, self.has_partner, completed))
