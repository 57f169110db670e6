"""Local training in numpy: one head, or every robot's head of a round in one batched call.

:class:`NumpyTrainer` matches :class:`gossip_learning.learner.TorchTrainer` (same minibatches from
:func:`batch_order`, same float32 arithmetic in torch's order; results agree to float32 rounding)
without importing torch. :meth:`NumpyTrainer.train_many` stacks the heads of many robots and runs
one batched matmul per layer per step for all of them, each robot with its own data, minibatch
order (from its own seed) and optimiser state; it returns what calling :meth:`NumpyTrainer.train`
robot by robot returns, to rounding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from gossip_learning.learner import (
    TrainerSettings,
    _check_label_range,
    _check_params,
    _training_data,
)
from gossip_learning.learning.batching import BatchPlan, batch_order, num_steps
from gossip_learning.learning.kernels import OptimizerConfig, Workspace, run_group

__all__ = ["NumpyTrainer", "batch_order"]

# Parameters (floats) of the robots trained together in one group: 8 paper MLP heads, 162 linear
# ones. Small groups keep each step's gradients and Adam moments in cache; measured (CPU time, 60
# robots x 833 samples): groups of 8 train ~10% faster than 30 or 60, and 2 or 4 are slower again.
_GROUP_ELEMS = 1 << 18


class NumpyTrainer(TrainerSettings):
    """Local training of heads with numpy; a fresh optimiser every call, scratch buffers reused.

    Same arguments and the same ConfigErrors as :class:`~gossip_learning.learner.TorchTrainer`.
    ``threads`` caps the BLAS threads during training (via threadpoolctl, when installed): use 1
    when other busy processes share the cores. A trainer is not safe to share between threads.
    """

    def _setup(self) -> None:
        self._opt = OptimizerConfig(self.optimizer, self.lr, self.weight_decay)
        self._sizes = self.spec.layer_sizes()
        self._ws = Workspace()
        self._blas: Any = None

    def train(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, seed: int
    ) -> tuple[np.ndarray, float]:
        """Train from ``params`` (P,) on (X, y); return (new params, mean loss of the last epoch).

        The new params are a float32 copy. Minibatches follow :func:`batch_order`
        ``(seed, n, epochs)``. Empty X (or epochs=0) returns a copy of ``params`` and NaN.
        """
        p = _check_params(self.spec, params)
        if p.ndim != 1:
            raise ValueError("train takes one model of shape (P,)")
        new, losses = self.train_many(p[None, :], [(X, y)], [seed])
        return new[0], float(losses[0])

    def train_many(
        self,
        params: np.ndarray,
        data: Sequence[tuple[np.ndarray, np.ndarray]],
        seeds: Sequence[int],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Train R robots' heads ``params`` (R, P), robot r on ``data[r]`` = (X_r, y_r) with seed
        ``seeds[r]``; return (new params (R, P) float32, last-epoch mean losses (R,) float64).

        Equal, to float32 rounding, to ``train(params[r], *data[r], seeds[r])`` for each r; a
        robot without samples keeps its params and gets a NaN loss. Robots are trained in groups
        of similar step counts; each step runs at the widest batch among the group's robots (the
        rest padded and masked), so a robot's result can differ from its one-by-one result in the
        last bits (~1e-8 measured), never more unless a ReLU input sits within rounding of zero.
        """
        p = _check_params(self.spec, params)
        if p.ndim != 2:
            raise ValueError("train_many takes stacked models of shape (R, P)")
        n_robots = p.shape[0]
        if len(data) != n_robots or len(seeds) != n_robots:
            raise ValueError(
                f"need one (X, y) and one seed per robot: {n_robots} robots, "
                f"{len(data)} data sets, {len(seeds)} seeds"
            )
        checked = [_training_data(self.spec, X, y) for X, y in data]
        for r, seed in enumerate(seeds):
            if int(seed) != seed or seed < 0:
                raise ValueError(f"seed of robot {r} must be an integer >= 0, got {seed!r}")
        out = np.array(p, dtype=np.float32, order="C", copy=True)
        losses = np.full(n_robots, np.nan)
        if self.epochs == 0:
            return out, losses
        counts = np.array([len(lab) for _, lab in checked], dtype=np.int64)
        for _, lab in checked:
            _check_label_range(self.spec, lab)
        live = np.flatnonzero(counts > 0)
        steps = np.array([num_steps(int(n), self.epochs, self.batch_size) for n in counts[live]])
        order = live[np.argsort(-steps, kind="stable")]  # most steps first: active robots a prefix
        per_group = max(1, _GROUP_ELEMS // self.spec.num_params())
        groups = np.array_split(order, -(-len(order) // per_group)) if len(order) else []
        with self._blas_limit():
            for idx in groups:
                block = out[idx]  # a C-contiguous copy, trained in place
                sums = self._run(block, [checked[r] for r in idx], [int(seeds[r]) for r in idx])
                out[idx] = block
                losses[idx] = sums / counts[idx]
        return out, losses

    def _run(
        self, block: np.ndarray, data: list[tuple[np.ndarray, np.ndarray]], seeds: list[int]
    ) -> np.ndarray:
        counts = [len(lab) for _, lab in data]
        total = sum(counts)
        xs = self._ws.get("xs", (total + 1, self.spec.in_dim))
        np.concatenate([x for x, _ in data], axis=0, out=xs[:total])
        xs[total] = 0.0  # the padding row
        ys = np.concatenate([*(lab for _, lab in data), np.zeros(1, np.int64)])
        offsets = [0, *np.cumsum(counts)[:-1].tolist()]
        plan = BatchPlan(counts, offsets, seeds, self.epochs, self.batch_size, pad_row=total)
        return run_group(self._sizes, block, xs, ys, plan, self._opt, self._ws)

    def _blas_limit(self) -> Any:
        """Context capping the BLAS threads to ``self.threads`` (a no-op when not set)."""
        if self.threads is None:
            return contextlib.nullcontext()
        if self._blas is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # optional: without it training runs with the default threads
                self._blas = False
            else:
                self._blas = ThreadpoolController()
        if self._blas is False:
            return contextlib.nullcontext()
        return self._blas.limit(limits=self.threads, user_api="blas")
