"""Bounds relative to what honest robots send, for every path that writes a robot's model.

The fixed caps (``defence.max_samples``, ``defence.max_rms``) sit orders of magnitude above what
an honest robot sends (about 67 samples and 0.07 RMS on the quickstart), so a rogue just under
them still dominates a merge. These bounds are derived from the robot's own model and from what
its neighbours declared, so they follow the swarm:

* ``defence.norm_ratio``: a model whose norm is over ``norm_ratio · ‖own model‖`` is refused
  (``norm_ratio``): honest models of one swarm share an initial head and train on the same task,
  so their norms stay within a small factor of each other.
* ``defence.samples_ratio``: the weight a merged model gets is at most ``samples_ratio`` times the
  median of the sample counts declared in this round's beacons (the robot's own included):
  a sender that declares 10^6 samples weighs as much as a large honest neighbour, no more
  (counted in :attr:`Bounds.capped`, not a refusal).
* ``defence.dist_ratio``: a model farther from the own model than ``dist_ratio`` times the larger
  of the two norms is refused (``dist_ratio``). At 1 that is a model pointing more than 60°
  away from the own one at equal norms: honest neighbours, trained from the same head on the same
  task, stay within about half their norm of each other (0.56 at most on the quickstart), while
  a model of random weights lies about 1.4 norms away whatever its scale. The test is symmetric:
  two robots agree on whether their models are too far apart.

* ``defence.dist_median``: a model farther from the own model than ``dist_median`` times the
  median distance the robot's own training moved its model over its last rounds (both in norms
  of the own model) is pulled onto that sphere before it is weighted (counted in
  :attr:`Bounds.clipped`). The radius follows the robot's own data, not what others send, so no
  sender can widen it; honest neighbours lie about one training step apart.

All apply to the merge window (pairwise, broadcast and the head model in ``merge`` hand-off,
whatever the accumulator: numpy or the RP2040 coprocessor, since they run on the host before it)
and to the adopted head model (``adopt`` hand-off).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterable

import numpy as np

from gossip_learning.config import DefenceConfig
from gossip_learning.messages import Message

NORM_RATIO = "norm_ratio"
DIST_RATIO = "dist_ratio"
MOVES = 5  # training moves a robot keeps for dist_median (scalars: O(1))


def gap(model: np.ndarray, own: np.ndarray) -> tuple[float, float, float]:
    """(‖model − own‖, ‖model‖, ‖own‖), from norms and a dot product: no model-sized temporary."""
    with np.errstate(over="ignore", invalid="ignore"):  # finite float32 near 3e38: inf
        norm, own_norm = float(np.linalg.norm(model)), float(np.linalg.norm(own))
        square = norm * norm + own_norm * own_norm - 2.0 * float(np.dot(model, own))
    return math.sqrt(max(square, 0.0)), norm, own_norm  # NaN stays NaN: refused


class Bounds:
    """One robot's relative bounds (see the module docstring)."""

    def __init__(self, defence: DefenceConfig | None = None) -> None:
        defence = defence or DefenceConfig()
        self.norm_ratio = defence.norm_ratio
        self.max_rms = defence.max_rms
        self.samples_ratio = defence.samples_ratio
        self.dist_ratio = defence.dist_ratio
        self.dist_median = defence.dist_median
        self.capped = 0  # merged models whose weight was capped
        self.clipped = 0  # models pulled onto the dist_median sphere
        self._cap = 0.0  # the weight cap of this round (0 = none)
        self._moves: deque[float] = deque(maxlen=MOVES)  # training moves, in own norms

    def trained(self, moved: float | None) -> None:
        """The robot's own training moved its model ``moved`` own norms (None: no training)."""
        if moved is not None and math.isfinite(moved):
            self._moves.append(moved)

    def admit(self, msg: Message, own: np.ndarray) -> Message | str:
        """``msg`` as it may be taken (its model clipped, its weight capped), or a reason to
        refuse it."""
        assert msg.model is not None
        refused = self.refuse(msg.model, own)
        if refused is not None:
            return refused
        model, weight = self.clip(msg.model, own), self.weight(msg.samples)
        if model is msg.model and weight >= msg.samples:
            return msg
        return dataclasses.replace(msg, model=model, samples=max(1, min(msg.samples, int(weight))))

    def clip(self, model: np.ndarray, own: np.ndarray) -> np.ndarray:
        """``model``, or a copy pulled to ``dist_median`` times the median training move of the
        own model (unchanged while the robot has not trained)."""
        if not (self.dist_median and self._moves):
            return model
        dist, _, own_norm = gap(model, own)
        radius = self.dist_median * float(np.median(self._moves)) * own_norm
        if not dist > radius:
            return model
        self.clipped += 1
        pulled = (model - own) * np.float32(radius / dist)  # dist > radius >= 0: finite
        pulled += own
        return pulled

    def set_declared(self, own: int, declared: Iterable[int]) -> None:
        """This round's sample counts declared in the beacons heard (and the robot's own)."""
        if not self.samples_ratio:
            self._cap = 0.0
            return
        counts = [own, *(d for d in declared if d > 0)]
        self._cap = self.samples_ratio * float(np.median(counts))

    def weight(self, samples: int) -> float:
        """The weight a model declaring ``samples`` gets (capped relative to the median)."""
        if self._cap and samples > self._cap:
            self.capped += 1
            return self._cap
        return float(samples)

    def refuse(self, model: np.ndarray, own: np.ndarray) -> str | None:
        """A reason to refuse ``model`` given the robot's own model ``own``, or None."""
        if not (self.norm_ratio or self.dist_ratio):
            return None
        dist, norm, own_norm = gap(model, own)
        if self.max_rms and not norm <= self.max_rms * np.sqrt(model.size):
            return "norm_bound"  # the fixed bound's reason, as the merge window gives it
        if self.norm_ratio and own_norm > 0 and norm > self.norm_ratio * own_norm:
            return NORM_RATIO
        if self.dist_ratio and not dist <= self.dist_ratio * max(norm, own_norm):
            return DIST_RATIO
        return None
