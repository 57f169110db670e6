"""Tests for gossip_learning.learning: batch order, NumpyTrainer (= TorchTrainer), train_many."""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import gossip_learning.learning.numpy_trainer as numpy_trainer
from gossip_learning.errors import ConfigError, DataError
from gossip_learning.learner import HeadSpec, evaluate, init_params, unpack
from gossip_learning.learning.batching import BatchPlan, batch_order
from gossip_learning.learning.numpy_trainer import NumpyTrainer

MLP = HeadSpec("mlp", 160, 10)  # the paper head
LINEAR = HeadSpec("linear", 160, 10)
SMALL = HeadSpec("mlp", 12, 4, (9, 6))


def _toy(n: int, dim: int, classes: int, seed: int, sep: float = 3.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, dim))
    means *= sep / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.integers(0, classes, n)
    return (means[y] + rng.normal(size=(n, dim))).astype(np.float32), y.astype(np.int64)


# ---- batch order -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_batch_order_is_a_permutation_per_epoch(n: int) -> None:
    orders = batch_order(3, n, 4)
    assert len(orders) == 4
    for o in orders:
        assert o.dtype == np.int64
        np.testing.assert_array_equal(np.sort(o), np.arange(n))
    if n == 100:  # epochs reshuffle
        assert not np.array_equal(orders[0], orders[1])
    assert batch_order(3, n, 0) == []


def test_batch_order_is_seed_determined() -> None:
    a, b, c = batch_order(11, 50, 2), batch_order(11, 50, 2), batch_order(12, 50, 2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    # the draw is numpy's default_rng: one permutation of n per epoch, in turn
    rng = np.random.default_rng(11)
    np.testing.assert_array_equal(a[1], [rng.permutation(50) for _ in range(2)][1])
    # the first epochs do not depend on how many epochs are asked for
    np.testing.assert_array_equal(batch_order(11, 50, 5)[1], a[1])
    with pytest.raises(ValueError):
        batch_order(-1, 5, 1)


def test_batch_plan_follows_batch_order() -> None:
    # robot 0: 10 samples at rows 0..9, robot 1: 3 samples at rows 10..12; batch 4, 2 epochs
    plan = BatchPlan([10, 3], [0, 10], [5, 6], epochs=2, batch_size=4, pad_row=13)
    assert list(plan.steps) == [6, 2] and plan.total_steps == 6
    o0, o1 = batch_order(5, 10, 2), batch_order(6, 3, 2)
    rows, sizes, last = plan.step(2, plan.active(2))  # robot 0's last batch of epoch 0
    assert plan.active(2) == 1
    np.testing.assert_array_equal(rows, [o0[0][8:]])
    assert list(sizes) == [2] and list(last) == [False]
    rows, sizes, last = plan.step(1, plan.active(1))  # both robots: widths 4 and 3
    np.testing.assert_array_equal(rows[0], o0[0][4:8])
    np.testing.assert_array_equal(rows[1], [*(o1[1] + 10), 13])  # padded with the zero row
    assert list(sizes) == [4, 3] and list(last) == [False, True]
    with pytest.raises(ValueError):  # fewer steps first breaks the prefix rule
        BatchPlan([3, 10], [0, 3], [5, 6], epochs=2, batch_size=4, pad_row=13)


# ---- numpy == torch ----------------------------------------------------------------------------


def _assert_close(got: np.ndarray, ref: np.ndarray, spec: HeadSpec, opt: str) -> None:
    """Equal to float32 rounding (as torch's own float32 run differs from a float64 one).

    Adam on a ReLU MLP amplifies it in rare elements: a parameter whose gradient is near eps, or a
    hidden unit whose input sits within rounding of 0 for one sample (it flips on in one run, off
    in the other). Those get up to an Adam step apart (~lr), so that case checks that all but a
    tiny fraction of elements agree tightly; linear heads and SGD agree everywhere.
    """
    close = np.isclose(got, ref, rtol=1e-5, atol=1e-6)
    if spec.kind == "mlp" and opt == "adam":
        assert close.mean() > 0.999, f"{(~close).sum()} of {close.size} elements differ"
        assert np.abs(got - ref).max() < 5e-3
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def _reference_train(
    spec: HeadSpec, p: np.ndarray, X: np.ndarray, y: np.ndarray, seed: int, **kw: Any
) -> tuple[np.ndarray, float]:
    """Plain float64 minibatch training, one robot, written out (no torch, no batching tricks)."""
    lr, wd, opt = kw["lr"], kw["weight_decay"], kw["optimizer"]
    q = [a.astype(np.float64) for wb in unpack(spec, p) for a in wb]  # w0, b0, w1, b1, ...
    m, v = [np.zeros_like(a) for a in q], [np.zeros_like(a) for a in q]
    n, step, loss = len(y), 0, float("nan")
    for order in batch_order(seed, n, kw["epochs"]):
        total = 0.0
        for s0 in range(0, n, kw["batch_size"]):
            idx = order[s0 : s0 + kw["batch_size"]]
            acts = [X[idx].astype(np.float64)]
            for li in range(0, len(q), 2):
                z = acts[-1] @ q[li].T + q[li + 1]
                acts.append(np.maximum(z, 0.0) if li + 2 < len(q) else z)
            z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
            prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            total -= np.log(prob[np.arange(len(idx)), y[idx]]).sum()
            delta = prob
            delta[np.arange(len(idx)), y[idx]] -= 1.0
            delta /= len(idx)
            grads: list[np.ndarray] = []
            for li in range(len(q) - 2, -1, -2):
                grads[:0] = [delta.T @ acts[li // 2], delta.sum(axis=0)]
                delta = (delta @ q[li]) * (acts[li // 2] > 0)
            step += 1
            for a, g, mm, vv in zip(q, grads, m, v, strict=True):
                g = g + wd * a
                if opt == "sgd":
                    a -= lr * g
                    continue
                mm[:] = 0.9 * mm + 0.1 * g
                vv[:] = 0.999 * vv + 0.001 * g * g
                denom = np.sqrt(vv) / np.sqrt(1 - 0.999**step) + 1e-8
                a -= lr / (1 - 0.9**step) * mm / denom
        loss = total / n
    return np.concatenate([a.ravel() for a in q]).astype(np.float32), loss


@pytest.mark.parametrize("spec", [LINEAR, MLP], ids=["linear", "mlp"])
@pytest.mark.parametrize(("opt", "lr"), [("adam", 1e-3), ("sgd", 0.05)])
def test_numpy_matches_float64_reference(spec: HeadSpec, opt: str, lr: float) -> None:
    # the torch-free check (a robot process has no torch): same cases as against torch below
    X, y = _toy(150, 160, 10, seed=1)
    p = init_params(spec, 2)
    kw: dict[str, Any] = {"lr": lr, "weight_decay": 1e-3, "epochs": 3, "batch_size": 64}
    ref, ref_loss = _reference_train(spec, p, X, y, seed=7, optimizer=opt, **kw)
    got, loss = NumpyTrainer(spec, optimizer=opt, **kw).train(p, X, y, seed=7)
    assert np.abs(ref - p).max() > 5e-3
    _assert_close(got, ref, spec, opt)
    assert loss == pytest.approx(ref_loss, rel=1e-5)


@pytest.mark.parametrize("spec", [LINEAR, MLP], ids=["linear", "mlp"])
@pytest.mark.parametrize(("opt", "lr"), [("adam", 1e-3), ("sgd", 0.05)])
def test_numpy_matches_torch(spec: HeadSpec, opt: str, lr: float) -> None:
    pytest.importorskip("torch")
    from gossip_learning.learner import TorchTrainer

    X, y = _toy(150, 160, 10, seed=1)  # batch 64: two full batches and a partial one of 22
    p = init_params(spec, 2)
    kw: dict[str, Any] = {"lr": lr, "weight_decay": 1e-3, "epochs": 3, "batch_size": 64}
    ref, ref_loss = TorchTrainer(spec, optimizer=opt, threads=1, **kw).train(p, X, y, seed=7)
    got, loss = NumpyTrainer(spec, optimizer=opt, **kw).train(p, X, y, seed=7)
    assert got.dtype == np.float32 and got.shape == p.shape
    assert np.abs(ref - p).max() > 5e-3  # training moved the head: the comparison means something
    _assert_close(got, ref, spec, opt)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_array_equal(p, init_params(spec, 2))  # input untouched


def test_train_many_matches_torch_robot_by_robot() -> None:
    pytest.importorskip("torch")
    from gossip_learning.learner import TorchTrainer

    counts = [200, 3, 128, 0, 129]
    data = [_toy(n, 160, 10, seed=20 + r) for r, n in enumerate(counts)]
    params = np.stack([init_params(MLP, r) for r in range(len(counts))])
    seeds = [1_000_003 + r for r in range(len(counts))]
    got, losses = NumpyTrainer(MLP).train_many(params, data, seeds)
    torch_trainer = TorchTrainer(MLP, threads=1)
    for r in range(len(counts)):
        ref, ref_loss = torch_trainer.train(params[r], *data[r], seed=seeds[r])
        _assert_close(got[r], ref, MLP, "adam")
        if counts[r]:
            assert losses[r] == pytest.approx(ref_loss, rel=1e-5)
        else:
            assert np.isnan(losses[r]) and np.isnan(ref_loss)


# ---- batched == one by one ---------------------------------------------------------------------


@pytest.mark.parametrize("opt", ["adam", "sgd"])
@pytest.mark.parametrize("group_elems", [1 << 20, 1])  # all robots in one group, or one per group
def test_train_many_equals_one_by_one(
    monkeypatch: pytest.MonkeyPatch, opt: str, group_elems: int
) -> None:
    monkeypatch.setattr(numpy_trainer, "_GROUP_ELEMS", group_elems)
    # unequal robots: many batches, a partial last batch, fewer samples than one batch, exactly
    # one batch, none at all, a single sample
    counts = [300, 5, 64, 0, 65, 129, 1, 700]
    data = [_toy(n, 12, 4, seed=r) for r, n in enumerate(counts)]
    params = np.stack([init_params(SMALL, 10 + r) for r in range(len(counts))])
    seeds = [100 + r for r in range(len(counts))]
    lr = 1e-2 if opt == "adam" else 0.1
    trainer = NumpyTrainer(SMALL, lr=lr, weight_decay=1e-3, epochs=2, batch_size=64, optimizer=opt)
    before = params.copy()
    new, losses = trainer.train_many(params, data, seeds)
    assert new.shape == params.shape and new.dtype == np.float32 and losses.shape == (8,)
    np.testing.assert_array_equal(params, before)  # input untouched
    for r, n in enumerate(counts):
        one, loss = trainer.train(params[r], *data[r], seed=seeds[r])
        np.testing.assert_allclose(new[r], one, rtol=1e-5, atol=1e-6)
        if n == 0:
            np.testing.assert_array_equal(new[r], params[r])
            assert np.isnan(losses[r]) and np.isnan(loss)
        else:
            assert np.abs(new[r] - params[r]).max() > 1e-3
            assert losses[r] == pytest.approx(loss, rel=1e-5)


def test_train_many_edge_cases() -> None:
    trainer = NumpyTrainer(SMALL, epochs=1)
    params = np.stack([init_params(SMALL, 0), init_params(SMALL, 1)])
    empty = (np.zeros((0, 12), np.float32), np.zeros(0, np.int64))
    new, losses = trainer.train_many(params, [empty, empty], [0, 1])
    np.testing.assert_array_equal(new, params)
    assert np.isnan(losses).all()
    new, losses = trainer.train_many(params[:0], [], [])
    assert new.shape == (0, SMALL.num_params()) and losses.shape == (0,)
    X, y = _toy(30, 12, 4, seed=0)
    new, losses = NumpyTrainer(SMALL, epochs=0).train_many(params, [(X, y), (X, y)], [0, 1])
    np.testing.assert_array_equal(new, params)
    assert np.isnan(losses).all()
    with pytest.raises(ValueError):
        trainer.train_many(params, [(X, y)], [0, 1])  # one data set for two robots
    with pytest.raises(ValueError):
        trainer.train_many(params[0], [(X, y)], [0])  # not stacked
    with pytest.raises(ValueError):
        trainer.train_many(params, [(X, y), (X, y)], [0, -1])  # negative seed
    with pytest.raises(DataError):
        trainer.train_many(params, [(X, y), (X, y + 4)], [0, 1])  # label out of range


# ---- training behaviour ------------------------------------------------------------------------


def test_learns_separable_problem_and_loss_decreases() -> None:
    spec = HeadSpec("mlp", 20, 5, (32, 16))
    X, y = _toy(600, 20, 5, seed=3, sep=5.0)
    Xt, yt = _toy(300, 20, 5, seed=3, sep=5.0)
    params = init_params(spec, 0)
    assert evaluate(spec, params, Xt, yt)[0][0] < 0.5
    trainer = NumpyTrainer(spec, lr=1e-2, epochs=1, batch_size=64)
    losses = []
    for rnd in range(4):
        params, loss = trainer.train(params, X, y, seed=rnd)
        losses.append(loss)
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.3
    assert evaluate(spec, params, Xt, yt)[0][0] > 0.9


def test_deterministic_and_fresh_optimizer() -> None:
    X, y = _toy(300, 12, 4, seed=4)
    p = init_params(SMALL, 5)
    trainer = NumpyTrainer(SMALL, epochs=2, batch_size=64)
    a, la = trainer.train(p, X, y, seed=11)
    b, lb = trainer.train(p, X, y, seed=11)  # fresh Adam state, reused buffers: same result
    np.testing.assert_array_equal(a, b)
    assert la == lb
    np.testing.assert_array_equal(
        a, NumpyTrainer(SMALL, epochs=2, batch_size=64).train(p, X, y, 11)[0]
    )
    assert not np.array_equal(a, trainer.train(p, X, y, seed=12)[0])


def test_loss_is_last_epoch_mean_and_one_sgd_step() -> None:
    X, y = _toy(50, 6, 2, seed=5)
    spec = HeadSpec("linear", 6, 2)
    p = init_params(spec, 0)
    trainer = NumpyTrainer(spec, lr=0.5, weight_decay=0.0, epochs=1, batch_size=50, optimizer="sgd")
    new, loss = trainer.train(p, X, y, seed=0)
    assert loss == pytest.approx(evaluate(spec, p, X, y)[1][0], rel=1e-5)
    # gradient of the mean softmax cross-entropy, by hand in float64
    logits = X.astype(np.float64) @ p[:12].reshape(2, 6).T + p[12:]
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    prob[np.arange(50), y] -= 1
    grad = np.concatenate([(prob.T @ X / 50).ravel(), prob.mean(0)])
    np.testing.assert_allclose(new, p - 0.5 * grad, atol=1e-6)


def _engine(name: str) -> Any:
    """NumpyTrainer, or TorchTrainer (skipped without torch): both keep one contract."""
    if name == "numpy":
        return NumpyTrainer
    pytest.importorskip("torch")
    from gossip_learning.learner import TorchTrainer

    return TorchTrainer


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_empty_data_and_errors(engine: str) -> None:
    spec = HeadSpec("linear", 4, 2)
    p = init_params(spec, 0)
    trainer = _engine(engine)(spec)
    new, loss = trainer.train(p, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), seed=0)
    np.testing.assert_array_equal(new, p)
    assert new is not p and np.isnan(loss)
    with pytest.raises(DataError):
        trainer.train(p, np.zeros((3, 4), np.float32), np.array([0, 1, 2]), seed=0)
    with pytest.raises(DataError):
        trainer.train(p, np.zeros((3, 5), np.float32), np.array([0, 1, 1]), seed=0)
    with pytest.raises(DataError):
        trainer.train(p, np.zeros((3, 4), np.float32), np.array([0, 1]), seed=0)
    with pytest.raises(ValueError):
        trainer.train(np.stack([p, p]), np.zeros((3, 4), np.float32), np.array([0, 1, 1]), seed=0)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"optimizer": "rmsprop"}, "learning.optimizer"),
        ({"lr": 0.0}, "learning.lr"),
        ({"lr": float("nan")}, "learning.lr"),
        ({"epochs": -1}, "learning.epochs"),
        ({"epochs": 1.5}, "learning.epochs"),
        ({"batch_size": 0}, "learning.batch_size"),
        ({"weight_decay": -1.0}, "learning.weight_decay"),
        ({"threads": 0}, "experiment.threads"),
    ],
)
@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_config_errors_name_the_key(engine: str, kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _engine(engine)(LINEAR, **kwargs)
    assert err.value.key == key


def test_threads_option_same_result() -> None:
    X, y = _toy(100, 12, 4, seed=6)
    p = init_params(SMALL, 1)
    a = NumpyTrainer(SMALL).train(p, X, y, seed=3)[0]
    b = NumpyTrainer(SMALL, threads=1).train(p, X, y, seed=3)[0]
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_numpy_trainer_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from gossip_learning.learner import HeadSpec, init_params\n"
        "from gossip_learning.learning.numpy_trainer import NumpyTrainer\n"
        "s = HeadSpec('mlp', 16, 3)\n"
        "p = init_params(s, 0)\n"
        "X = np.ones((5, 16), np.float32)\n"
        "t = NumpyTrainer(s, threads=1)\n"
        "t.train(p, X, np.zeros(5, np.int64), seed=0)\n"
        "t.train_many(np.stack([p, p]), [(X, np.zeros(5, np.int64))] * 2, [0, 1])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
