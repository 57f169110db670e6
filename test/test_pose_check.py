"""Pose plausibility (gossip_learning.pose_check): a robot cannot teleport or be in two places."""

from __future__ import annotations

import pytest

from gossip_learning.pose_check import IMPLAUSIBLE_POSE, PoseCheck


def test_first_pose_and_reachable_moves_are_accepted() -> None:
    check = PoseCheck(max_speed=2.0, slack_m=1.0)
    assert check.admit(5, 0.0, 0.0, 0.0) is None
    assert check.admit(5, 10.0, 0.0, 5.0) is None  # 2 m/s for 5 s
    assert check.admit(5, 10.9, 0.0, 5.0) is None  # within the slack
    assert check.refused == 0


def test_a_pose_too_far_for_the_time_is_refused_and_not_remembered() -> None:
    check = PoseCheck(max_speed=2.0, slack_m=1.0)
    check.admit(5, 0.0, 0.0, 0.0)
    assert check.admit(5, 80.0, 80.0, 1.0) == IMPLAUSIBLE_POSE
    # the real robot, still near the origin, is not locked out by the forgery
    assert check.admit(5, 1.5, 0.0, 1.0) is None
    assert check.refused == 1


def test_a_forger_interleaving_with_the_real_robot_never_takes_over() -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=3)
    check.admit(3, 10.0, 10.0, 0.0)
    outcomes = []
    for k in range(1, 20):
        outcomes.append(check.admit(3, 90.0, 90.0, float(k)))  # the forger, far away
        assert check.admit(3, 10.0, 10.0, float(k)) is None  # the real robot, where it is
    assert outcomes == [IMPLAUSIBLE_POSE] * 19


def test_a_robot_that_really_jumped_is_reanchored() -> None:
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=3)
    check.admit(3, 0.0, 0.0, 0.0)
    assert check.admit(3, 50.0, 50.0, 1.0) == IMPLAUSIBLE_POSE
    assert check.admit(3, 50.5, 50.0, 1.5) == IMPLAUSIBLE_POSE
    assert check.admit(3, 51.0, 50.0, 2.0) is None  # third agreeing beacon: the new anchor
    assert check.admit(3, 51.5, 50.0, 2.5) is None


def test_disabled_check_accepts_everything() -> None:
    check = PoseCheck(max_speed=0.0)
    assert not check.enabled
    check.admit(1, 0.0, 0.0, 0.0)
    assert check.admit(1, 1e6, 1e6, 0.0) is None
    assert len(check) == 0


def test_forget_drops_the_anchor() -> None:
    check = PoseCheck(max_speed=1.0)
    check.admit(1, 0.0, 0.0, 0.0)
    check.forget(1)
    assert check.admit(1, 500.0, 0.0, 0.1) is None


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"max_speed": -1.0}, "max_speed"),
        ({"max_speed": float("nan")}, "max_speed"),
        ({"max_speed": 1.0, "slack_m": -1.0}, "slack_m"),
        ({"max_speed": 1.0, "reanchor": 0}, "reanchor"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        PoseCheck(**kwargs)  # type: ignore[arg-type]
