"""benchmarks/robot_footprint.py on the smallest real input (2 robot processes, 1 round): its
report has the shared shape and every robot ran, beaconed and was measured. Speed and memory
themselves are not checked here (the figures are in docs/ros.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")

from test_benchmarks import check_report, script
from test_ros_nodes import _DOMAINS, _enter_private_network, _leave_private_network

pytestmark = pytest.mark.ros


def test_robot_footprint_measures_every_robot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    out = tmp_path / "fp.json"
    argv = ["--robots", "2", "--rounds", "1", "--start-delay", "6",
            "--domain", str(next(_DOMAINS)), "--json", str(out)]  # fmt: skip
    old = _enter_private_network()  # the robot processes inherit it
    try:
        assert script("robot_footprint", monkeypatch).main(argv) == 0
    finally:
        _leave_private_network(old)
    records = check_report(out, "robot_footprint", argv)
    floor = [r for r in records if r["kind"] == "floor"]
    robots = [r for r in records if r["kind"] == "robot"]
    assert len(floor) == 2 and all(r["rss_mb"] > 10 for r in floor)
    assert [r["robot"] for r in robots] == [0, 1]
    for r in robots:
        assert r["exit_code"] == 0 and r["data_file"] is True
        assert 0 < r["active_s"] < r["first_beacon_s"]  # active before its first beacon
        assert r["first_round"] >= 1 and r["first_status_round"] >= 1
        assert 10 < r["rss_mb"] <= r["peak_rss_mb"] and math.isfinite(r["load_avg_1min"])
