"""Trainers behind the agent's :class:`~gossip_learning.protocol.ports.Trainer` port.

* :class:`LocalTrainer` trains at once (in-process, tests);
* :class:`ThreadedTrainer` trains in a worker thread (ROS nodes: the executor keeps handling
  messages meanwhile);
* :class:`BatchedTrainer` collects the jobs of every robot of a round and runs them in one batched
  call the first time any result is asked for (the in-process simulator).

Each wraps an engine with ``train(params, X, y, seed) -> (params, loss)`` (and, for batching,
``train_many(params (R, P), [(X, y), ...], seeds) -> ((R, P), losses)``) and robot-local data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

import numpy as np


class Engine(Protocol):
    """Local training of one head: the numpy or torch trainer."""

    def train(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, seed: int
    ) -> tuple[np.ndarray, float]: ...


def training_seed(seed: int, round_no: int, robot_id: int) -> int:
    """The minibatch-shuffle seed of robot ``robot_id`` in round ``round_no`` of experiment seed
    ``seed`` (the same in the simulator and on ROS robots)."""
    return seed * 1_000_003 + round_no * 10_007 + robot_id


class Done:
    """A finished training job."""

    def __init__(self, params: np.ndarray, loss: float) -> None:
        self._out = (params, loss)

    def result(self) -> tuple[np.ndarray, float]:
        return self._out


class LocalTrainer:
    """Trains robot ``robot_id`` on its own ``(X, y)`` when asked."""

    def __init__(
        self, engine: Engine, X: np.ndarray, y: np.ndarray, seed: int, robot_id: int
    ) -> None:
        self.engine, self.X, self.y = engine, X, y
        self.seed, self.robot_id = seed, robot_id

    def train(self, params: np.ndarray, round_no: int) -> tuple[np.ndarray, float]:
        """``(params, round) -> (new params, loss)``: the port's call, run now."""
        s = training_seed(self.seed, round_no, self.robot_id)
        return self.engine.train(params, self.X, self.y, seed=s)

    def start(self, params: np.ndarray, round_no: int) -> Done:
        return Done(*self.train(params, round_no))


class RoundTrainer(Protocol):
    """Anything with ``train(params, round) -> (params, loss)``: :class:`LocalTrainer`, or
    ``coprocessor.CoprocessorTrainer``."""

    def train(self, params: np.ndarray, round_no: int) -> tuple[np.ndarray, float]: ...


class ThreadedTrainer:
    """Runs a :class:`LocalTrainer` (or any :class:`RoundTrainer`) in ``pool`` so the caller's
    thread is not blocked."""

    def __init__(self, inner: RoundTrainer, pool: Executor) -> None:
        self.inner, self.pool = inner, pool

    def start(self, params: np.ndarray, round_no: int) -> Any:
        return self.pool.submit(self.inner.train, params, round_no)  # a Future has .result()


class BatchedTrainer:
    """The round's training of many robots in one call; :meth:`port` gives each robot its
    Trainer. Results equal training each robot alone (the engine's ``train_many`` contract)."""

    def __init__(
        self, engine: Any, data: Sequence[tuple[np.ndarray, np.ndarray]], seed: int
    ) -> None:
        self.engine, self.data, self.seed = engine, data, seed
        self._queue: dict[int, tuple[np.ndarray, int]] = {}
        self._done: dict[int, tuple[np.ndarray, float]] = {}

    def port(self, robot_id: int) -> _BatchPort:
        """Robot ``robot_id``'s Trainer."""
        return _BatchPort(self, robot_id)

    def _submit(self, robot_id: int, params: np.ndarray, round_no: int) -> _BatchJob:
        self._done.pop(robot_id, None)
        self._queue[robot_id] = (params, round_no)
        return _BatchJob(self, robot_id)

    def _result(self, robot_id: int) -> tuple[np.ndarray, float]:
        if robot_id not in self._done:
            self.run()
        return self._done.pop(robot_id)

    def run(self) -> None:
        """Train every queued robot now."""
        ids = sorted(self._queue)
        if not ids:
            return
        jobs = [self._queue.pop(i) for i in ids]
        seeds = [training_seed(self.seed, rnd, i) for i, (_, rnd) in zip(ids, jobs, strict=True)]
        train_many: Callable[..., Any] | None = getattr(self.engine, "train_many", None)
        if train_many is not None:
            stack = np.stack([p for p, _ in jobs])
            new, losses = train_many(stack, [self.data[i] for i in ids], seeds)
            for k, i in enumerate(ids):
                self._done[i] = (new[k], float(losses[k]))
        else:
            for (p, _), i, s in zip(jobs, ids, seeds, strict=True):
                self._done[i] = self.engine.train(p, *self.data[i], seed=s)


class _BatchPort:
    def __init__(self, batch: BatchedTrainer, robot_id: int) -> None:
        self.batch, self.robot_id = batch, robot_id

    def start(self, params: np.ndarray, round_no: int) -> _BatchJob:
        return self.batch._submit(self.robot_id, params, round_no)


class _BatchJob:
    def __init__(self, batch: BatchedTrainer, robot_id: int) -> None:
        self.batch, self.robot_id = batch, robot_id

    def result(self) -> tuple[np.ndarray, float]:
        return self.batch._result(self.robot_id)
