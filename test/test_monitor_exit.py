"""The monitor exits by itself once the swarm's last round is written (``rounds``), so a launch
ends with every process leaving by itself; with ``rounds`` 0 it runs until shut down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")

from rclpy.context import Context
from std_msgs.msg import String

import test_ros_nodes
from gossip_learning.nodes.monitor import MonitorNode
from gossip_learning.protocol.report import RoundReport

pytestmark = pytest.mark.ros
ros_context = test_ros_nodes.ros_context  # the same private-domain fixture


@pytest.mark.parametrize("rounds", [0, 2])
def test_monitor_is_done_after_the_last_rounds_row(
    ros_context: Context, tmp_path: Path, rounds: int
) -> None:
    monitor = MonitorNode(
        context=ros_context,
        parameter_overrides=test_ros_nodes._overrides(
            num_robots=2, output_dir=str(tmp_path), marker_period=0.0, rounds=rounds
        ),
    )

    def report(rid: int, rnd: int) -> None:
        status = RoundReport(rid, rnd, 10.0 * rid, 0.0, "none", -1, -1, 1, 50).to_dict()
        monitor._on_status(String(data=json.dumps({**status, "acc": 0.5})))

    try:
        for rnd in (0, 1):
            for rid in (0, 1):
                report(rid, rnd)
        assert not monitor.done  # round 1 written, round 2 to come
        report(0, 2)
        assert not monitor.done  # round 2 not complete yet
        report(1, 2)
        assert [row["round"] for row in monitor.rows] == [1, 2]
        assert monitor.done == (rounds == 2)
    finally:
        monitor.destroy_node()
