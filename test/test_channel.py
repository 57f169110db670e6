"""Tests for gossip_learning.channel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gossip_learning.channel import (
    BernoulliLoss,
    Channel,
    LogDistance,
    UnitDisk,
    make_channel,
    pairwise_distances,
)
from gossip_learning.errors import ConfigError


def test_pairwise_distances_hand_example() -> None:
    pos = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 0.0]])
    d = pairwise_distances(pos)
    expected = np.array([[0.0, 5.0, 6.0], [5.0, 0.0, 5.0], [6.0, 5.0, 0.0]])
    np.testing.assert_allclose(d, expected)
    np.testing.assert_array_equal(np.diag(d), 0.0)
    np.testing.assert_array_equal(d, d.T)


def test_pairwise_distances_empty_and_single() -> None:
    assert pairwise_distances(np.zeros((0, 2))).shape == (0, 0)
    np.testing.assert_array_equal(pairwise_distances(np.array([[1.0, 2.0]])), [[0.0]])


def test_unit_disk_boundary_inclusive() -> None:
    ch = UnitDisk(10.0)
    d = np.array([0.0, 5.0, 10.0, np.nextafter(10.0, 11.0), 20.0])
    np.testing.assert_array_equal(ch.reception_probability(d), [1.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(ch.in_range(d), [True, True, True, False, False])
    rng = np.random.default_rng(0)
    for _ in range(20):
        np.testing.assert_array_equal(ch.sample(d, rng), [True, True, True, False, False])


def test_unit_disk_on_positions_matrix() -> None:
    pos = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 0.0]])
    mask = make_channel("unit_disk", 5.0).in_range(pairwise_distances(pos))
    expected = np.array([[True, True, False], [True, True, True], [False, True, True]])
    np.testing.assert_array_equal(mask, expected)


def test_bernoulli_loss_rate_matches_loss_prob() -> None:
    ch = make_channel("unit_disk", 10.0, loss_prob=0.3)
    assert isinstance(ch, BernoulliLoss)
    d = np.full((200, 200), 4.0)
    got = ch.sample(d, np.random.default_rng(123))
    # 40,000 draws: std of the rate ≈ 0.0023; allow a wide margin
    assert abs(got.mean() - 0.7) < 0.02
    np.testing.assert_allclose(ch.reception_probability(np.array([4.0, 11.0])), [0.7, 0.0])
    # loss does not remove neighbours, even at loss 1
    assert ch.in_range(d).all()
    assert BernoulliLoss(UnitDisk(10.0), 1.0).in_range(np.array([4.0])).all()
    assert not BernoulliLoss(UnitDisk(10.0), 1.0).sample(d, np.random.default_rng(0)).any()


def test_zero_loss_is_not_wrapped() -> None:
    assert isinstance(make_channel("unit_disk", 10.0), UnitDisk)
    assert isinstance(make_channel("log_distance", 10.0), LogDistance)


def test_log_distance_shape_of_curve() -> None:
    ch = LogDistance(50.0, exponent=3.0, shadowing_db=4.0)
    assert ch.max_range == 100.0
    d = np.linspace(0.0, 100.0, 401)
    p = ch.reception_probability(d)
    assert p[0] == 1.0
    assert np.all(np.diff(p) <= 0)  # monotone non-increasing
    assert np.all((p >= 0) & (p <= 1))
    assert ch.reception_probability(np.array(50.0)) == pytest.approx(0.5)
    # hand value: d = 100 -> margin 30·log10(2) = 9.03 dB = 2.2577 σ -> Q ≈ 0.01198
    q = 0.5 * math.erfc(30 * math.log10(2) / 4 / math.sqrt(2))
    assert ch.reception_probability(np.array(100.0)) == pytest.approx(q)
    assert q == pytest.approx(0.01198, abs=1e-4)
    far = np.array([100.0001, 150.0, 1e6])
    np.testing.assert_array_equal(ch.reception_probability(far), 0.0)
    np.testing.assert_array_equal(ch.in_range(far), False)
    assert ch.in_range(np.array([99.0])).all()


def test_log_distance_custom_max_range_and_zero_shadowing() -> None:
    ch = LogDistance(10.0, max_range=12.0)
    assert ch.reception_probability(np.array(12.0)) > 0
    assert ch.reception_probability(np.array(12.5)) == 0
    disk = LogDistance(10.0, shadowing_db=0.0)
    np.testing.assert_array_equal(
        disk.reception_probability(np.array([0.0, 10.0, 10.5])), [1.0, 1.0, 0.0]
    )


def test_log_distance_sampling_rate_and_reproducibility() -> None:
    ch = make_channel("log_distance", 20.0)
    d = np.full(20_000, 20.0)  # p = 0.5
    a = ch.sample(d, np.random.default_rng(7))
    b = ch.sample(d, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 0.5) < 0.02
    assert a.dtype == bool and a.shape == d.shape


def test_sample_matrix_shape() -> None:
    ch: Channel = make_channel("unit_disk", 1.0, loss_prob=0.5)
    out = ch.sample(np.zeros((4, 5)), np.random.default_rng(0))
    assert out.shape == (4, 5) and out.dtype == bool


@pytest.mark.parametrize(
    ("kwargs", "key", "text"),
    [
        ({"model": "unit_disk", "comm_range": -5}, "channel.comm_range", "must be > 0, got -5"),
        ({"model": "unit_disk", "comm_range": 0.0}, "channel.comm_range", "> 0"),
        ({"model": "unit_disk", "comm_range": 5, "loss_prob": 1.5}, "channel.loss_prob", "[0, 1]"),
        ({"model": "unit_disk", "comm_range": 5, "loss_prob": -0.1}, "channel.loss_prob", ""),
        ({"model": "radio", "comm_range": 5}, "channel.model", "allowed: unit_disk, log_distance"),
        ({"model": "log_distance", "comm_range": 5, "exponent": 0.0}, "channel.exponent", ""),
        (
            {"model": "log_distance", "comm_range": 5, "shadowing_db": -1},
            "channel.shadowing_db",
            "",
        ),
        ({"model": "log_distance", "comm_range": 5, "max_range": 4.0}, "channel.max_range", ""),
        ({"model": "unit_disk", "comm_range": float("nan")}, "channel.comm_range", ""),
    ],
)
def test_make_channel_errors(kwargs: dict[str, object], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as exc:
        make_channel(**kwargs)  # type: ignore[arg-type]
    assert exc.value.key == key
    assert text in str(exc.value)
