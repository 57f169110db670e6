"""Cumulative FedAvg: equals the sample-weighted mean, ignores repeats, constant memory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip_learning.aggregation import CumulativeFedAvg, weighted_average


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 8),
    seed=st.integers(0, 10_000),
    order_seed=st.integers(0, 10_000),
)
def test_equals_weighted_mean_for_any_arrival_order(n: int, seed: int, order_seed: int) -> None:
    rng = np.random.default_rng(seed)
    models = rng.normal(size=(n + 1, 5)).astype(np.float32)
    weights = rng.integers(1, 500, size=n + 1).astype(float)
    acc = CumulativeFedAvg(5)
    acc.reset(0, models[0], weights[0])
    for j in np.random.default_rng(order_seed).permutation(np.arange(1, n + 1)):
        assert acc.add(int(j), models[j], weights[j])
    expected = weights @ models.astype(np.float64) / weights.sum()
    np.testing.assert_allclose(acc.finalise(), expected, rtol=1e-5, atol=1e-6)


def test_duplicate_sender_is_ignored() -> None:
    acc = CumulativeFedAvg(2)
    acc.reset(0, np.zeros(2, np.float32), 1.0)
    assert acc.add(1, np.ones(2, np.float32), 1.0)
    assert not acc.add(1, np.full(2, 100.0, np.float32), 1.0)
    assert not acc.add(0, np.full(2, 100.0, np.float32), 1.0)  # own id cannot be merged again
    np.testing.assert_allclose(acc.finalise(), [0.5, 0.5])
    assert acc.mixing_row() == {0: 0.5, 1: 0.5}


def test_peak_buffers_do_not_grow_with_neighbours() -> None:
    peaks = []
    for n in (1, 10, 200):
        acc = CumulativeFedAvg(100)
        acc.reset(0, np.zeros(100, np.float32), 1.0)
        for j in range(1, n + 1):
            acc.add(j, np.ones(100, np.float32), 1.0)
        acc.finalise()
        peaks.append(acc.peak_buffers)
    assert peaks == [3, 3, 3]


def test_misuse_is_an_error() -> None:
    acc = CumulativeFedAvg(3)
    with pytest.raises(RuntimeError):
        acc.add(1, np.zeros(3, np.float32), 1.0)
    acc.reset(0, np.zeros(3, np.float32), 1.0)
    with pytest.raises(ValueError, match="shape"):
        acc.add(1, np.zeros(4, np.float32), 1.0)
    with pytest.raises(ValueError, match="weight"):
        acc.add(2, np.zeros(3, np.float32), 0.0)


def test_weighted_average() -> None:
    models = np.array([[0.0, 2.0], [4.0, 6.0]], np.float32)
    np.testing.assert_allclose(weighted_average(models, np.array([3.0, 1.0])), [1.0, 3.0])
