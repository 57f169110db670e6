"""Split sample indices among robots (IID or per-class Dirichlet) and measure label skew.

Every function returns one sorted int64 index array per robot; each sample index appears in exactly
one part. Randomness comes only from the ``numpy.random.Generator`` passed in.

Label skew uses Zhao et al. 2018 ("Federated learning with non-IID data"): the distance between
two label distributions ``p`` and ``q`` is ``Σ_c |p_c − q_c|``, in ``[0, 2]``. On a categorical
label space this is twice the earth mover's distance with unit ground distance between distinct
labels (that EMD is the total variation ``0.5·Σ|p − q|``); equivalently it is the EMD with ground
distance 2. We keep Zhao et al.'s ``Σ|p − q|`` convention throughout.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gossip_learning.errors import DataError


def _check_counts(num_samples: int, num_parts: int, min_size: int) -> None:
    if num_parts < 1:
        raise DataError(f"need at least 1 robot to split data among, got {num_parts}")
    if min_size < 0:
        raise DataError(f"min_size must be >= 0, got {min_size}")
    need = num_parts * min_size
    if num_samples < need:
        raise DataError(
            f"cannot give {num_parts} robots at least {min_size} sample(s) each from only "
            f"{num_samples} samples (need {need}); use fewer robots, more samples or a smaller "
            f"min_size"
        )


def iid_partition(
    num_samples: int, num_parts: int, rng: np.random.Generator, min_size: int = 1
) -> list[np.ndarray]:
    """Shuffle ``range(num_samples)`` into ``num_parts`` parts whose sizes differ by at most 1.

    Raises :class:`DataError` when the samples cannot give every part ``min_size`` samples (with the
    default ``min_size=1``: more robots than samples).
    """
    _check_counts(num_samples, num_parts, min_size)
    perm = rng.permutation(num_samples)
    return [np.sort(p).astype(np.int64) for p in np.array_split(perm, num_parts)]


def dirichlet_partition(
    labels: Any,
    num_parts: int,
    alpha: float,
    rng: np.random.Generator,
    min_size: int = 1,
    max_retries: int = 100,
) -> list[np.ndarray]:
    """Per-class Dirichlet split: each class's shuffled indices are cut in ``Dir(alpha·1)`` shares.

    Small ``alpha`` gives strongly skewed label mixes, large ``alpha`` approaches IID. The whole
    draw is repeated until every part has at least ``min_size`` samples; after ``max_retries``
    failed draws, or for ``alpha <= 0``, a :class:`DataError` says what to change.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"labels must be a 1-D array, got shape {y.shape}")
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise DataError(f"Dirichlet alpha must be a number, got {alpha!r}") from None
    if not (math.isfinite(alpha) and alpha > 0):
        raise DataError(f"Dirichlet alpha must be a finite number > 0, got {alpha!r}")
    if max_retries < 1:
        raise DataError(f"max_retries must be >= 1, got {max_retries}")
    _check_counts(y.size, num_parts, min_size)
    by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    conc = np.full(num_parts, float(alpha))
    for _ in range(max_retries):
        chunks: list[list[np.ndarray]] = [[] for _ in range(num_parts)]
        for idx in by_class:
            idx = rng.permutation(idx)
            props = rng.dirichlet(conc)
            cuts = np.floor(np.cumsum(props)[:-1] * idx.size).astype(np.int64)
            for part, piece in enumerate(np.split(idx, np.clip(cuts, 0, idx.size))):
                chunks[part].append(piece)
        parts = [np.sort(np.concatenate(c)).astype(np.int64) for c in chunks]
        if min(p.size for p in parts) >= min_size:
            return parts
    raise DataError(
        f"Dirichlet split (alpha={alpha:g}) left some of the {num_parts} robots with fewer than "
        f"{min_size} sample(s) in all {max_retries} tries ({y.size} samples); raise alpha, lower "
        f"min_size or use fewer robots"
    )


def label_histograms(labels: Any, parts: list[np.ndarray], num_classes: int) -> np.ndarray:
    """Per-robot label counts, shape ``(len(parts), num_classes)``, int64."""
    y = np.asarray(labels)
    out = np.zeros((len(parts), num_classes), dtype=np.int64)
    for r, part in enumerate(parts):
        lab = y[np.asarray(part, dtype=np.int64)]
        if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
            raise DataError(
                f"robot {r} holds label {int(lab.max() if lab.max() >= num_classes else lab.min())}"
                f" outside [0, {num_classes})"
            )
        out[r] = np.bincount(lab.astype(np.int64), minlength=num_classes)
    return out


def _normalise(h: Any) -> np.ndarray:
    v = np.asarray(h, dtype=np.float64)
    total = v.sum(axis=-1, keepdims=True)
    if np.any(v < 0) or np.any(total <= 0):
        raise DataError("a label histogram must be non-negative with a positive total")
    return v / total


def label_distribution_distance(h1: Any, h2: Any) -> float:
    """``Σ_c |p_c − q_c|`` in ``[0, 2]`` between normalised histograms (Zhao et al. 2018's EMD)."""
    a, b = np.asarray(h1), np.asarray(h2)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"histograms must be 1-D with equal shapes, got {a.shape} and {b.shape}")
    return float(np.abs(_normalise(a) - _normalise(b)).sum())


def mean_label_skew(hist: Any) -> float:
    """Mean over robots of ``Σ|p_robot − p_global|``; robots with no samples are left out."""
    h = np.asarray(hist, dtype=np.float64)
    if h.ndim != 2:
        raise DataError(f"hist must be 2-D (robots, classes), got shape {h.shape}")
    h = h[h.sum(axis=1) > 0]
    if h.shape[0] == 0:
        raise DataError("no robot holds any sample")
    glob = _normalise(h.sum(axis=0))
    return float(np.abs(_normalise(h) - glob).sum(axis=1).mean())
