"""Tests for gossip_learning.mobility."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.errors import ConfigError
from gossip_learning.mobility import (
    MobilityModel,
    RandomDirection,
    RandomWaypoint,
    Static,
    make_mobility,
    uniform_positions,
)

AREA = (100.0, 50.0)


def _inside(pos: np.ndarray, area: tuple[float, float]) -> bool:
    return bool(
        np.all(pos[:, 0] >= 0)
        and np.all(pos[:, 0] <= area[0])
        and np.all(pos[:, 1] >= 0)
        and np.all(pos[:, 1] <= area[1])
    )


def test_uniform_positions_shape_area_and_seed() -> None:
    a = uniform_positions(500, AREA, np.random.default_rng(1))
    b = uniform_positions(500, AREA, np.random.default_rng(1))
    assert a.shape == (500, 2) and a.dtype == np.float64
    assert _inside(a, AREA)
    np.testing.assert_array_equal(a, b)
    # uses the whole area, not the unit square
    assert a[:, 0].max() > 90 and a[:, 1].max() > 40


@pytest.mark.parametrize("speed", [1.0, 7.0, 333.0])
def test_random_direction_stays_in_area(speed: float) -> None:
    rng = np.random.default_rng(2)
    m = RandomDirection(uniform_positions(50, AREA, rng), AREA, speed=speed, turn_prob=0.1, rng=rng)
    for _ in range(300):
        pos = m.step()
        assert _inside(pos, AREA)
    # with fractional dt too
    for _ in range(50):
        assert _inside(m.step(0.37), AREA)


def test_random_direction_reproducible() -> None:
    def run(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        m = make_mobility("random_direction", uniform_positions(20, AREA, rng), AREA, rng)
        for _ in range(100):
            m.step()
        return m.positions

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_random_direction_moves_speed_per_step_away_from_walls() -> None:
    rng = np.random.default_rng(3)
    start = np.array([[50.0, 25.0], [40.0, 20.0]])
    m = RandomDirection(start, AREA, speed=2.0, turn_prob=0.5, rng=rng)
    new = m.step()
    np.testing.assert_allclose(np.linalg.norm(new - start, axis=1), [2.0, 2.0])


def test_turn_prob_zero_straight_line_then_bounce() -> None:
    # heading 0 (east) from x=90 in a width-100 area: 90 -> 95 -> 100 -> 95 (turned back) -> 90
    m = RandomDirection(np.array([[90.0, 10.0]]), AREA, speed=5.0, turn_prob=0.0, headings=[0.0])
    xs = [m.step()[0, 0] for _ in range(4)]
    np.testing.assert_allclose(xs, [95.0, 100.0, 95.0, 90.0])
    np.testing.assert_allclose(m.velocity(), [[-5.0, 0.0]])
    # y never changed: a straight line
    assert m.positions[0, 1] == 10.0


def test_bounce_reflects_position_and_outward_component_only() -> None:
    # heading 45° from (99, 49): one step of sqrt(2)*2 crosses both walls by 1
    start = np.array([[99.0, 49.0]])
    m = RandomDirection(start, AREA, speed=2 * np.sqrt(2), turn_prob=0.0, headings=[np.pi / 4])
    pos = m.step()
    np.testing.assert_allclose(pos, [[99.0, 49.0]])
    np.testing.assert_allclose(m.velocity(), [[-2.0, -2.0]])
    np.testing.assert_allclose(m.headings, [5 * np.pi / 4])


def test_velocity_is_speed_times_heading() -> None:
    rng = np.random.default_rng(4)
    m = RandomDirection(uniform_positions(10, AREA, rng), AREA, speed=1.5, rng=rng)
    v = m.velocity()
    assert v.shape == (10, 2)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.5)
    np.testing.assert_allclose(v, 1.5 * np.stack([np.cos(m.headings), np.sin(m.headings)], 1))
    np.testing.assert_array_equal(m.velocities, v)


def test_turn_prob_one_redraws_every_step_and_dt_zero_never() -> None:
    rng = np.random.default_rng(5)
    m = RandomDirection(np.full((200, 2), 25.0), AREA, speed=0.0, turn_prob=1.0, rng=rng)
    h0 = m.headings
    m.step()
    assert np.all(m.headings != h0)
    h1 = m.headings
    m.step(0.0)
    np.testing.assert_array_equal(m.headings, h1)


def test_step_returns_copy() -> None:
    m = Static(np.array([[1.0, 2.0]]), AREA)
    out = m.step()
    out[0, 0] = 99.0
    assert m.positions[0, 0] == 1.0


def test_static_never_moves() -> None:
    rng = np.random.default_rng(6)
    start = uniform_positions(15, AREA, rng)
    m = make_mobility("static", start, AREA, rng)
    assert isinstance(m, Static) and isinstance(m, MobilityModel)
    for _ in range(20):
        np.testing.assert_array_equal(m.step(), start)
    np.testing.assert_array_equal(m.velocity(), np.zeros((15, 2)))


def test_random_waypoint_reaches_waypoint_and_pauses() -> None:
    rng = np.random.default_rng(7)
    m = RandomWaypoint(
        np.array([[10.0, 10.0]]), AREA, speed_min=1.0, speed_max=1.0, pause=3.0, rng=rng
    )
    target = m.waypoints[0].copy()
    dist = float(np.linalg.norm(target - [10.0, 10.0]))
    steps = int(np.ceil(dist))
    for k in range(steps - 1):
        pos = m.step()
        assert np.linalg.norm(pos[0] - [10.0, 10.0]) == pytest.approx(k + 1)
    pos = m.step()  # arrives inside this step, then pauses for the rest of it
    np.testing.assert_allclose(pos[0], target)
    np.testing.assert_array_equal(m.velocity(), [[0.0, 0.0]])
    left = 3.0 - (steps - dist)  # pause left after the arrival step
    for _ in range(int(np.floor(left))):
        np.testing.assert_allclose(m.step()[0], target)
    pos = m.step()  # pause ends inside this step; moves the remaining time at speed 1
    moved = float(np.linalg.norm(pos[0] - target))
    assert moved == pytest.approx(1.0 - (left - np.floor(left)))
    assert moved > 0


def test_random_waypoint_stays_in_area_and_speeds_in_bounds() -> None:
    rng = np.random.default_rng(8)
    m = make_mobility(
        "random_waypoint",
        uniform_positions(40, AREA, rng),
        AREA,
        rng,
        speed_min=0.5,
        speed_max=30.0,
    )
    assert isinstance(m, RandomWaypoint)
    for _ in range(200):
        prev = m.positions.copy()
        pos = m.step()
        assert _inside(pos, AREA)
        assert np.all(np.linalg.norm(pos - prev, axis=1) <= 30.0 + 1e-9)
        assert np.all((m.speeds >= 0.5) & (m.speeds <= 30.0))


def test_random_waypoint_reproducible() -> None:
    def run() -> np.ndarray:
        rng = np.random.default_rng(9)
        m = RandomWaypoint(uniform_positions(10, AREA, rng), AREA, pause=1.5, rng=rng)
        for _ in range(50):
            m.step()
        return m.positions

    np.testing.assert_array_equal(run(), run())


@pytest.mark.parametrize(
    ("kind", "params", "key"),
    [
        ("brownian", {}, "mobility.model"),
        ("random_direction", {"speed": -1.0}, "mobility.speed"),
        ("random_direction", {"turn_prob": 1.5}, "mobility.turn_prob"),
        ("random_direction", {"turn_prob": -0.1}, "mobility.turn_prob"),
        ("random_direction", {"speed_min": 1.0}, "mobility.speed_min"),
        ("random_waypoint", {"speed_min": 2.0, "speed_max": 1.0}, "mobility.speed_min"),
        ("random_waypoint", {"pause": -1.0}, "mobility.pause"),
        ("static", {"speed": 1.0}, "mobility.speed"),
    ],
)
def test_make_mobility_errors(kind: str, params: dict[str, float], key: str) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError) as exc:
        make_mobility(kind, np.zeros((3, 2)), AREA, rng, **params)
    assert exc.value.key == key


def test_unknown_model_names_allowed_values() -> None:
    with pytest.raises(ConfigError, match="random_direction, random_waypoint, static"):
        make_mobility("levy", np.zeros((1, 2)), AREA, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("positions", "area", "key"),
    [
        (np.zeros((3, 2)), (0.0, 10.0), "mobility.area"),
        (np.zeros((3, 2)), (10.0, -1.0), "mobility.area"),
        (np.zeros((3, 3)), (10.0, 10.0), "mobility.positions"),
        (np.array([[5.0, 11.0]]), (10.0, 10.0), "mobility.positions"),
        (np.array([[-0.1, 1.0]]), (10.0, 10.0), "mobility.positions"),
    ],
)
def test_bad_area_or_positions(positions: np.ndarray, area: tuple[float, float], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        make_mobility("static", positions, area, np.random.default_rng(0))
    assert exc.value.key == key


def test_negative_dt_rejected() -> None:
    m = RandomDirection(np.zeros((1, 2)), AREA, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="dt"):
        m.step(-1.0)
