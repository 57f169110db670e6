"""Mobility models for robots moving in a rectangular area ``[0, W] x [0, H]``.

Positions are float64 arrays of shape ``(N, 2)``. Time is in abstract units: one simulator round
is ``dt = 1.0``; a ROS driver may step in seconds. Every random draw uses the
``numpy.random.Generator`` the caller passes in, so a run is reproducible from its seed.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from gossip_learning.errors import ConfigError

Area = tuple[float, float]

MOBILITY_MODELS = ("random_direction", "random_waypoint", "static")
#: The parameters each model takes (config keys under ``mobility`` and mobility_node parameters).
MODEL_PARAMS: dict[str, tuple[str, ...]] = {
    "random_direction": ("speed", "turn_prob"),
    "random_waypoint": ("speed_min", "speed_max", "pause"),
    "static": (),
}


def model_params(model: str, source: Any) -> dict[str, Any]:
    """``model``'s parameters read from ``source``: a mapping (node parameters) or an object
    with attributes (``cfg.mobility``). The one place that maps settings to a model."""
    get = source.get if isinstance(source, dict) else lambda k: getattr(source, k)
    return {k: get(k) for k in MODEL_PARAMS.get(model, ())}


_MODEL_PARAMS: dict[str, tuple[str, ...]] = {
    "random_direction": ("speed", "turn_prob", "headings"),
    "random_waypoint": ("speed_min", "speed_max", "pause"),
    "static": (),
}


def _check_area(area: Any) -> Area:
    try:
        w, h = (float(v) for v in area)
    except (TypeError, ValueError):
        raise ConfigError(
            "mobility.area", f"must be a pair (width, height), got {area!r}"
        ) from None
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise ConfigError("mobility.area", f"width and height must be finite and > 0, got {area!r}")
    return (w, h)


def _check_positions(positions: Any, area: Area) -> np.ndarray:
    pos = np.array(positions, dtype=np.float64)  # always a private copy
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise ConfigError("mobility.positions", f"must have shape (N, 2), got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ConfigError("mobility.positions", "must be finite")
    w, h = area
    outside = (pos[:, 0] < 0) | (pos[:, 0] > w) | (pos[:, 1] < 0) | (pos[:, 1] > h)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ConfigError(
            "mobility.positions",
            f"robot {i} at {tuple(pos[i])} is outside the area [0, {w:g}] x [0, {h:g}]",
        )
    return pos


def _check_number(key: str, value: Any, *, low: float, high: float = math.inf) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"mobility.{key}", f"must be a number, got {value!r}") from None
    if not math.isfinite(v) or not (low <= v <= high):
        rng_txt = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise ConfigError(f"mobility.{key}", f"must be {rng_txt}, got {value!r}")
    return v


def _check_dt(dt: float) -> float:
    dt = float(dt)
    if not (dt >= 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
    return dt


def uniform_positions(n: int, area: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` positions uniformly in ``[0, W] x [0, H]``; returns a float64 ``(n, 2)`` array."""
    if n < 0:
        raise ConfigError("mobility.num_robots", f"must be >= 0, got {n}")
    w, h = _check_area(area)
    return rng.uniform(0.0, 1.0, size=(n, 2)) * np.array([w, h])


def _fold(x: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Reflect coordinates into ``[0, length]`` off both walls; also says which were flipped."""
    inside = (x >= 0) & (x <= length)
    k = np.floor(x / length)
    r = x - k * length
    odd = ~inside & ((k.astype(np.int64) % 2) == 1)
    folded = np.where(inside, x, np.where(odd, length - r, r))
    return np.clip(folded, 0.0, length), odd


class MobilityModel(ABC):
    """Base class: holds ``positions`` (N, 2) and ``area``; ``step(dt)`` moves every robot."""

    positions: np.ndarray
    area: Area

    def __init__(self, positions: Any, area: Any) -> None:
        self.area = _check_area(area)
        self.positions = _check_positions(positions, self.area)

    @property
    def n(self) -> int:
        """Number of robots."""
        return int(self.positions.shape[0])

    @abstractmethod
    def step(self, dt: float = 1.0) -> np.ndarray:
        """Advance by ``dt`` time units and return a copy of the new positions."""

    @abstractmethod
    def velocity(self) -> np.ndarray:
        """Velocity vector (N, 2) each robot will follow from now on (units per time unit)."""

    @property
    def velocities(self) -> np.ndarray:
        """Same as :meth:`velocity`."""
        return self.velocity()

    @property
    def headings(self) -> np.ndarray:
        """Heading angle in radians, in ``[0, 2π)``, of each robot's velocity (0 when still)."""
        v = self.velocity()
        return np.mod(np.arctan2(v[:, 1], v[:, 0]), 2 * np.pi)


class Static(MobilityModel):
    """Robots that never move."""

    def __init__(self, positions: Any, area: Any | None = None) -> None:
        if area is None:
            pos = np.asarray(positions, dtype=np.float64)
            hi = pos.max(axis=0) if pos.ndim == 2 and pos.size else np.ones(2)
            area = (max(float(hi[0]), 1.0), max(float(hi[1]), 1.0))
        super().__init__(positions, area)

    def step(self, dt: float = 1.0) -> np.ndarray:
        """Check ``dt`` and return the unchanged positions (a copy)."""
        _check_dt(dt)
        return self.positions.copy()

    def velocity(self) -> np.ndarray:
        """All zeros."""
        return np.zeros_like(self.positions)


class RandomDirection(MobilityModel):
    """The paper's model: straight moves at ``speed``, random re-headings, bounce off the walls.

    Per ``step(dt)`` every robot moves ``speed * dt`` along its heading, reflecting off the borders
    (the outward heading component is flipped, so it turns back and never leaves the area, however
    large the move). Then, with probability ``1 - (1 - turn_prob) ** dt`` (``turn_prob`` per unit
    time), it draws a new heading uniform in ``[0, 2π)`` for the next move.
    """

    def __init__(
        self,
        positions: Any,
        area: Any,
        speed: float = 1.0,
        turn_prob: float = 0.05,
        rng: np.random.Generator | None = None,
        headings: Any | None = None,
    ) -> None:
        super().__init__(positions, area)
        self.speed = _check_number("speed", speed, low=0.0)
        self.turn_prob = _check_number("turn_prob", turn_prob, low=0.0, high=1.0)
        if rng is None and (self.turn_prob > 0 or headings is None):
            raise ConfigError("mobility.rng", "RandomDirection needs a seeded numpy Generator")
        self.rng = rng
        if headings is None:
            assert rng is not None
            hd = rng.uniform(0.0, 2 * np.pi, size=self.n)
        else:
            hd = np.array(headings, dtype=np.float64).reshape(-1)
            if hd.shape != (self.n,) or not np.all(np.isfinite(hd)):
                raise ConfigError("mobility.headings", f"must be {self.n} finite angles (radians)")
        self._dir = np.stack([np.cos(hd), np.sin(hd)], axis=1)

    @property
    def headings(self) -> np.ndarray:
        """Current heading of each robot in radians, in ``[0, 2π)``."""
        return np.mod(np.arctan2(self._dir[:, 1], self._dir[:, 0]), 2 * np.pi)

    def velocity(self) -> np.ndarray:
        """``speed`` times the unit heading vector."""
        return self.speed * self._dir

    def step(self, dt: float = 1.0) -> np.ndarray:
        """Move, bounce off the walls, then maybe re-head; returns the new positions (a copy)."""
        dt = _check_dt(dt)
        target = self.positions + self.speed * dt * self._dir
        for axis, length in enumerate(self.area):
            self.positions[:, axis], flipped = _fold(target[:, axis], length)
            self._dir[flipped, axis] *= -1.0
        if self.turn_prob > 0 and self.n > 0:
            assert self.rng is not None
            p_turn = 1.0 - (1.0 - self.turn_prob) ** dt
            turn = self.rng.random(self.n) < p_turn
            new = self.rng.uniform(0.0, 2 * np.pi, size=self.n)
            self._dir[turn] = np.stack([np.cos(new[turn]), np.sin(new[turn])], axis=1)
        return self.positions.copy()


class RandomWaypoint(MobilityModel):
    """Random waypoint: go to a uniform waypoint at a speed in ``[speed_min, speed_max]``, pause.

    On arrival a robot waits ``pause`` time units; its next waypoint and speed are drawn on arrival.
    Time left over within one ``step`` after an arrival or a pause is used for the next leg.
    """

    _MAX_LEGS = 10_000  # guard against degenerate zero-length legs looping forever

    def __init__(
        self,
        positions: Any,
        area: Any,
        speed_min: float = 0.5,
        speed_max: float = 1.5,
        pause: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(positions, area)
        self.speed_min = _check_number("speed_min", speed_min, low=0.0)
        self.speed_max = _check_number("speed_max", speed_max, low=0.0)
        if self.speed_min > self.speed_max:
            raise ConfigError(
                "mobility.speed_min",
                f"must be <= speed_max, got speed_min={speed_min!r} > speed_max={speed_max!r}",
            )
        self.pause = _check_number("pause", pause, low=0.0)
        if rng is None:
            raise ConfigError("mobility.rng", "RandomWaypoint needs a seeded numpy Generator")
        self.rng = rng
        self.waypoints = self._draw_waypoints(self.n)
        self.speeds = self._draw_speeds(self.n)
        self.pause_left = np.zeros(self.n)

    def _draw_waypoints(self, k: int) -> np.ndarray:
        return self.rng.uniform(0.0, 1.0, size=(k, 2)) * np.array(self.area)

    def _draw_speeds(self, k: int) -> np.ndarray:
        return self.rng.uniform(self.speed_min, self.speed_max, size=k)

    def velocity(self) -> np.ndarray:
        """Speed times the unit vector to the waypoint; zero while pausing or at the waypoint."""
        delta = self.waypoints - self.positions
        dist = np.linalg.norm(delta, axis=1)
        moving = (self.pause_left <= 0) & (dist > 0)
        out = np.zeros_like(self.positions)
        out[moving] = delta[moving] * (self.speeds[moving] / dist[moving])[:, None]
        return out

    def step(self, dt: float = 1.0) -> np.ndarray:
        """Advance every robot by ``dt`` time units; returns the new positions (a copy)."""
        budget = np.full(self.n, _check_dt(dt))
        for _ in range(self._MAX_LEGS):
            if not (budget > 0).any():
                break
            pausing = (budget > 0) & (self.pause_left > 0)
            used = np.minimum(self.pause_left[pausing], budget[pausing])
            self.pause_left[pausing] -= used
            budget[pausing] -= used
            idx = np.flatnonzero((budget > 0) & (self.pause_left <= 0))
            if idx.size == 0:
                continue
            delta = self.waypoints[idx] - self.positions[idx]
            dist = np.linalg.norm(delta, axis=1)
            reach = self.speeds[idx] * budget[idx]
            arrive = reach >= dist
            go = idx[~arrive]
            frac = reach[~arrive] / dist[~arrive]
            self.positions[go] += delta[~arrive] * frac[:, None]
            budget[go] = 0.0
            arr = idx[arrive]
            if arr.size:
                spd = self.speeds[arr]
                travel = np.divide(dist[arrive], spd, out=np.zeros(arr.size), where=spd > 0)
                self.positions[arr] = self.waypoints[arr]
                budget[arr] = np.maximum(budget[arr] - travel, 0.0)
                self.pause_left[arr] = self.pause
                self.waypoints[arr] = self._draw_waypoints(arr.size)
                self.speeds[arr] = self._draw_speeds(arr.size)
        w, h = self.area
        np.clip(self.positions[:, 0], 0.0, w, out=self.positions[:, 0])
        np.clip(self.positions[:, 1], 0.0, h, out=self.positions[:, 1])
        return self.positions.copy()


def make_mobility(
    kind: str,
    positions: Any,
    area: tuple[float, float],
    rng: np.random.Generator,
    **params: Any,
) -> MobilityModel:
    """Build a mobility model by name: ``random_direction``, ``random_waypoint`` or ``static``.

    ``params`` are the model's keyword arguments; an unknown model or parameter, or a value out of
    range, raises :class:`ConfigError` naming the ``mobility.*`` key and the allowed values.
    """
    if kind not in _MODEL_PARAMS:
        raise ConfigError(
            "mobility.model", f"unknown model {kind!r}; allowed: {', '.join(MOBILITY_MODELS)}"
        )
    allowed = _MODEL_PARAMS[kind]
    for key in params:
        if key not in allowed:
            raise ConfigError(
                f"mobility.{key}",
                f"not a parameter of model {kind!r}; allowed: {', '.join(allowed) or '(none)'}",
            )
    if kind == "random_direction":
        return RandomDirection(positions, area, rng=rng, **params)
    if kind == "random_waypoint":
        return RandomWaypoint(positions, area, rng=rng, **params)
    return Static(positions, area)
