"""Metrics on the communication graph, on model agreement and on cluster dynamics."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components


def adjacency(in_range_mask: Any) -> np.ndarray:
    """Symmetric boolean adjacency without self loops from an ``(N, N)`` in-range mask.

    The mask may be asymmetric (``mask[i, j]``: i hears j); the link i–j exists only when both
    directions are in range, since gossip exchanges are push-pull.
    """
    m = np.asarray(in_range_mask, dtype=bool)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"in_range_mask must be square (N, N), got shape {m.shape}")
    adj = m & m.T
    np.fill_diagonal(adj, False)
    return adj


def _check_adj(adj: Any) -> np.ndarray:
    a = np.asarray(adj, dtype=bool)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be square (N, N), got shape {a.shape}")
    a = a.copy()
    np.fill_diagonal(a, False)
    if not np.array_equal(a, a.T):
        raise ValueError("adjacency must be symmetric; build it with adjacency()")
    return a


def degrees(adj: Any) -> np.ndarray:
    """Number of neighbours of each robot (diagonal ignored)."""
    return _check_adj(adj).sum(axis=1).astype(np.int64)


def metropolis_weights(adj: Any) -> np.ndarray:
    """Metropolis–Hastings gossip matrix: ``W_ij = 1/(1 + max(d_i, d_j))`` on edges, rows sum to 1.

    Symmetric and doubly stochastic for a symmetric ``adj`` (diagonal of ``adj`` ignored).
    """
    a = _check_adj(adj)
    d = a.sum(axis=1).astype(np.float64)
    w = np.where(a, 1.0 / (1.0 + np.maximum(d[:, None], d[None, :])), 0.0)
    np.fill_diagonal(w, 1.0 - w.sum(axis=1))
    return w


def spectral_gap(W: Any) -> float:
    """``1 − |λ₂|``: one minus the second largest eigenvalue modulus of ``W``, in ``[0, 1]``.

    Larger means faster averaging; a disconnected graph gives 0. ``N == 1`` gives 1.0.
    """
    w = np.asarray(W, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"W must be square (N, N), got shape {w.shape}")
    if w.shape[0] <= 1:
        return 1.0
    if np.allclose(w, w.T, rtol=0.0, atol=1e-12):
        ev = np.abs(np.linalg.eigvalsh((w + w.T) / 2))
    else:
        ev = np.abs(np.linalg.eigvals(w))
    ev = np.sort(ev)[::-1]
    return float(np.clip(1.0 - ev[1], 0.0, 1.0))


def comm_graph_spectral_gap(adj: Any) -> float:
    """Spectral gap of the Metropolis matrix of ``adj``."""
    return spectral_gap(metropolis_weights(adj))


def num_components(adj: Any) -> int:
    """Number of connected components (an isolated robot is one component)."""
    a = _check_adj(adj)
    if a.shape[0] == 0:
        return 0
    n, _ = connected_components(csr_array(a), directed=False)
    return int(n)


def isolated_robots(adj: Any) -> int:
    """Number of robots with no neighbour."""
    return int((degrees(adj) == 0).sum())


def consensus_distance(models: Any) -> float:
    """Mean over robots of ``‖w_i − w̄‖₂`` (``w̄`` the plain average); ``models`` is ``(R, P)``."""
    m = np.asarray(models)
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(f"models must be a non-empty (R, P) array, got shape {m.shape}")
    mean = m.mean(axis=0, dtype=np.float64)
    # In blocks of robots, so a 1,000-robot swarm never holds a float64 copy of every model.
    step = max(1, (1 << 20) // max(1, m.shape[1]))
    dists = [
        np.linalg.norm(m[i : i + step].astype(np.float64) - mean, axis=1)
        for i in range(0, m.shape[0], step)
    ]
    return float(np.concatenate(dists).mean())


def cluster_churn(
    prev_cluster: Any, cur_cluster: Any, prev_is_head: Any, cur_is_head: Any
) -> tuple[int, int]:
    """``(membership_changes, head_changes)``: robots whose cluster id, resp. head flag, changed."""
    pc, cc = np.asarray(prev_cluster), np.asarray(cur_cluster)
    ph, ch = np.asarray(prev_is_head, dtype=bool), np.asarray(cur_is_head, dtype=bool)
    if not (pc.shape == cc.shape == ph.shape == ch.shape) or pc.ndim != 1:
        raise ValueError(
            f"all four arrays must be 1-D of equal length, got {pc.shape}, {cc.shape}, "
            f"{ph.shape}, {ch.shape}"
        )
    return int((pc != cc).sum()), int((ph != ch).sum())


def count_clusters(cluster_ids: Any) -> int:
    """Number of distinct cluster ids."""
    return int(np.unique(np.asarray(cluster_ids)).size)
