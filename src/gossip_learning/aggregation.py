"""Cumulative FedAvg: a running weighted sum in one model-sized buffer.

At the start of a gossip step ``S = n_i·w_i`` and ``N = n_i``; each model heard adds
``S += n_j·w_j`` and ``N += n_j``; at the end ``w_i = S / N``. Each distinct sender is merged at
most once per step. Memory does not grow with the number of neighbours.
"""

from __future__ import annotations

import numpy as np


class CumulativeFedAvg:
    """One robot's accumulator. ``peak_buffers`` counts model-sized arrays held at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._sum = np.zeros(size, dtype=np.float64)
        self._weight = 0.0
        self._senders: dict[int, float] = {}
        self._owner = -1
        self.active = False
        # own model + accumulator + the incoming (decoded) model being merged
        self.peak_buffers = 0

    def reset(self, owner: int, own: np.ndarray, weight: float) -> None:
        """Start a step from the robot's own model ``own`` with sample weight ``weight``."""
        if own.shape != (self.size,):
            raise ValueError(f"own model has shape {own.shape}, expected ({self.size},)")
        if weight <= 0:
            raise ValueError(f"own weight must be > 0, got {weight}")
        np.multiply(own, weight, out=self._sum)
        self._weight = float(weight)
        self._senders = {owner: float(weight)}
        self._owner = owner
        self.active = True
        self.peak_buffers = max(self.peak_buffers, 2)

    def add(self, sender: int, model: np.ndarray, weight: float) -> bool:
        """Merge ``model`` from ``sender``; return False (and merge nothing) for a repeat sender."""
        if not self.active:
            raise RuntimeError("add() before reset()")
        if sender in self._senders:
            return False
        if model.shape != (self.size,):
            raise ValueError(f"model has shape {model.shape}, expected ({self.size},)")
        if weight <= 0:
            raise ValueError(f"weight must be > 0, got {weight}")
        self.peak_buffers = max(self.peak_buffers, 3)
        self._sum += weight * model.astype(np.float64, copy=False)
        self._weight += float(weight)
        self._senders[sender] = float(weight)
        return True

    @property
    def merged(self) -> int:
        """Number of other senders merged this step."""
        return max(0, len(self._senders) - 1)

    def mixing_row(self) -> dict[int, float]:
        """Weight each sender's model got in the result (sums to 1)."""
        return {s: w / self._weight for s, w in self._senders.items()}

    def finalise(self) -> np.ndarray:
        """Return ``S / N`` as float32 and close the step."""
        if not self.active:
            raise RuntimeError("finalise() before reset()")
        self.active = False
        return (self._sum / self._weight).astype(np.float32)


def weighted_average(models: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sample-weighted mean of stacked models (what FedAvg over all robots computes)."""
    w = np.asarray(weights, dtype=np.float64)
    return (w @ models.astype(np.float64) / w.sum()).astype(np.float32)
