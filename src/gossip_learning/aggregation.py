"""Cumulative FedAvg: a running weighted sum in one model-sized accumulator.

At the start of a gossip step ``S = n_i·w_i`` and ``N = n_i``; each model heard adds
``S += n_j·w_j`` and ``N += n_j``; at the end ``w_i = S / N``. Each distinct sender is merged at
most once per step.

Memory is fixed when the accumulator is built and does not grow with the number of neighbours:
``S`` is a float64 vector and one float64 scratch vector holds ``n_j·w_j`` while it is added, so
``add`` allocates no model-sized temporaries (models are upcast before they are multiplied).
:attr:`CumulativeFedAvg.nbytes` is what the accumulator holds.

Bounded merges, in the same two vectors (O(1) model buffers): with ``max_rms`` a model whose
root-mean-square weight ``‖w‖/√size`` is over ``max_rms`` is refused (:meth:`out_of_bound`); with
``clip_ratio`` a model farther than ``r = clip_ratio · max(‖own‖, 1)`` from the robot's own model
is pulled onto that sphere, ``w ← own + r·(w − own)/‖w − own‖``, before it is weighted. The
accumulator keeps a reference to ``own``, which must not change while the step is open.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

ACC_DTYPE = np.float64


class SenderLog(Protocol):
    """What :func:`is_new_sender` reads of an accumulator."""

    active: bool
    size: int
    _senders: dict[int, float]


def is_new_sender(acc: SenderLog, sender: int, model: np.ndarray, weight: float) -> bool:
    """The merge rules every accumulator shares (this one and the RP2040's): a misuse raises, a
    sender already merged this step gives False (merge nothing), anything else True."""
    if not acc.active:
        raise RuntimeError("add() before reset()")
    if sender in acc._senders:
        return False
    if model.shape != (acc.size,):
        raise ValueError(f"model has shape {model.shape}, expected ({acc.size},)")
    if weight <= 0:
        raise ValueError(f"weight must be > 0, got {weight}")
    return True


def close_for_result(acc: SenderLog, out: np.ndarray) -> None:
    """The finalise rules every accumulator shares: an open step and an ``out`` of model size;
    closes the step (the caller then writes the average into ``out``)."""
    if not acc.active:
        raise RuntimeError("finalise() before reset()")
    if out.shape != (acc.size,):
        raise ValueError(f"out has shape {out.shape}, expected ({acc.size},)")
    acc.active = False


class CumulativeFedAvg:
    """One robot's accumulator: ``S`` and a scratch vector, both allocated once."""

    def __init__(self, size: int, max_rms: float = 0.0, clip_ratio: float = 0.0) -> None:
        self.size = size
        self.max_norm = max_rms * float(np.sqrt(size))
        self.clip_ratio = clip_ratio
        self._own: np.ndarray | None = None
        self._scale = 1.0  # max(‖own‖, 1) of the open step
        self.clipped = 0  # models pulled onto the clip sphere so far
        self._sum = np.zeros(size, dtype=ACC_DTYPE)
        self._scratch = np.zeros(size, dtype=ACC_DTYPE)
        self._weight = 0.0
        self._senders: dict[int, float] = {}
        self.active = False

    @property
    def nbytes(self) -> int:
        """Bytes of the model-sized arrays the accumulator holds (sum and scratch)."""
        return self._sum.nbytes + self._scratch.nbytes

    def reset(self, owner: int, own: np.ndarray, weight: float) -> None:
        """Start a step from the robot's own model ``own`` with sample weight ``weight``."""
        if own.shape != (self.size,):
            raise ValueError(f"own model has shape {own.shape}, expected ({self.size},)")
        if weight <= 0:
            raise ValueError(f"own weight must be > 0, got {weight}")
        self._sum[...] = own  # upcast first: n·w is formed in float64
        if self.clip_ratio:
            self._own = own
            self._scale = max(float(np.sqrt(self._sum @ self._sum)), 1.0)
        self._sum *= weight
        self._weight = float(weight)
        self._senders = {owner: float(weight)}
        self.active = True

    def add(self, sender: int, model: np.ndarray, weight: float) -> bool:
        """Merge ``model`` from ``sender``; return False (and merge nothing) for a repeat sender."""
        if not is_new_sender(self, sender, model, weight):
            return False
        self._scratch[...] = model  # upcast first: n·w is formed in float64
        if self.clip_ratio:
            self._clip()
        self._scratch *= weight
        self._sum += self._scratch
        self._weight += float(weight)
        self._senders[sender] = float(weight)
        return True

    def as_merged(self, model: np.ndarray) -> np.ndarray:
        """``model`` as :meth:`add` would merge it (pulled onto the clip sphere of the open
        step; unchanged without ``clip_ratio``), as a float64 copy. For accumulators that merge
        elsewhere (the RP2040's) and apply this robot's defence on the host first."""
        self._scratch[...] = model
        if self.clip_ratio:
            self._clip()
        return self._scratch.copy()

    def out_of_bound(self, model: np.ndarray) -> bool:
        """Whether ``model``'s norm is over the bound of the open step (False with no bound)."""
        if not self.max_norm:
            return False
        self._scratch[...] = model
        return not float(np.sqrt(self._scratch @ self._scratch)) <= self.max_norm

    def _clip(self) -> None:
        """Pull the model in the scratch vector to within ``clip_ratio·scale`` of the own one."""
        assert self._own is not None
        self._scratch -= self._own
        dist = float(np.sqrt(self._scratch @ self._scratch))
        radius = self.clip_ratio * self._scale
        if dist > radius:
            self._scratch *= radius / dist
            self.clipped += 1
        self._scratch += self._own

    @property
    def merged(self) -> int:
        """Number of other senders merged this step."""
        return max(0, len(self._senders) - 1)

    def mixing_row(self) -> dict[int, float]:
        """Weight each sender's model got in the result (sums to 1)."""
        return {s: w / self._weight for s, w in self._senders.items()}

    def discard(self) -> None:
        """Close the step without writing a result."""
        self.active = False

    def finalise(self, out: np.ndarray) -> np.ndarray:
        """Write ``S / N`` into ``out`` (the robot's float32 model, in place) and close the step."""
        close_for_result(self, out)
        self._sum /= self._weight
        out[...] = self._sum
        return out


def weighted_average(models: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sample-weighted mean of stacked models (what FedAvg over all robots computes)."""
    w = np.asarray(weights, dtype=np.float64)
    return (w @ models.astype(np.float64) / w.sum()).astype(np.float32)
