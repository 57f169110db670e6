"""Tests for gossip_learning.graph_metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gossip_learning.graph_metrics import (
    adjacency,
    cluster_churn,
    comm_graph_spectral_gap,
    consensus_distance,
    count_clusters,
    degrees,
    isolated_robots,
    metropolis_weights,
    num_components,
    spectral_gap,
)


def _path(n: int) -> np.ndarray:
    a = np.zeros((n, n), dtype=bool)
    for i in range(n - 1):
        a[i, i + 1] = a[i + 1, i] = True
    return a


def _ring(n: int) -> np.ndarray:
    a = _path(n)
    a[0, n - 1] = a[n - 1, 0] = True
    return a


def test_adjacency_needs_both_directions_and_drops_self_loops() -> None:
    mask = np.array([[True, True, True], [True, True, False], [False, True, True]])
    adj = adjacency(mask)
    np.testing.assert_array_equal(
        adj, [[False, True, False], [True, False, False], [False, False, False]]
    )
    assert adj.dtype == bool
    with pytest.raises(ValueError):
        adjacency(np.ones((2, 3), dtype=bool))


def test_metropolis_hand_example_path3() -> None:
    w = metropolis_weights(_path(3))
    expected = np.array([[2, 1, 0], [1, 1, 1], [0, 1, 2]]) / 3
    np.testing.assert_allclose(w, expected)


def test_metropolis_doubly_stochastic_random_graph() -> None:
    rng = np.random.default_rng(0)
    adj = adjacency(rng.random((30, 30)) < 0.2)
    w = metropolis_weights(adj)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_array_equal(w, w.T)
    assert np.all(w >= 0)
    assert np.all(w[~adj & ~np.eye(30, dtype=bool)] == 0)
    with pytest.raises(ValueError, match="symmetric"):
        metropolis_weights(np.array([[False, True], [False, False]]))


@pytest.mark.parametrize("n", [2, 3, 7])
def test_complete_graph_gap_is_one(n: int) -> None:
    adj = ~np.eye(n, dtype=bool)
    w = metropolis_weights(adj)
    np.testing.assert_allclose(w, np.full((n, n), 1 / n))
    assert comm_graph_spectral_gap(adj) == pytest.approx(1.0)


def test_path3_gap_hand_value() -> None:
    # eigenvalues of the path-3 Metropolis matrix: 1, 2/3, 0 -> gap 1/3
    assert comm_graph_spectral_gap(_path(3)) == pytest.approx(1 / 3)


@pytest.mark.parametrize("n", [4, 6, 10, 25])
def test_ring_gap_closed_form(n: int) -> None:
    # W = (I + P + Pᵀ)/3 with eigenvalues (1 + 2cos(2πk/n))/3
    lam = [(1 + 2 * math.cos(2 * math.pi * k / n)) / 3 for k in range(1, n)]
    expected = 1 - max(abs(x) for x in lam)
    assert comm_graph_spectral_gap(_ring(n)) == pytest.approx(expected)


def test_disconnected_gap_zero_and_components() -> None:
    adj = np.zeros((5, 5), dtype=bool)
    adj[0, 1] = adj[1, 0] = True
    adj[2, 3] = adj[3, 2] = True
    assert comm_graph_spectral_gap(adj) == 0.0
    assert num_components(adj) == 3
    assert isolated_robots(adj) == 1
    np.testing.assert_array_equal(degrees(adj), [1, 1, 1, 1, 0])
    assert comm_graph_spectral_gap(np.zeros((4, 4), dtype=bool)) == 0.0


def test_spectral_gap_edge_cases() -> None:
    assert spectral_gap(np.ones((1, 1))) == 1.0
    assert comm_graph_spectral_gap(np.zeros((1, 1), dtype=bool)) == 1.0
    # symmetric and asymmetric stochastic matrices, both with eigenvalues 1 and 0.5 -> gap 0.5
    w = np.array([[0.75, 0.25], [0.25, 0.75]])
    w_asym = np.array([[0.9, 0.1], [0.4, 0.6]])
    assert spectral_gap(w) == pytest.approx(0.5)
    assert spectral_gap(w_asym) == pytest.approx(0.5)
    # a permutation matrix never mixes: all moduli 1 -> gap 0
    assert spectral_gap(np.array([[0.0, 1.0], [1.0, 0.0]])) == 0.0


def test_consensus_distance() -> None:
    same = np.tile(np.array([1.0, -2.0, 3.0]), (5, 1))
    assert consensus_distance(same) == 0.0
    # mean (1, 1); distances: |(-1,-1)| = √2, |(1,1)| = √2, |(0,0)| = 0 -> mean 2√2/3
    models = np.array([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])
    assert consensus_distance(models) == pytest.approx(2 * math.sqrt(2) / 3)
    with pytest.raises(ValueError):
        consensus_distance(np.zeros(3))


def test_cluster_churn_hand_example() -> None:
    prev = np.array([0, 0, 1, 1, 2])
    cur = np.array([0, 1, 1, 1, 0])
    prev_head = np.array([True, False, True, False, True])
    cur_head = np.array([True, True, False, False, False])
    assert cluster_churn(prev, cur, prev_head, cur_head) == (2, 3)
    assert cluster_churn(prev, prev, prev_head, prev_head) == (0, 0)
    with pytest.raises(ValueError):
        cluster_churn(prev, cur[:3], prev_head, cur_head)


def test_count_clusters() -> None:
    assert count_clusters(np.array([3, 3, 7, 1, 7])) == 3
    assert count_clusters(np.array([], dtype=np.int64)) == 0
