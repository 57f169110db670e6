"""Cumulative FedAvg: equals the sample-weighted mean, ignores repeats, constant memory."""

from __future__ import annotations

import tracemalloc

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
    out = acc.finalise(np.empty(5, np.float32))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_duplicate_sender_is_ignored() -> None:
    acc = CumulativeFedAvg(2)
    acc.reset(0, np.zeros(2, np.float32), 1.0)
    assert acc.add(1, np.ones(2, np.float32), 1.0)
    assert not acc.add(1, np.full(2, 100.0, np.float32), 1.0)
    assert not acc.add(0, np.full(2, 100.0, np.float32), 1.0)  # own id cannot be merged again
    assert acc.mixing_row() == {0: 0.5, 1: 0.5}
    np.testing.assert_allclose(acc.finalise(np.empty(2, np.float32)), [0.5, 0.5])


@pytest.mark.allocations
@pytest.mark.parametrize("neighbours", [1, 10, 100])
def test_merging_allocates_no_model_sized_memory(neighbours: int) -> None:
    """tracemalloc sees no model-sized allocation while any number of models is merged: the
    accumulator and its scratch vector are allocated once, in the constructor."""
    size = 50_000  # 200 kB per float32 model, far above the bookkeeping of a merge
    models = [np.full(size, j, np.float32) for j in range(neighbours + 1)]
    out = np.empty(size, np.float32)
    acc = CumulativeFedAvg(size)
    assert acc.nbytes == 2 * size * 8
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        acc.reset(0, models[0], 3.0)
        for j in range(1, neighbours + 1):
            acc.add(j, models[j], 1.0 + j)
        acc.finalise(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 0.05 * models[0].nbytes
    weights = np.array([3.0, *(1.0 + j for j in range(1, neighbours + 1))])
    expected = weights @ np.arange(neighbours + 1) / weights.sum()
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_large_finite_models_do_not_overflow_the_sum() -> None:
    """Models are upcast before they are multiplied by their sample count."""
    acc = CumulativeFedAvg(3)
    big = np.full(3, 3e38, np.float32)
    acc.reset(0, big, 1000.0)
    assert acc.add(1, big, 1000.0)
    out = acc.finalise(np.empty(3, np.float32))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, big, rtol=1e-6)


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


def test_clipping_pulls_a_far_model_onto_the_sphere_around_the_own_one() -> None:
    own = np.ones(4, np.float32)  # norm 2: radius = 0.5 * 2 = 1
    acc = CumulativeFedAvg(4, clip_ratio=0.5)
    acc.reset(0, own, 1.0)
    assert acc.add(1, own + np.array([10.0, 0, 0, 0], np.float32), 1.0)
    assert acc.add(2, own + np.array([0, 0.5, 0, 0], np.float32), 1.0)  # inside: as it is
    out = np.empty(4, np.float32)
    acc.finalise(out)
    np.testing.assert_allclose(out, own + np.array([1.0, 0.5, 0, 0]) / 3, rtol=1e-6)
    assert acc.clipped == 1


def test_the_norm_bound_is_on_the_rms_weight() -> None:
    acc = CumulativeFedAvg(4, max_rms=10.0)
    acc.reset(0, np.zeros(4, np.float32), 1.0)
    assert not acc.out_of_bound(np.full(4, 10.0, np.float32))
    assert acc.out_of_bound(np.full(4, 10.5, np.float32))
    assert acc.out_of_bound(np.full(4, 3e38, np.float32))
