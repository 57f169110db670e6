"""The numpy trainer's scratch buffers and its shape error, pinned (cases a full mutation run of
gossip_learning.learning found unguarded): a buffer is reused, not cleared, while it is large
enough, and grows when it is not; every buffer is float32."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.learner import HeadSpec, init_params
from gossip_learning.learning.kernels import Workspace
from gossip_learning.learning.numpy_trainer import NumpyTrainer


def test_a_workspace_buffer_is_reused_uncleared_while_large_enough() -> None:
    ws = Workspace()
    a = ws.get("a", (4,))
    a[:] = 5.0
    b = ws.get("a", (2, 2))  # same size: the same memory, contents kept
    assert np.shares_memory(a, b)
    assert b.tolist() == [[5.0, 5.0], [5.0, 5.0]]
    assert ws.get("a", (3,), zero=True).tolist() == [0.0, 0.0, 0.0]
    assert a.tolist() == [0.0, 0.0, 0.0, 5.0]
    assert not np.shares_memory(a, ws.get("b", (4,)))  # another name, another buffer


def test_a_workspace_buffer_grows_to_what_is_asked() -> None:
    ws = Workspace()
    one = ws.get("g", (1,))
    two = ws.get("g", (2,))  # larger than the first buffer: a new one
    assert not np.shares_memory(one, two)
    assert np.shares_memory(two, ws.get("g", (2,)))
    assert ws.get("g", (0,)).shape == (0,)


def test_workspace_buffers_are_float32() -> None:
    assert Workspace().get("x", (3, 2)).dtype == np.float32
    assert Workspace().get("x", (3, 2), zero=True).dtype == np.float32


def test_train_refuses_stacked_models_by_name() -> None:
    spec = HeadSpec("linear", 4, 2)
    p = init_params(spec, 0)
    with pytest.raises(ValueError, match=r"^train takes one model of shape \(P,\)$"):
        NumpyTrainer(spec).train(np.stack([p, p]), np.zeros((3, 4), np.float32),
                                 np.array([0, 1, 1]), seed=0)  # fmt: skip


def test_softmax_is_shifted_per_sample_so_large_logits_stay_finite() -> None:
    spec = HeadSpec("linear", 1, 2)
    params = np.array([200.0, -200.0, 0.0, 0.0], np.float32)  # W (2, 1), then b (2,)
    X = np.array([[1.0], [0.0]], np.float32)  # logits (200, -200) and (0, 0)
    y = np.array([0, 0], np.int64)
    trainer = NumpyTrainer(spec, lr=1e-3, weight_decay=0.0, epochs=1, batch_size=2,
                           optimizer="sgd")  # fmt: skip
    new, loss = trainer.train(params, X, y, seed=0)
    assert loss == pytest.approx(np.log(2.0) / 2, rel=1e-6)  # (0 + log 2) / 2
    assert np.isfinite(new).all()


def test_a_training_step_allocates_nothing_batch_by_classes_sized() -> None:
    import tracemalloc

    spec = HeadSpec("linear", 4, 100)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4)).astype(np.float32)
    y = rng.integers(0, 100, 1000).astype(np.int64)
    trainer = NumpyTrainer(spec, epochs=1, batch_size=1000)
    p = init_params(spec, 0)
    trainer.train(p, X, y, seed=0)  # the workspace grows to its size once
    tracemalloc.start()
    try:
        trainer.train(p, X, y, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1000 * 100 * 4 / 2, peak  # the probabilities (1000 x 100 float32) are reused
