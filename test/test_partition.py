"""Tests for gossip_learning.partition."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.errors import DataError
from gossip_learning.partition import (
    dirichlet_partition,
    iid_partition,
    label_distribution_distance,
    label_histograms,
    mean_label_skew,
)

LABELS = np.repeat(np.arange(10), 100)  # 10 classes × 100 samples


def _assert_exact_cover(parts: list[np.ndarray], n: int) -> None:
    allidx = np.concatenate(parts)
    assert allidx.size == n
    np.testing.assert_array_equal(np.sort(allidx), np.arange(n))
    for p in parts:
        assert p.dtype == np.int64


@pytest.mark.parametrize(("n", "r"), [(1000, 20), (103, 10), (7, 7), (5, 1)])
def test_iid_cover_and_balance(n: int, r: int) -> None:
    parts = iid_partition(n, r, np.random.default_rng(0))
    assert len(parts) == r
    _assert_exact_cover(parts, n)
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == n


def test_iid_is_shuffled_and_reproducible() -> None:
    a = iid_partition(100, 4, np.random.default_rng(3))
    b = iid_partition(100, 4, np.random.default_rng(3))
    c = iid_partition(100, 4, np.random.default_rng(4))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert not np.array_equal(a[0], np.arange(25))  # not a plain contiguous split


def test_iid_errors() -> None:
    with pytest.raises(DataError, match=r"5 robots.*3 samples"):
        iid_partition(3, 5, np.random.default_rng(0))
    with pytest.raises(DataError, match="min_size"):
        iid_partition(10, 4, np.random.default_rng(0), min_size=3)
    with pytest.raises(DataError):
        iid_partition(10, 0, np.random.default_rng(0))


def test_dirichlet_cover_and_min_size() -> None:
    parts = dirichlet_partition(LABELS, 20, 0.5, np.random.default_rng(1), min_size=10)
    assert len(parts) == 20
    _assert_exact_cover(parts, LABELS.size)
    assert min(p.size for p in parts) >= 10


def test_dirichlet_skew_grows_as_alpha_falls() -> None:
    skews = []
    for alpha in (100.0, 1.0, 0.1):
        parts = dirichlet_partition(LABELS, 20, alpha, np.random.default_rng(42))
        _assert_exact_cover(parts, LABELS.size)
        skews.append(mean_label_skew(label_histograms(LABELS, parts, 10)))
    assert skews[0] < skews[1] < skews[2]
    assert skews[0] < 0.4  # near IID
    assert skews[2] > 1.2  # robots hold only a few classes


def test_dirichlet_reproducible() -> None:
    a = dirichlet_partition(LABELS, 8, 0.3, np.random.default_rng(11))
    b = dirichlet_partition(LABELS, 8, 0.3, np.random.default_rng(11))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_dirichlet_unordered_labels_cover() -> None:
    labels = np.random.default_rng(0).integers(0, 3, size=57)
    parts = dirichlet_partition(labels, 5, 1.0, np.random.default_rng(0))
    _assert_exact_cover(parts, 57)
    h = label_histograms(labels, parts, 3)
    np.testing.assert_array_equal(h.sum(axis=0), np.bincount(labels, minlength=3))


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan")])
def test_dirichlet_bad_alpha(alpha: float) -> None:
    with pytest.raises(DataError, match="alpha"):
        dirichlet_partition(LABELS, 5, alpha, np.random.default_rng(0))


def test_dirichlet_impossible_min_size() -> None:
    with pytest.raises(DataError, match="min_size"):
        dirichlet_partition(LABELS, 20, 1.0, np.random.default_rng(0), min_size=51)
    # possible in principle, but not with alpha this small
    with pytest.raises(DataError, match="raise alpha"):
        dirichlet_partition(LABELS, 20, 0.01, np.random.default_rng(0), min_size=45, max_retries=5)
    with pytest.raises(DataError, match=r"5 robots"):
        dirichlet_partition(np.array([0, 1, 1]), 5, 1.0, np.random.default_rng(0))


def test_label_histograms_hand_example() -> None:
    labels = np.array([0, 1, 1, 2, 2, 2])
    parts = [np.array([0, 1]), np.array([2, 3, 4, 5]), np.array([], dtype=np.int64)]
    h = label_histograms(labels, parts, 4)
    assert h.dtype == np.int64
    np.testing.assert_array_equal(h, [[1, 1, 0, 0], [0, 1, 3, 0], [0, 0, 0, 0]])
    with pytest.raises(DataError):
        label_histograms(labels, parts, 2)


def test_label_distribution_distance_hand_values() -> None:
    assert label_distribution_distance(np.array([5, 5]), np.array([1, 1])) == 0.0
    assert label_distribution_distance(np.array([1, 0]), np.array([0, 3])) == pytest.approx(2.0)
    # p = (0.5, 0.5, 0), q = (0.25, 0.25, 0.5): |.25| + |.25| + |.5| = 1.0
    assert label_distribution_distance(np.array([2, 2, 0]), np.array([1, 1, 2])) == pytest.approx(
        1.0
    )
    with pytest.raises(DataError):
        label_distribution_distance(np.array([0, 0]), np.array([1, 1]))
    with pytest.raises(DataError):
        label_distribution_distance(np.array([1, 0]), np.array([1, 0, 0]))


def test_mean_label_skew_hand_values() -> None:
    # two robots, each one class, equal sizes: global (0.5, 0.5); each distance 1.0
    assert mean_label_skew(np.array([[10, 0], [0, 10]])) == pytest.approx(1.0)
    # identical distributions: 0
    assert mean_label_skew(np.array([[3, 1], [6, 2]])) == pytest.approx(0.0)
    # empty robots are left out
    assert mean_label_skew(np.array([[10, 0], [0, 10], [0, 0]])) == pytest.approx(1.0)
    # global = (30, 10)/40 = (.75, .25); robot 1 (1, 0): .5; robot 2 (.5, .5): .5
    assert mean_label_skew(np.array([[20, 0], [10, 10]])) == pytest.approx(0.5)
