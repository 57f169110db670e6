"""Pose plausibility at its edges: the bound itself, defaults, elapsed time from a later anchor,
one-axis moves and the tracks (cases mutation testing found unguarded)."""

from __future__ import annotations

import pytest

from gossip_learning.pose_check import IMPLAUSIBLE_POSE, PoseCheck


def test_a_pose_exactly_on_the_bound_is_accepted() -> None:
    check = PoseCheck(max_speed=2.0, slack_m=1.0)
    check.admit(1, 0.0, 0.0, 0.0)
    assert check.admit(1, 11.0, 0.0, 5.0) is None  # 1 + 2·5 m away: on the bound
    assert check.admit(1, 22.5, 0.0, 10.0) == IMPLAUSIBLE_POSE  # 11.5 m in 5 s


def test_defaults_are_two_metres_of_slack_and_three_beacons_to_reanchor() -> None:
    check = PoseCheck(max_speed=1.0)
    check.admit(1, 0.0, 0.0, 10.0)
    assert check.admit(1, 2.0, 0.0, 10.0) is None
    assert check.admit(1, 4.5, 0.0, 10.0) == IMPLAUSIBLE_POSE
    assert check.admit(1, 50.0, 0.0, 11.0) == IMPLAUSIBLE_POSE
    assert check.admit(1, 50.0, 0.0, 11.0) == IMPLAUSIBLE_POSE
    assert check.admit(1, 50.0, 0.0, 11.0) is None  # the third agreeing one


@pytest.mark.parametrize(("dx", "dy"), [(30.0, 0.0), (0.0, 30.0)])
def test_a_jump_along_one_axis_is_refused(dx: float, dy: float) -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0)
    check.admit(1, 5.0, 5.0, 0.0)
    assert check.admit(1, 5.0 + dx, 5.0 + dy, 1.0) == IMPLAUSIBLE_POSE


def test_elapsed_time_is_measured_from_the_anchor_not_from_zero() -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0)
    check.admit(1, 0.0, 0.0, 100.0)
    assert check.admit(1, 50.0, 0.0, 101.0) == IMPLAUSIBLE_POSE  # 50 m in 1 s
    assert check.admit(1, 1.9, 0.0, 101.0) is None


def test_a_beacon_older_than_the_anchor_gets_only_the_slack() -> None:
    check = PoseCheck(max_speed=10.0, slack_m=1.0)
    check.admit(1, 0.0, 0.0, 5.0)
    assert check.admit(1, 3.0, 0.0, 4.0) == IMPLAUSIBLE_POSE  # no time allowance backwards
    assert check.admit(1, 0.5, 0.0, 5.0) is None


def test_every_refusal_is_counted() -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=5)
    check.admit(1, 0.0, 0.0, 0.0)
    for k in range(3):
        assert check.admit(1, 90.0 + 20 * k, 0.0, 1.0) == IMPLAUSIBLE_POSE
    assert check.refused == 3


def test_refused_beacons_that_disagree_never_reanchor() -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=3)
    check.admit(1, 0.0, 0.0, 0.0)
    for x in (100.0, 200.0, 300.0, 400.0):  # each far from the anchor and from the last one
        assert check.admit(1, x, 0.0, 1.0) == IMPLAUSIBLE_POSE


def test_an_interleaving_forger_is_heard_beside_the_robot_never_instead() -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=2)
    check.admit(1, 0.0, 0.0, 0.0)
    assert check.admit(1, 80.0, 0.0, 1.0) == IMPLAUSIBLE_POSE
    for k in range(2, 6):  # the forger's second agreeing beacon confirms its track
        assert check.admit(1, 80.0, 0.0, float(k)) is None
        assert check.admit(1, 0.0, 0.0, float(k)) is None


def test_after_reanchoring_both_poses_are_kept() -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=2)
    check.admit(1, 0.0, 0.0, 0.0)
    assert check.admit(1, 50.0, 0.0, 1.0) == IMPLAUSIBLE_POSE
    assert check.admit(1, 50.0, 0.0, 1.0) is None
    assert check.admit(1, 0.0, 0.0, 1.0) is None  # the old place is still a track of robot 1
    assert sorted(check.poses(1)) == [(0.0, 0.0), (50.0, 0.0)] and len(check) == 1


def test_forgetting_an_unknown_sender_is_harmless() -> None:
    check = PoseCheck(max_speed=1.0)
    check.forget(42)
    assert len(check) == 0


@pytest.mark.parametrize("kwargs", [{"slack_m": 0.0}, {"slack_m": 0.5}, {"reanchor": 1}])
def test_smallest_valid_settings_are_accepted(kwargs: dict[str, float]) -> None:
    check = PoseCheck(1.0, **kwargs)  # type: ignore[arg-type]
    assert check.enabled
