"""Cumulative FedAvg at its edges: misuse messages, defaults, the clip sphere's boundary, the
clip count, the output dtype (cases mutation testing found unguarded)."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.aggregation import CumulativeFedAvg, weighted_average


def test_misuse_says_what_was_misused() -> None:
    acc = CumulativeFedAvg(3)
    with pytest.raises(RuntimeError, match=r"^add\(\) before reset\(\)$"):
        acc.add(1, np.zeros(3, np.float32), 1.0)
    with pytest.raises(RuntimeError, match=r"^finalise\(\) before reset\(\)$"):
        acc.finalise(np.empty(3, np.float32))
    with pytest.raises(ValueError, match=r"own model has shape \(4,\), expected \(3,\)"):
        acc.reset(0, np.zeros(4, np.float32), 1.0)
    with pytest.raises(ValueError, match="own weight must be > 0, got 0"):
        acc.reset(0, np.zeros(3, np.float32), 0.0)
    acc.reset(0, np.zeros(3, np.float32), 1.0)
    with pytest.raises(ValueError, match=r"out has shape \(2,\), expected \(3,\)"):
        acc.finalise(np.empty(2, np.float32))


def test_a_fresh_accumulator_is_closed_and_empty() -> None:
    acc = CumulativeFedAvg(3)
    assert acc.active is False and acc.merged == 0 and acc.mixing_row() == {}


def test_the_step_closes_after_finalise_and_discard() -> None:
    acc = CumulativeFedAvg(2)
    acc.reset(0, np.ones(2, np.float32), 1.0)
    assert acc.active is True
    acc.finalise(np.empty(2, np.float32))
    assert acc.active is False
    acc.reset(0, np.ones(2, np.float32), 1.0)
    acc.discard()
    assert acc.active is False
    with pytest.raises(RuntimeError, match="before reset"):
        acc.add(1, np.ones(2, np.float32), 1.0)


def test_no_bound_and_no_clipping_by_default() -> None:
    acc = CumulativeFedAvg(2)
    acc.reset(0, np.zeros(2, np.float32), 1.0)
    huge = np.full(2, 1e6, np.float32)
    assert not acc.out_of_bound(huge)
    assert acc.add(1, huge, 1.0)
    np.testing.assert_allclose(acc.finalise(np.empty(2, np.float32)), [5e5, 5e5])
    assert acc.clipped == 0


def test_a_model_exactly_on_the_clip_sphere_is_not_clipped() -> None:
    acc = CumulativeFedAvg(3, clip_ratio=2.0)  # own norm 0 -> scale 1 -> radius 2
    acc.reset(0, np.zeros(3, np.float32), 1.0)
    assert acc.add(1, np.array([2.0, 0.0, 0.0], np.float32), 1.0)
    assert acc.clipped == 0


def test_a_small_own_model_gets_a_radius_of_clip_ratio() -> None:
    acc = CumulativeFedAvg(3, clip_ratio=1.0)  # ‖own‖ = 0.1 < 1: scale 1, radius 1
    acc.reset(0, np.array([0.1, 0.0, 0.0], np.float32), 1.0)
    assert acc.add(1, np.array([0.1, 1.5, 0.0], np.float32), 1.0)  # 1.5 away: pulled to 1
    out = acc.finalise(np.empty(3, np.float32))
    np.testing.assert_allclose(out, [0.1, 0.5, 0.0], rtol=1e-6)
    assert acc.clipped == 1


def test_every_clipped_model_is_counted() -> None:
    acc = CumulativeFedAvg(2, clip_ratio=0.5)
    acc.reset(0, np.zeros(2, np.float32), 1.0)
    for j in range(1, 4):
        acc.add(j, np.full(2, 10.0 * j, np.float32), 1.0)
    assert acc.clipped == 3


def test_the_weighted_average_is_a_float32_model() -> None:
    models = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    out = weighted_average(models, np.array([1, 3]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [2.5, 3.5])


def test_the_weights_are_summed_in_float64() -> None:
    """float32 weights of 2**24 and 1 sum to 2**24 in float32: the mean must use 2**24 + 1."""
    models = np.array([[0.0], [2.0**24]], np.float64)
    out = weighted_average(models, np.array([2**24, 1], np.float32))
    assert out[0] == np.float32(2.0**24 / (2.0**24 + 1))  # 1 − 2**-24, not 1.0
