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


def test_a_forger_interleaving_with_the_real_robot_never_takes_its_place() -> None:
    """The forger's track is heard beside the robot's once it agrees with itself (no key: nothing
    tells them apart), but the real robot's beacons are never refused and its pose stays."""
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=3)
    check.admit(3, 10.0, 10.0, 0.0)
    outcomes = []
    for k in range(1, 20):
        outcomes.append(check.admit(3, 90.0, 90.0, float(k)))  # the forger, far away
        assert check.admit(3, 10.0, 10.0, float(k)) is None  # the real robot, where it is
    assert outcomes == [IMPLAUSIBLE_POSE] * 2 + [None] * 17
    assert sorted(check.poses(3)) == [(10.0, 10.0), (90.0, 90.0)]
    assert check.contested == 17 * 2  # every beacon from the forger's third on, both robots'


def test_a_forger_who_speaks_first_does_not_lock_the_real_robot_out() -> None:
    """Before: the first pose heard was the anchor and a forger interleaving with the real
    robot broke every run of its beacons, so the real robot was refused for good. Now the real
    robot's beacons confirm a track of their own after ``reanchor`` of them."""
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=3)
    assert check.admit(4, 90.0, 90.0, 0.0) is None  # the forger speaks first
    real = []
    for k in range(1, 10):
        real.append(check.admit(4, 10.0 + 0.1 * k, 10.0, float(k)))
        assert check.admit(4, 90.0, 90.0, float(k)) is None
    assert real == [IMPLAUSIBLE_POSE] * 2 + [None] * 7
    assert (10.9, 10.0) in check.poses(4)


def test_a_burst_of_agreeing_forged_beacons_does_not_move_the_robot() -> None:
    """Before: three agreeing forged beacons in a row re-anchored the robot's pose, and its own
    next beacons were refused. Now the robot's track stays confirmed beside the forger's."""
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=3)
    check.admit(5, 10.0, 10.0, 0.0)
    for _ in range(5):
        check.admit(5, 90.0, 90.0, 1.0)
    assert check.admit(5, 10.5, 10.0, 1.5) is None
    assert (10.5, 10.0) in check.poses(5)


def test_a_track_not_moved_on_expires() -> None:
    """A robot that really jumped leaves its old track behind; it is dropped after expire_s."""
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=2, expire_s=10.0)
    check.admit(6, 0.0, 0.0, 0.0)
    check.admit(6, 50.0, 0.0, 1.0)
    check.admit(6, 50.0, 0.0, 2.0)
    assert sorted(check.poses(6)) == [(0.0, 0.0), (50.0, 0.0)]
    assert check.admit(6, 50.0, 0.0, 11.0) is None
    assert check.poses(6) == [(50.0, 0.0)]  # the old one was last moved on at t=0


def test_a_full_set_of_tracks_makes_room_from_the_unconfirmed_ones() -> None:
    """Beacons from ever new places fill the slots with unconfirmed tracks; they replace each
    other, never the confirmed one."""
    check = PoseCheck(max_speed=1.0, slack_m=1.0, reanchor=3, max_tracks=2)
    check.admit(7, 0.0, 0.0, 0.0)
    for k in range(1, 10):
        assert check.admit(7, 100.0 * k, 0.0, 1.0) == IMPLAUSIBLE_POSE
    assert check.poses(7) == [(0.0, 0.0)]
    assert check.admit(7, 0.5, 0.0, 1.0) is None


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
        ({"max_speed": 1.0, "max_tracks": 1}, "max_tracks"),
        ({"max_speed": 1.0, "expire_s": 0.0}, "expire_s"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        PoseCheck(**kwargs)  # type: ignore[arg-type]
