"""Tests for gossip_learning.learner: layout, init, forward, evaluate, training."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from gossip_learning.errors import ConfigError, DataError
from gossip_learning.learner import (
    HeadSpec,
    TorchTrainer,
    evaluate,
    fold_standardizer,
    forward,
    init_params,
    predict,
    unpack,
)

LINEAR = HeadSpec("linear", 160, 10)
MLP = HeadSpec("mlp", 160, 10)


def _toy(n: int, dim: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, dim))
    means *= 5.0 / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.integers(0, classes, n)
    X = (means[y] + rng.normal(size=(n, dim))).astype(np.float32)
    return X, y.astype(np.int64)


def test_num_params_and_layer_sizes() -> None:
    assert LINEAR.num_params() == 1610
    assert MLP.num_params() == 29514
    assert LINEAR.layer_sizes() == [(160, 10)]
    assert MLP.layer_sizes() == [(160, 128), (128, 64), (64, 10)]
    assert HeadSpec("mlp", 8, 3, hidden=(5,)).num_params() == 8 * 5 + 5 + 5 * 3 + 3


def test_version_stable_and_distinct() -> None:
    assert MLP.version() == HeadSpec("mlp", 160, 10, hidden=[128, 64]).version()  # type: ignore[arg-type]
    versions = {
        LINEAR.version(),
        MLP.version(),
        HeadSpec("mlp", 160, 10, (64,)).version(),
        HeadSpec("linear", 160, 100).version(),
        HeadSpec("linear", 64, 10).version(),
    }
    assert len(versions) == 5
    # hidden does not matter for a linear head
    assert HeadSpec("linear", 160, 10, ()).version() == LINEAR.version()
    # pinned: the wire depends on it never changing silently
    assert MLP.version() == 2989713427
    assert LINEAR.version() == 1312196672
    assert MLP.canonical() == "head/v1;kind=mlp;in=160;classes=10;hidden=128,64"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"kind": "cnn", "in_dim": 4, "num_classes": 2}, "learning.head"),
        ({"kind": "linear", "in_dim": 0, "num_classes": 2}, "learning.head"),
        ({"kind": "linear", "in_dim": 4, "num_classes": 0}, "learning.head"),
        ({"kind": "mlp", "in_dim": 4, "num_classes": 2, "hidden": (8, 0)}, "learning.hidden"),
        ({"kind": "mlp", "in_dim": 4, "num_classes": 2, "hidden": ()}, "learning.hidden"),
    ],
)
def test_spec_validation(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        HeadSpec(**kwargs)
    assert err.value.key == key


def test_init_reproducible_and_bounded() -> None:
    a, b, c = init_params(MLP, 7), init_params(MLP, 7), init_params(MLP, 8)
    assert a.dtype == np.float32 and a.shape == (MLP.num_params(),)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for (w, bias), (fan_in, _) in zip(unpack(MLP, a), MLP.layer_sizes(), strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        for arr in (w, bias):
            assert np.abs(arr).max() <= bound
            # uniform over the whole interval, not a narrower one
            assert np.abs(arr).max() > 0.8 * bound
    w0 = unpack(MLP, a)[0][0]
    assert abs(float(w0.std()) - (1 / np.sqrt(160)) / np.sqrt(3)) < 0.005


@pytest.mark.parametrize("spec", [LINEAR, MLP, HeadSpec("mlp", 7, 3, (5, 4, 6))])
def test_layout_matches_torch(spec: HeadSpec) -> None:
    torch = pytest.importorskip("torch")
    layers: list = []
    sizes = spec.layer_sizes()
    for k, (i, o) in enumerate(sizes):
        layers.append(torch.nn.Linear(i, o))
        if k < len(sizes) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    assert torch.nn.utils.parameters_to_vector(model.parameters()).numel() == spec.num_params()
    params = init_params(spec, 3)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.from_numpy(params.copy()), model.parameters())
        # the first weight really sits first, row-major
        first = model[0].weight
        np.testing.assert_array_equal(first[0, :].numpy(), params[: sizes[0][0]])
    X = np.random.default_rng(0).normal(size=(33, spec.in_dim)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy()
    got = forward(spec, params, X)
    assert got.dtype == np.float32 and got.shape == (33, spec.num_classes)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # and torch's own parameter vector round-trips to ours
    back = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    np.testing.assert_array_equal(back, params)


def _reference(spec: HeadSpec, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple:
    logits = forward(spec, params, X).astype(np.float64)
    top = logits.max(axis=1)
    lse = np.log(np.exp(logits - top[:, None]).sum(axis=1)) + top
    loss = float((lse - logits[np.arange(len(y)), y]).mean())
    return float((logits.argmax(axis=1) == y).mean()), loss


@pytest.mark.parametrize("chunk", [4096, 7])
def test_evaluate_matches_per_model_loop(chunk: int) -> None:
    spec = HeadSpec("mlp", 12, 4, (9, 6))
    X, y = _toy(101, 12, 4, seed=1)
    params = np.stack([init_params(spec, s) for s in range(13)])
    acc, loss = evaluate(spec, params, X, y, chunk=chunk)
    assert acc.shape == (13,) and loss.shape == (13,)
    for r in range(13):
        ra, rl = _reference(spec, params[r], X, y)
        assert acc[r] == pytest.approx(ra)
        assert loss[r] == pytest.approx(rl, rel=1e-5)
    one_acc, one_loss = evaluate(spec, params[4], X, y)
    assert one_acc.shape == (1,) and one_acc[0] == acc[4]
    assert one_loss[0] == pytest.approx(loss[4], rel=1e-6)


def test_evaluate_many_models_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import gossip_learning.learner as learner

    monkeypatch.setattr(learner, "_EVAL_BLOCK_ELEMS", 50)  # forces one model per block
    X, y = _toy(40, 160, 10, seed=2)
    params = np.stack([init_params(LINEAR, s) for s in range(5)])
    acc, loss = evaluate(LINEAR, params, X, y, chunk=16)
    for r in range(5):
        ra, rl = _reference(LINEAR, params[r], X, y)
        assert acc[r] == pytest.approx(ra) and loss[r] == pytest.approx(rl, rel=1e-5)


def test_evaluate_errors_and_empty() -> None:
    X, y = _toy(10, 160, 10, seed=0)
    p = init_params(LINEAR, 0)
    with pytest.raises(ValueError):
        evaluate(LINEAR, p[:-1], X, y)
    with pytest.raises(DataError):
        evaluate(LINEAR, p, X[:, :5], y)
    with pytest.raises(DataError):
        evaluate(LINEAR, p, X, y[:-1])
    with pytest.raises(DataError):
        evaluate(LINEAR, p, X, np.full(10, 10))
    acc, loss = evaluate(LINEAR, np.stack([p, p]), X[:0], y[:0])
    assert acc.shape == (2,) and np.isnan(acc).all() and np.isnan(loss).all()


def test_training_learns_separable_problem() -> None:
    pytest.importorskip("torch")
    spec = HeadSpec("mlp", 20, 5, (32, 16))
    X, y = _toy(600, 20, 5, seed=3)
    Xt, yt = _toy(300, 20, 5, seed=3)  # same means (same seed), fresh draw below
    Xt = Xt + np.random.default_rng(9).normal(size=Xt.shape).astype(np.float32) * 0.1
    params = init_params(spec, 0)
    acc0 = evaluate(spec, params, Xt, yt)[0][0]
    assert acc0 < 0.5
    trainer = TorchTrainer(spec, lr=1e-2, epochs=4, batch_size=64, threads=1)
    new, loss = trainer.train(params, X, y, seed=1)
    assert new.dtype == np.float32 and new.shape == params.shape
    assert np.isfinite(loss) and loss < 0.5
    acc1 = evaluate(spec, new, Xt, yt)[0][0]
    assert acc1 > 0.9
    assert (predict(spec, new, Xt) == yt).mean() == pytest.approx(acc1)
    # params passed in are not modified
    np.testing.assert_array_equal(params, init_params(spec, 0))


def test_training_deterministic_and_fresh_optimizer() -> None:
    pytest.importorskip("torch")
    X, y = _toy(300, 16, 3, seed=4)
    spec = HeadSpec("linear", 16, 3)
    p = init_params(spec, 5)
    trainer = TorchTrainer(spec, epochs=2, batch_size=64)
    a, la = trainer.train(p, X, y, seed=11)
    b, lb = trainer.train(p, X, y, seed=11)  # fresh Adam: no state carried over
    np.testing.assert_array_equal(a, b)
    assert la == lb
    c, _ = TorchTrainer(spec, epochs=2, batch_size=64).train(p, X, y, seed=11)
    np.testing.assert_array_equal(a, c)
    d, _ = trainer.train(p, X, y, seed=12)
    assert not np.array_equal(a, d)
    sgd, loss = TorchTrainer(spec, lr=0.1, optimizer="sgd").train(p, X, y, seed=0)
    assert np.isfinite(loss) and not np.array_equal(sgd, p)


def test_training_loss_is_last_epoch_mean() -> None:
    torch = pytest.importorskip("torch")
    X, y = _toy(50, 6, 2, seed=5)
    spec = HeadSpec("linear", 6, 2)
    p = init_params(spec, 0)
    # One epoch, one full batch, plain SGD: the loss reported is the loss at the start params ...
    trainer = TorchTrainer(spec, lr=0.5, weight_decay=0.0, epochs=1, batch_size=50, optimizer="sgd")
    new, loss = trainer.train(p, X, y, seed=0)
    assert loss == pytest.approx(evaluate(spec, p, X, y)[1][0], rel=1e-5)
    # ... and the result is one step w - lr * grad in our layout.
    w = torch.tensor(p[:12].reshape(2, 6), requires_grad=True)
    b = torch.tensor(p[12:], requires_grad=True)
    torch.nn.functional.cross_entropy(torch.from_numpy(X) @ w.T + b, torch.from_numpy(y)).backward()
    with torch.no_grad():
        expected = torch.cat([(w - 0.5 * w.grad).ravel(), b - 0.5 * b.grad]).numpy()
    np.testing.assert_allclose(new, expected, atol=1e-6)


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from gossip_learning import learner as L\n"
        "s = L.HeadSpec('mlp', 16, 3)\n"
        "p = L.init_params(s, 0)\n"
        "X = np.zeros((5, 16), np.float32)\n"
        "L.evaluate(s, p, X, np.zeros(5, np.int64))\n"
        "L.forward(s, p, X)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_evaluate_threads_option_same_result() -> None:
    X, y = _toy(64, 160, 10, seed=6)
    params = np.stack([init_params(MLP, s) for s in range(3)])
    a = evaluate(MLP, params, X, y)
    b = evaluate(MLP, params, X, y, threads=1)
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
    with pytest.raises(ValueError):
        evaluate(MLP, params, X, y, threads=0)


def test_fold_standardizer_matches_standardized_forward() -> None:
    spec = HeadSpec("mlp", 12, 4, (9,))
    rng = np.random.default_rng(7)
    X = rng.normal(3.0, 2.0, size=(50, 12)).astype(np.float32)
    params = np.stack([init_params(spec, s) for s in range(3)])
    means = rng.normal(size=(3, 12)).astype(np.float32)
    stds = rng.uniform(0.5, 2.0, size=(3, 12)).astype(np.float32)
    folded = fold_standardizer(spec, params, means, stds)
    assert folded.shape == params.shape and folded.dtype == np.float32
    for r in range(3):
        expected = forward(spec, params[r], (X - means[r]) / stds[r])
        np.testing.assert_allclose(forward(spec, folded[r], X), expected, rtol=1e-4, atol=1e-4)
        single = fold_standardizer(spec, params[r], means[r], stds[r])
        np.testing.assert_allclose(single, folded[r], rtol=1e-6)
    # only the first layer changes
    n_first = 12 * 9 + 9
    np.testing.assert_array_equal(folded[:, n_first:], params[:, n_first:])
