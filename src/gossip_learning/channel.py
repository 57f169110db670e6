"""Radio channel models: which robots can hear which, and with what probability.

A channel maps distances to a per-link reception probability. ``in_range`` (probability > 0)
is the neighbour graph: the links that can ever work. ``sample`` draws one Bernoulli outcome per
link with the caller's ``numpy.random.Generator``. Self-links (zero distance on the diagonal) get
no special treatment.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from gossip_learning.errors import ConfigError

CHANNEL_MODELS = ("unit_disk", "log_distance")


def pairwise_distances(positions: Any) -> np.ndarray:
    """Euclidean distance matrix (N, N) of positions (N, 2); exactly symmetric, zero diagonal."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2:
        raise ValueError(f"positions must have shape (N, D), got {pos.shape}")
    diff = pos[:, None, :] - pos[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))


def _check(key: str, value: Any, *, low: float, strict: bool, high: float = math.inf) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"channel.{key}", f"must be a number, got {value!r}") from None
    ok = math.isfinite(v) and (v > low if strict else v >= low) and v <= high
    if not ok:
        bound = f"> {low:g}" if strict else f">= {low:g}"
        if high != math.inf:
            bound = f"in [{low:g}, {high:g}]"
        raise ConfigError(f"channel.{key}", f"must be {bound}, got {value!r}")
    return v


class Channel(ABC):
    """A link model: reception probability as a function of distance."""

    comm_range: float

    @abstractmethod
    def reception_probability(self, dist: Any) -> np.ndarray:
        """Probability in [0, 1] that a message over each distance is received (same shape)."""

    def in_range(self, dist: Any) -> np.ndarray:
        """Boolean mask of links that can ever work (reception probability > 0)."""
        return self.reception_probability(dist) > 0

    def sample(self, dist: Any, rng: np.random.Generator) -> np.ndarray:
        """One Bernoulli draw per entry: True where the message gets through."""
        p = self.reception_probability(dist)
        return rng.random(p.shape) < p


class UnitDisk(Channel):
    """Perfect links up to ``comm_range`` (inclusive), nothing beyond."""

    def __init__(self, comm_range: float) -> None:
        self.comm_range = _check("comm_range", comm_range, low=0.0, strict=True)

    def reception_probability(self, dist: Any) -> np.ndarray:
        """1.0 where ``dist <= comm_range``, else 0.0."""
        d = np.asarray(dist, dtype=np.float64)
        return (d <= self.comm_range).astype(np.float64)

    def __repr__(self) -> str:
        return f"UnitDisk(comm_range={self.comm_range:g})"


class LogDistance(Channel):
    """Log-distance path loss with log-normal shadowing.

    Received power at distance ``d`` is ``P(d) = P(R) - 10·n·log10(d/R) + X`` with path-loss
    exponent ``n`` and shadowing ``X ~ N(0, σ²)`` in dB (``σ = shadowing_db``); a packet is received
    when ``P(d)`` is at least the receiver threshold, which the mean power reaches at
    ``d = R = comm_range``. Hence ``p(d) = Q(10·n·log10(d/R) / σ)`` with ``Q`` the standard normal
    tail: ``p(R) = 0.5``, ``p → 1`` as ``d → 0`` (``p(0) = 1``), ``p → 0`` far away, and ``p = 0``
    beyond ``max_range`` (default ``2·R``; inclusive bound). ``σ = 0`` degenerates to a unit disk of
    radius ``R``.
    """

    def __init__(
        self,
        comm_range: float,
        exponent: float = 3.0,
        shadowing_db: float = 4.0,
        max_range: float | None = None,
    ) -> None:
        self.comm_range = _check("comm_range", comm_range, low=0.0, strict=True)
        self.exponent = _check("exponent", exponent, low=0.0, strict=True)
        self.shadowing_db = _check("shadowing_db", shadowing_db, low=0.0, strict=False)
        if max_range is None:
            self.max_range = 2.0 * self.comm_range
        else:
            self.max_range = _check("max_range", max_range, low=0.0, strict=True)
            if self.max_range < self.comm_range:
                raise ConfigError(
                    "channel.max_range",
                    f"must be >= comm_range ({self.comm_range:g}), got {max_range!r}",
                )

    def reception_probability(self, dist: Any) -> np.ndarray:
        """``Q(10·n·log10(d/R)/σ)`` for ``d <= max_range``, else 0."""
        d = np.asarray(dist, dtype=np.float64)
        with np.errstate(divide="ignore"):
            margin_db = 10.0 * self.exponent * np.log10(d / self.comm_range)
        if self.shadowing_db == 0:
            p = (d <= self.comm_range).astype(np.float64)
        else:
            from scipy.special import erfc  # lazy: robots on unit-disk links never load scipy

            p = 0.5 * erfc(margin_db / (self.shadowing_db * math.sqrt(2.0)))
        return np.where(d <= self.max_range, p, 0.0)

    def __repr__(self) -> str:
        return (
            f"LogDistance(comm_range={self.comm_range:g}, exponent={self.exponent:g}, "
            f"shadowing_db={self.shadowing_db:g}, max_range={self.max_range:g})"
        )


class BernoulliLoss(Channel):
    """Independent packet loss on top of another channel: ``p = p_inner · (1 − loss_prob)``."""

    def __init__(self, inner: Channel, loss_prob: float) -> None:
        self.inner = inner
        self.loss_prob = _check("loss_prob", loss_prob, low=0.0, strict=False, high=1.0)
        self.comm_range = inner.comm_range

    def reception_probability(self, dist: Any) -> np.ndarray:
        """Inner probability scaled by ``1 − loss_prob``."""
        return self.inner.reception_probability(dist) * (1.0 - self.loss_prob)

    def in_range(self, dist: Any) -> np.ndarray:
        """The inner channel's neighbour graph (loss does not remove neighbours)."""
        return self.inner.in_range(dist)

    def __repr__(self) -> str:
        return f"BernoulliLoss({self.inner!r}, loss_prob={self.loss_prob:g})"


def make_channel(
    model: str,
    comm_range: float,
    loss_prob: float = 0.0,
    exponent: float = 3.0,
    shadowing_db: float = 4.0,
    max_range: float | None = None,
) -> Channel:
    """Build a channel by name (``unit_disk`` or ``log_distance``); ``loss_prob > 0`` adds loss.

    ``exponent``, ``shadowing_db`` and ``max_range`` only apply to ``log_distance``. Bad values
    raise :class:`ConfigError` with the ``channel.*`` key.
    """
    if model not in CHANNEL_MODELS:
        raise ConfigError(
            "channel.model", f"unknown model {model!r}; allowed: {', '.join(CHANNEL_MODELS)}"
        )
    comm_range = _check("comm_range", comm_range, low=0.0, strict=True)
    loss = _check("loss_prob", loss_prob, low=0.0, strict=False, high=1.0)
    inner: Channel
    if model == "unit_disk":
        inner = UnitDisk(comm_range)
    else:
        inner = LogDistance(comm_range, exponent, shadowing_db, max_range)
    return BernoulliLoss(inner, loss) if loss > 0 else inner


class GilbertElliott:
    """Burst loss: every link is a two-state Markov chain, good (no extra loss) or bad (loss
    ``loss``), advanced once per phase with the caller's generator. In the long run a link is bad
    ``enter / (enter + leave)`` of the time; a bad spell lasts ``1 / leave`` phases on average.
    Used next to a channel's independent loss, not instead of it."""

    def __init__(self, n: int, enter: float, leave: float, loss: float) -> None:
        self.enter = _check("burst_enter", enter, low=0.0, strict=False, high=1.0)
        self.leave = _check("burst_leave", leave, low=0.0, strict=True, high=1.0)
        self.loss = _check("burst_loss", loss, low=0.0, strict=False, high=1.0)
        self.bad = np.zeros((n, n), dtype=bool)
        self.keep = np.ones((n, n))  # reception factor of each link now

    def step(self, rng: np.random.Generator) -> None:
        """Advance every link one phase."""
        u = rng.random(self.bad.shape)
        self.bad = np.where(self.bad, u >= self.leave, u < self.enter)
        self.keep = np.where(self.bad, 1.0 - self.loss, 1.0)

    @property
    def stationary_loss(self) -> float:
        """Long-run share of messages the bad state drops."""
        return self.loss * self.enter / (self.enter + self.leave)
