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


def test_a_busy_monitor_keeps_every_report_of_several_rounds(
    ros_context: Context, tmp_path: Path
) -> None:
    """Reports of three rounds of 40 robots (more than the transports' keep-last depth of 64)
    arrive while the monitor does not spin (as while it draws its plots on a loaded host): every
    round still closes with every robot."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from gossip_learning.transports.ros import RELIABLE_QOS_DEPTH, reliable_qos

    n, rounds = 40, 3
    assert n * rounds > RELIABLE_QOS_DEPTH
    monitor = MonitorNode(
        context=ros_context,
        parameter_overrides=test_ros_nodes._overrides(
            num_robots=n, marker_period=0.0, rounds=rounds, close_after_s=0.0
        ),
    )
    robots = Node("robots", context=ros_context)
    pub = robots.create_publisher(String, "/swarm/status", reliable_qos(n * (rounds + 1)))
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(robots)
    try:
        assert test_ros_nodes.spin_until(
            lambda: ex.spin_once(timeout_sec=0.05), lambda: pub.get_subscription_count() > 0, 20
        )
        for rnd in range(rounds + 1):
            for rid in range(n):
                status = RoundReport(rid, rnd, 1.0 * rid, 0.0, "none", -1, -1, 1, 50).to_dict()
                pub.publish(String(data=json.dumps({**status, "acc": 0.5})))
        test_ros_nodes.spin_until(lambda: ex.spin_once(timeout_sec=0.05), lambda: False, 1.0)
        ex.add_node(monitor)  # the monitor takes what its subscriptions kept
        test_ros_nodes.spin_until(lambda: ex.spin_once(timeout_sec=0.05), lambda: monitor.done, 20)
        assert [(row["round"], row["robots_reporting"]) for row in monitor.rows] == [
            (r, n) for r in range(1, rounds + 1)
        ]
    finally:
        ex.shutdown()
        monitor.destroy_node()
        robots.destroy_node()
