"""The numpy trainer's scratch buffers and its shape error, pinned (cases a full mutation run of
gossip_learning.learning found unguarded): a buffer is reused, not cleared, while it is large
enough, and grows when it is not; every buffer is float32."""

from __future__ import annotations

from typing import Any

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


def _linear_grad(spec: HeadSpec, p: np.ndarray, x: np.ndarray, label: int) -> np.ndarray:
    """Cross-entropy gradient of a linear head on one sample, in float64."""
    c, d = spec.num_classes, spec.in_dim
    w, b = p[: c * d].astype(np.float64).reshape(c, d), p[c * d :].astype(np.float64)
    logits = w @ x + b
    prob = np.exp(logits - logits.max())
    prob /= prob.sum()
    prob[label] -= 1.0
    return np.concatenate([np.outer(prob, x).ravel(), prob])


def test_one_sgd_step_on_a_head_larger_than_a_chunk_with_weight_decay_one() -> None:
    spec = HeadSpec("linear", 7000, 10)  # 70,010 parameters: two optimiser chunks
    rng = np.random.default_rng(1)
    x = rng.normal(size=7000).astype(np.float32)
    p = init_params(spec, 0)
    trainer = NumpyTrainer(spec, lr=0.1, weight_decay=1.0, epochs=1, batch_size=1,
                           optimizer="sgd")  # fmt: skip
    new, _ = trainer.train(p, x[None, :], np.array([3]), seed=0)
    g = _linear_grad(spec, p, x.astype(np.float64), 3) + 1.0 * p
    np.testing.assert_allclose(new, p - 0.1 * g, rtol=1e-4, atol=1e-6)


def test_one_adam_step_with_weight_decay_one() -> None:
    spec = HeadSpec("linear", 4, 3)
    x = np.array([0.5, -1.0, 2.0, 0.25])
    p = init_params(spec, 0)
    trainer = NumpyTrainer(spec, lr=0.01, weight_decay=1.0, epochs=1, batch_size=1)
    new, _ = trainer.train(p, x[None, :].astype(np.float32), np.array([1]), seed=0)
    g = _linear_grad(spec, p, x, 1) + 1.0 * p
    # Adam's first step: m / (sqrt(v) / sqrt(1 - beta2) + eps) * lr / (1 - beta1) = lr g / |g|
    np.testing.assert_allclose(new, p - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-5, atol=1e-7)


def test_train_many_refusals_name_what_is_wrong() -> None:
    spec = HeadSpec("linear", 4, 2)
    p = init_params(spec, 0)
    X, y = np.zeros((3, 4), np.float32), np.array([0, 1, 1])
    trainer = NumpyTrainer(spec)
    with pytest.raises(ValueError, match=r"^train_many takes stacked models of shape \(R, P\)$"):
        trainer.train_many(p, [(X, y)], [0])
    with pytest.raises(ValueError, match=r"^need one \(X, y\) and one seed per robot: 2 robots, "
                       r"1 data sets, 2 seeds$"):  # fmt: skip
        trainer.train_many(np.stack([p, p]), [(X, y)], [0, 1])
    for bad in (1.5, -1):
        with pytest.raises(ValueError, match=rf"^seed of robot 1 must be an integer >= 0, got "
                           rf"{bad!r}$"):  # fmt: skip
            trainer.train_many(np.stack([p, p]), [(X, y), (X, y)], [0, bad])


def test_train_many_takes_any_memory_layout() -> None:
    spec = HeadSpec("mlp", 5, 3, (4,))
    rng = np.random.default_rng(2)
    params = np.stack([init_params(spec, s) for s in range(3)])
    data = [(rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 3, n)) for n in (7, 3, 5)]
    trainer = NumpyTrainer(spec, epochs=2, batch_size=4)
    want, _ = trainer.train_many(params, data, [0, 1, 2])
    for layout in (np.asfortranarray(params), params.astype(np.float64)):
        got, _ = trainer.train_many(layout, data, [0, 1, 2])
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)


def _blas_threads_while_training(threads: int | None) -> list[int]:
    """The BLAS pools' thread counts seen inside the training kernel."""
    from threadpoolctl import ThreadpoolController

    from gossip_learning.learning import numpy_trainer

    seen: list[int] = []
    real = numpy_trainer.run_group

    def spy(*args: Any) -> np.ndarray:
        seen.extend(p["num_threads"] for p in ThreadpoolController().info()
                    if p["user_api"] == "blas")  # fmt: skip
        return real(*args)

    spec = HeadSpec("linear", 4, 2)
    numpy_trainer.run_group = spy
    try:
        NumpyTrainer(spec, threads=threads).train(
            init_params(spec, 0), np.zeros((3, 4), np.float32), np.array([0, 1, 1]), seed=0
        )
    finally:
        numpy_trainer.run_group = real
    return seen


def test_threads_caps_the_blas_pools_during_training_only() -> None:
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import ThreadpoolController

    default = [p["num_threads"] for p in ThreadpoolController().info() if p["user_api"] == "blas"]
    if not default or max(default) < 2:
        pytest.skip("BLAS runs one thread here already")
    assert _blas_threads_while_training(1) == [1] * len(default)
    assert _blas_threads_while_training(None) == default


def test_threads_without_threadpoolctl_trains_with_the_default_threads() -> None:
    import sys

    spec = HeadSpec("linear", 4, 2)
    args = (init_params(spec, 0), np.zeros((3, 4), np.float32), np.array([0, 1, 1]))
    want, _ = NumpyTrainer(spec).train(*args, seed=0)
    saved = sys.modules.get("threadpoolctl")
    sys.modules["threadpoolctl"] = None  # type: ignore[assignment]  # import fails
    try:
        trainer = NumpyTrainer(spec, threads=1)
        for _ in range(2):  # the failed import is remembered
            got, _ = trainer.train(*args, seed=0)
            np.testing.assert_array_equal(got, want)
    finally:
        if saved is None:
            del sys.modules["threadpoolctl"]
        else:
            sys.modules["threadpoolctl"] = saved
