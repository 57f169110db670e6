"""Minibatch order shared by every trainer, and the step plan of a batched (many-robot) run.

Numpy only: :class:`gossip_learning.learner.TorchTrainer` and the numpy trainer both draw their
shuffles from :func:`batch_order`, so for the same seed they see the same minibatches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BatchPlan", "batch_order", "num_steps"]


def batch_order(seed: int, n: int, epochs: int) -> list[np.ndarray]:
    """The sample order of each epoch: ``epochs`` permutations of ``range(n)`` (int64).

    Drawn in turn from ``np.random.default_rng(seed)``; epoch ``e`` uses minibatches
    ``order[e][0:b], order[e][b:2b], ...`` for batch size ``b`` (the last one may be short).
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if int(n) != n or n < 0 or int(epochs) != epochs or epochs < 0:
        raise ValueError(f"n and epochs must be integers >= 0, got n={n!r}, epochs={epochs!r}")
    rng = np.random.default_rng(int(seed))
    return [rng.permutation(int(n)).astype(np.int64, copy=False) for _ in range(int(epochs))]


def num_steps(n: int, epochs: int, batch_size: int) -> int:
    """Optimiser steps of one training call: ``epochs * ceil(n / batch_size)``."""
    return epochs * (-(-n // batch_size))


class BatchPlan:
    """Which samples each of ``k`` robots trains on at every step of a batched run.

    Robot ``j`` owns rows ``offsets[j] : offsets[j] + counts[j]`` of the stacked training data and
    shuffles them with ``batch_order(seeds[j], ...)``. Robots must come sorted by step count,
    most first, so the robots still training at step ``t`` are always a prefix ``0 .. k_t - 1``.
    Padding (a short batch next to a full one) points at ``pad_row``, a row of zeros.
    Memory: one int64 per sample per epoch (plus padding), not per robot per step.
    """

    def __init__(
        self,
        counts: Sequence[int],
        offsets: Sequence[int],
        seeds: Sequence[int],
        epochs: int,
        batch_size: int,
        pad_row: int,
    ) -> None:
        bs = int(batch_size)
        steps = np.array([num_steps(int(n), epochs, bs) for n in counts], dtype=np.int64)
        if np.any(steps < 1) or np.any(np.diff(steps) > 0):
            raise ValueError("robots must have samples and come sorted by step count, most first")
        self.batch_size = bs
        self.steps = steps
        self.total_steps = int(steps[0]) if len(steps) else 0
        self.seq_start = np.concatenate([[0], np.cumsum(steps * bs)[:-1]]).astype(np.int64)
        self.step_start = np.concatenate([[0], np.cumsum(steps)[:-1]]).astype(np.int64)
        seq = np.full(int(steps.sum()) * bs, pad_row, dtype=np.int64)
        sizes = np.full(int(steps.sum()), bs, dtype=np.int64)
        last = np.zeros(int(steps.sum()), dtype=bool)
        for j, (n, off, seed) in enumerate(zip(counts, offsets, seeds, strict=True)):
            per_epoch = int(steps[j]) // epochs
            block = seq[self.seq_start[j] : self.seq_start[j] + steps[j] * bs]
            block = block.reshape(epochs, per_epoch * bs)
            block[:, :n] = np.stack(batch_order(seed, int(n), epochs)) + int(off)
            s0 = int(self.step_start[j])
            sizes[s0 + per_epoch - 1 : s0 + steps[j] : per_epoch] = n - (per_epoch - 1) * bs
            last[s0 + steps[j] - per_epoch : s0 + steps[j]] = True
        self.seq, self.sizes, self.last = seq, sizes, last
        self._lane = np.arange(bs, dtype=np.int64)

    def active(self, t: int) -> int:
        """How many robots (a prefix) still have a minibatch at step ``t``."""
        return int(np.count_nonzero(self.steps > t))

    def step(self, t: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``(k, W)`` (``W`` = widest batch at step ``t``), real sizes ``(k,)`` and whether
        the step lies in each robot's last epoch ``(k,)``, for the first ``k`` robots."""
        at = self.step_start[:k] + t
        sizes = self.sizes[at]
        width = int(sizes.max())
        pos = (self.seq_start[:k] + t * self.batch_size)[:, None] + self._lane[None, :width]
        return self.seq[pos], sizes, self.last[at]
