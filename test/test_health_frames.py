"""The robots' health checks (nodes/health.py) and frame handling (nodes/frames.py), without ROS:
when a condition warns, repeats, clears and gives up; how odometry reaches the swarm frame."""

from __future__ import annotations

import math

import pytest

from gossip_learning.nodes.frames import OdomFrame
from gossip_learning.nodes.health import Health, round_line


def _health(warn: float = 5.0, fail: float = 20.0) -> tuple[Health, list[tuple[str, str]]]:
    log: list[tuple[str, str]] = []
    h = Health(warn, fail, lambda m: log.append(("warn", m)), lambda m: log.append(("error", m)),
               lambda m: log.append(("info", m)))  # fmt: skip
    return h, log


def test_a_condition_warns_after_its_delay_repeats_and_gives_up() -> None:
    h, log = _health()
    msg = lambda age: f"no odometry for {age:.0f} s"  # noqa: E731
    for t in (0.0, 4.9):
        h.check("odometry", True, t, msg)
    assert log == []  # not yet
    h.check("odometry", True, 5.0, msg)
    h.check("odometry", True, 7.0, msg)  # within the repeat period: quiet
    h.check("odometry", True, 10.0, msg)
    assert log == [("warn", "no odometry for 5 s"), ("warn", "no odometry for 10 s")]
    assert h.failed is None
    h.check("odometry", True, 20.0, msg)
    assert h.failed == "no odometry for 20 s; giving up after 20 s (fail_after_s)"
    assert log[-1] == ("error", h.failed)


def test_a_condition_that_clears_starts_again_and_zero_never_gives_up() -> None:
    h, log = _health(fail=0.0)
    msg = lambda age: f"lonely {age:.0f}"  # noqa: E731
    h.check("peers", True, 0.0, msg, warn_after_s=0.0)  # peers warn at once
    assert log == [("warn", "lonely 0")]
    h.check("peers", False, 1.0, msg)
    assert log[-1] == ("info", "cleared: peers")
    h.check("peers", True, 1000.0, msg, warn_after_s=0.0)
    h.check("peers", True, 5000.0, msg, warn_after_s=0.0)
    assert h.failed is None and log[-1] == ("warn", "lonely 4000")
    with pytest.raises(ValueError, match="warn_after_s"):
        Health(0.0, 1.0, print, print)
    with pytest.raises(ValueError, match="fail_after_s"):
        Health(1.0, -1.0, print, print)


def test_round_line_names_round_cluster_role_and_accuracy() -> None:
    line = round_line({"id": 3, "round": 7, "cluster": 2, "role": "head", "acc": 0.8421})
    assert line == "robot 3 round 7: cluster 2 head, acc 0.842"
    assert round_line({"id": 1, "round": 1}).endswith("acc n/a")


def test_odometry_in_the_swarm_frame_is_kept_and_odom_frame_is_offset() -> None:
    f = OdomFrame("world", "robot_3/odom", [10.0, 20.0, math.pi / 2])
    assert f.to_swarm("world", 1.0, 2.0) == (1.0, 2.0)
    assert f.to_swarm("/world", 1.0, 2.0) == (1.0, 2.0)
    x, y = f.to_swarm("robot_3/odom", 1.0, 0.0)  # 1 m ahead in a frame turned 90 degrees
    assert (round(x, 9), round(y, 9)) == (10.0, 21.0)
    assert f.refused == 0
    assert f.to_swarm("robot_4/odom", 1.0, 0.0) is None
    assert f.refused == 1
    text = f.mismatch(3, "robot_4/odom")
    assert "odometry in frame 'robot_4/odom' refused" in text and "odom_offset" in text


def test_frame_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="swarm_frame"):
        OdomFrame("", "", [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="odom_offset"):
        OdomFrame("world", "odom", [0.0, 0.0])
    assert OdomFrame("world", "world", [0.0, 0.0, 0.0]).odom_frame == ""  # same frame
