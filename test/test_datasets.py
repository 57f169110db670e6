"""Tests for gossip_learning.datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gossip_learning import datasets as D
from gossip_learning.errors import ConfigError, DataError


def _small(**over: Any) -> D.Dataset:
    rng = np.random.default_rng(0)
    kw: dict[str, Any] = {
        "name": "t",
        "X_train": rng.normal(size=(6, 3)).astype(np.float32),
        "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "X_test": rng.normal(size=(3, 3)).astype(np.float32),
        "y_test": np.array([0, 1, 2]),
        "num_classes": 3,
    }
    kw.update(over)
    return D.Dataset(**kw)


def test_digits_shapes_stratified_reproducible() -> None:
    ds = D.load_digits()
    assert ds.name == "digits" and ds.num_classes == 10 and ds.dim == 64
    assert len(ds.y_train) + len(ds.y_test) == 1797
    assert len(ds.y_test) == pytest.approx(0.25 * 1797, abs=1)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() == 1.0
    assert ds.class_names == [str(c) for c in range(10)]
    # stratified: class shares in test match those in train within one sample's worth
    tr = np.bincount(ds.y_train, minlength=10) / len(ds.y_train)
    te = np.bincount(ds.y_test, minlength=10) / len(ds.y_test)
    assert np.abs(tr - te).max() < 1.5 / len(ds.y_test) + 1e-9
    again = D.load_digits(seed=0)
    np.testing.assert_array_equal(ds.X_test, again.X_test)
    np.testing.assert_array_equal(ds.y_train, again.y_train)
    other = D.load_digits(seed=1)
    assert not np.array_equal(ds.y_test, other.y_test)
    half = D.load_digits(test_fraction=0.5)
    assert abs(len(half.y_test) - 898.5) <= 1
    with pytest.raises(ConfigError) as err:
        D.load_digits(test_fraction=1.0)
    assert err.value.key == "data.test_fraction"


def _nearest_centroid_acc(ds: D.Dataset) -> float:
    cents = np.stack([ds.X_train[ds.y_train == c].mean(axis=0) for c in range(ds.num_classes)])
    d2 = ((ds.X_test[:, None, :] - cents[None]) ** 2).sum(axis=2)
    return float((d2.argmin(axis=1) == ds.y_test).mean())


def test_synthetic_separable_and_seeded() -> None:
    ds = D.make_synthetic()
    assert ds.X_train.shape == (2000, 16) and ds.X_test.shape == (500, 16)
    assert ds.num_classes == 4 and np.bincount(ds.y_train).tolist() == [500] * 4
    assert _nearest_centroid_acc(ds) > 0.9
    same = D.make_synthetic(seed=0)
    np.testing.assert_array_equal(ds.X_train, same.X_train)
    assert not np.array_equal(ds.X_train, D.make_synthetic(seed=1).X_train)
    # no separation: chance level, so the accuracy test above can fail
    flat = D.make_synthetic(separation=0.0, num_test=2000)
    assert _nearest_centroid_acc(flat) < 0.4
    with pytest.raises(ConfigError) as err:
        D.make_synthetic(dim=0)
    assert err.value.key == "data.dim"


def test_validate_catches_each_problem() -> None:
    assert _small().validate().dim == 3
    cases: list[tuple[dict[str, Any], str]] = [
        ({"y_train": np.array([0, 1, 2, 0, 1])}, "y_train must have shape (6,)"),
        ({"y_test": np.array([0, 1, 3])}, "outside [0, 3)"),
        ({"y_train": np.array([0, 1, -1, 0, 1, 2])}, "outside [0, 3)"),
        ({"X_test": np.zeros((3, 4), np.float32)}, "X_test has 4 features"),
        ({"X_train": np.full((6, 3), np.nan, np.float32)}, "NaN or inf"),
        ({"X_test": np.array([[1, 2, np.inf]] * 3, np.float32)}, "NaN or inf"),
        (
            {"X_train": np.zeros((0, 3), np.float32), "y_train": np.zeros(0, np.int64)},
            "X_train is empty",
        ),
        ({"X_train": np.zeros(6, np.float32)}, "must be 2-D"),
        ({"y_test": np.array([0.0, 1.0, 2.0])}, "integer labels"),
        ({"class_names": ["a", "b"]}, "2 class_names for 3 classes"),
    ]
    for over, needle in cases:
        with pytest.raises(DataError) as err:
            _small(**over).validate()
        assert needle in str(err.value), (needle, str(err.value))


def test_npz_round_trip(tmp_path: Path) -> None:
    ds = D.make_synthetic(num_train=40, num_test=10, dim=5, num_classes=3)
    path = tmp_path / "feats.npz"
    np.savez(
        path,
        X_train=ds.X_train,
        y_train=ds.y_train,
        X_test=ds.X_test,
        y_test=ds.y_test,
        class_names=np.array(["a", "b", "c"]),
    )
    back = D.load_npz(path)
    assert back.name == "feats" and back.num_classes == 3 and back.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(back.X_train, ds.X_train)
    np.testing.assert_array_equal(back.y_test, ds.y_test)
    # without class names the class count comes from the labels; via the registry too
    plain = tmp_path / "plain.npz"
    np.savez(plain, X_train=ds.X_train, y_train=ds.y_train, X_test=ds.X_test, y_test=ds.y_test)
    loaded = D.load_dataset("npz", path=str(plain))
    assert loaded.num_classes == 3 and loaded.class_names == ["0", "1", "2"]
    # float64 features are accepted and stored as float32
    f64 = tmp_path / "f64.npz"
    np.savez(
        f64,
        X_train=ds.X_train.astype(np.float64),
        y_train=ds.y_train,
        X_test=ds.X_test,
        y_test=ds.y_test,
        num_classes=np.array(5),
    )
    wide = D.load_npz(f64)
    assert wide.X_train.dtype == np.float32 and wide.num_classes == 5


def test_npz_errors(tmp_path: Path) -> None:
    ds = D.make_synthetic(num_train=20, num_test=8, dim=4, num_classes=2)
    good = {"X_train": ds.X_train, "y_train": ds.y_train, "X_test": ds.X_test, "y_test": ds.y_test}

    with pytest.raises(DataError, match="no such file"):
        D.load_npz(tmp_path / "absent.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        D.load_npz(junk)
    for key in good:
        arrays = {k: v for k, v in good.items() if k != key}
        path = tmp_path / f"no_{key}.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        with pytest.raises(DataError) as err:
            D.load_npz(path)
        msg = str(err.value)
        assert f"missing key '{key}'" in msg and str(path) in msg and "expected arrays" in msg
    bad_cases: dict[str, dict[str, np.ndarray]] = {
        "flat_x": {**good, "X_train": ds.X_train.ravel()},
        "float_y": {**good, "y_test": ds.y_test.astype(np.float32)},
        "short_y": {**good, "y_train": ds.y_train[:-1]},
        "dim_mismatch": {**good, "X_test": ds.X_test[:, :3]},
    }
    for name, arrays in bad_cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        with pytest.raises(DataError) as err:
            D.load_npz(path)
        assert str(path) in str(err.value), name


def test_standardize_global_and_helpers() -> None:
    ds = D.load_digits()
    assert D.standardize(ds, "none") is ds
    assert D.standardize(ds, "local") is ds
    g = D.standardize(ds, "global")
    assert g is not ds and g.X_train.dtype == np.float32
    varying = ds.X_train.std(axis=0) > 0
    np.testing.assert_allclose(g.X_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(g.X_train.std(axis=0)[varying], 1.0, rtol=1e-4)
    # constant features (digits has all-zero pixels) stay finite thanks to the std floor
    assert (~varying).any() and np.isfinite(g.X_train).all() and np.isfinite(g.X_test).all()
    # test data uses the train statistics, not its own
    mean, std = D.fit_standardizer(ds.X_train)
    np.testing.assert_allclose(g.X_test, (ds.X_test - mean) / std, rtol=1e-5, atol=1e-5)
    assert mean.shape == (64,) and std.min() >= 1e-6
    # original untouched
    assert ds.X_train.min() >= 0.0
    with pytest.raises(ConfigError) as err:
        D.standardize(ds, "batch")
    assert err.value.key == "data.standardize" and "none, global, local" in str(err.value)
    with pytest.raises(DataError):
        D.standardize_with(ds.X_train, mean[:3], std)
    with pytest.raises(DataError):
        D.fit_standardizer(np.zeros((0, 4)))


def test_registry() -> None:
    assert {"digits", "synthetic", "npz"} <= set(D.available_datasets())
    ds = D.load_dataset("synthetic", num_train=30, num_test=10, dim=3, seed=2)
    assert ds.X_train.shape == (30, 3)
    with pytest.raises(ConfigError) as err:
        D.load_dataset("cifar")
    assert err.value.key == "data.dataset"
    assert "unknown dataset 'cifar'" in str(err.value) and "digits, npz, synthetic" in str(
        err.value
    )
    with pytest.raises(ConfigError) as err:
        D.load_dataset("digits", bogus=1)
    assert "test_fraction, seed" in str(err.value)

    def tiny(n: int = 4) -> D.Dataset:
        return _small(name=f"tiny{n}")

    D.register_dataset("tiny-test", tiny)
    try:
        assert D.load_dataset("tiny-test").name == "tiny4"
        with pytest.raises(ValueError):
            D.register_dataset("tiny-test", lambda: _small())
        D.register_dataset("tiny-test", lambda: _small(y_test=np.array([0, 1, 7])), replace=True)
        with pytest.raises(DataError):
            D.load_dataset("tiny-test")  # results are validated
    finally:
        D._REGISTRY.pop("tiny-test", None)
