"""One robot interface in every mode, through the real ``ros2`` CLI (loopback only, private
domain): a robot hosted alone by ``swarm_node`` (``sim:=kinematic``), robots hosted together
(``single_process:=true``) and a ``robot_node`` (``sim:=plant``/``gazebo``, a real robot) are each
a lifecycle node ``/robot_<i>/robot`` with the same declared, described, read-only parameters,
and publish their pose on ``/robot_<i>/odom`` in the swarm frame. Also the loud failures of a
robot process: no odometry, no ``/clock``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")

from rclpy.context import Context

from gossip_learning.config import load_config
from gossip_learning.nodes.health import EXIT_UNHEALTHY
from gossip_learning.robot_data import write_robot_files
from test_ros_nodes import (
    _DOMAINS,
    _enter_private_network,
    _leave_private_network,
    _overrides,
    write_config,
)
from test_ros_nodes import ros_context as ros_context  # fixture

pytestmark = pytest.mark.ros
SWARM = "import sys; from gossip_learning.nodes.swarm import main; sys.exit(main(sys.argv))"
ROBOT = "import sys; from gossip_learning.nodes.robot import main; sys.exit(main(sys.argv))"
MOBILITY = "import sys; from gossip_learning.nodes.mobility import main; sys.exit(main(sys.argv))"


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(next(_DOMAINS)),
        "ROS_LOG_DIR": str(tmp_path / "ros_log"),
        "PYTHONUNBUFFERED": "1",
    }


def _args(params: dict[str, object]) -> list[str]:
    return [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]


@pytest.mark.skipif(shutil.which("ros2") is None, reason="needs ros2cli (../shared/wheels)")
def test_every_mode_gives_each_robot_the_same_lifecycle_node(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, num_robots=4, rounds=2)
    write_robot_files(load_config(cfg), 0, tmp_path / "parts")
    env = _env(tmp_path)
    common = {"config_file": cfg, "data_dir": str(tmp_path / "parts"), "rounds": 2,
              "epoch": time.time() + 600}  # fmt: skip
    py = sys.executable
    commands = {
        "kinematic": [py, "-c", SWARM, "--ros-args", *_args({**common, "robot_ids": "[0]"})],
        "single": [py, "-c", SWARM, "--ros-args", *_args({**common, "robot_ids": "[1, 2]"})],
        "robot_node": [py, "-c", ROBOT, "--ros-args", "-r", "__ns:=/robot_3",
                       *_args({**common, "robot_id": 3})],
        "odometry": [py, "-c", MOBILITY, "--ros-args", "-r", "__ns:=/robot_3"],
    }  # fmt: skip

    def cli(*args: str, expect: str) -> str:
        """``ros2 ...`` until its output has ``expect`` (discovery on a loaded machine)."""
        end = time.monotonic() + 60
        out = ""
        while expect not in out and time.monotonic() < end:
            assert all(p.poll() is None for p in procs.values()), "a node process ended"
            proc = subprocess.run(["ros2", *args], capture_output=True, text=True, env=env,
                                  timeout=60)  # fmt: skip
            out = proc.stdout + proc.stderr
        return out

    old = _enter_private_network()  # the processes started from here inherit it
    procs = {
        name: subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, cmd in commands.items()
    }
    try:
        lists = {}
        for rid in (0, 1, 3):  # one robot of each mode
            node = f"/robot_{rid}/robot"
            assert "active [3]" in cli("lifecycle", "get", "--no-daemon", "--spin-time", "3",
                                       node, expect="active [3]")  # fmt: skip
            out = cli("param", "list", "--no-daemon", "--spin-time", "3", node, expect="seed")
            lists[rid] = sorted(line.strip() for line in out.splitlines() if line.strip())
            out = cli("param", "describe", "--no-daemon", "--spin-time", "3", node, "comm_range",
                      expect="Read only")  # fmt: skip
            assert "Radio range in metres" in out and "Read only: true" in out, out
            out = cli("param", "set", "--no-daemon", "--spin-time", "3", node, "comm_range",
                      "10.0", expect="read-only")  # fmt: skip
            assert "Trying to set a read-only parameter" in out, out
        assert lists[0] == lists[1] == lists[3], lists
        assert {"robot_id", "comm_range", "swarm_frame", "fail_after_s"} <= set(lists[0])
        # a hosted robot is deactivated like a robot_node, and publishes its pose
        out = cli("lifecycle", "set", "--no-daemon", "--spin-time", "3", "/robot_2/robot",
                  "deactivate", expect="Transitioning successful")  # fmt: skip
        assert "inactive [2]" in cli("lifecycle", "get", "--no-daemon", "--spin-time", "3",
                                     "/robot_2/robot", expect="inactive")  # fmt: skip
        out = cli("topic", "echo", "--once", "--no-daemon", "--spin-time", "3",
                  "/robot_1/odom", "nav_msgs/msg/Odometry", expect="frame_id")  # fmt: skip
        assert "frame_id: world" in out and "child_frame_id: robot_1/base_link" in out, out
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(2)  # SIGINT: each exits 0
        codes = {name: p.wait(timeout=30) for name, p in procs.items()}
        logs = {name: p.stdout.read().decode() if p.stdout else "" for name, p in procs.items()}
        _leave_private_network(old)
    assert codes == dict.fromkeys(commands, 0), logs
    assert not any("Traceback" in text for text in logs.values()), logs


def _run_alone(tmp_path: Path, code: str, params: dict[str, object], *ros: str) -> tuple[int, str]:
    cfg = write_config(tmp_path, num_robots=2)
    write_robot_files(load_config(cfg), 0, tmp_path / "parts")
    params = {"config_file": cfg, "data_dir": str(tmp_path / "parts"), "warn_after_s": 1.0,
              "fail_after_s": 3.0, **params}  # fmt: skip
    cmd = [sys.executable, "-c", code, "--ros-args", *ros, *_args(params)]
    old = _enter_private_network()
    try:
        proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=90)
    finally:
        _leave_private_network(old)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_robot_without_odometry_warns_then_gives_up(tmp_path: Path) -> None:
    code, log = _run_alone(tmp_path, ROBOT, {"robot_id": 0}, "-r", "__ns:=/robot_0")
    assert code == EXIT_UNHEALTHY, log
    # a warning first (its second count depends on when the idle tick lands), then the error
    warn = re.search(
        r"\[WARN\].*robot 0: no odometry on /robot_0/odom for \d+ s since activation", log
    )
    assert warn and warn.start() < log.index("giving up after"), log
    assert "-r odom:=" in log  # says what to check
    assert "giving up after 3 s (fail_after_s)" in log, log


def test_use_sim_time_without_clock_warns_then_gives_up(tmp_path: Path) -> None:
    code, log = _run_alone(tmp_path, SWARM, {"robot_ids": "[0]", "use_sim_time": "true"})
    assert code == EXIT_UNHEALTHY, log
    warn = re.search(r"\[WARN\].*use_sim_time is true but no /clock for \d+ s", log)
    assert warn and warn.start() < log.index("giving up after"), log
    assert "giving up after 3 s (fail_after_s)" in log, log


def test_the_message_schema_refuses_a_malformed_status_and_summary() -> None:
    """The schema checks in the ROS tests can fail: a status without its frame, a role that is
    none of the three, and a summary line cut short are refused."""
    jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (dev extra)")
    from gossip_learning.nodes.robot import summary_line
    from ros_schema import check_status, check_summary

    transport = {"sent": 1, "bytes_sent": 9, "delivered": 2, "bytes_delivered": 18, "dropped": 0,
                 "rejected": 0, "reasons": {}}  # fmt: skip
    good = {"id": 3, "round": 2, "x": 1.0, "y": 2.0, "role": "head", "cluster": 3, "head": 3,
            "neighbours": 2, "samples": 40, "time": 5.0, "transport": transport,
            "late_phases": 0, "method": "bilayer", "seed": 0, "publishes_model": True,
            "frame": "world", "acc": 0.5, "loss": 1.0}  # fmt: skip
    check_status(good)
    check_summary(summary_line(good))
    for bad in ({k: v for k, v in good.items() if k != "frame"}, {**good, "role": "boss"}):
        with pytest.raises(jsonschema.ValidationError):
            check_status(bad)
    with pytest.raises(jsonschema.ValidationError):
        check_summary(summary_line(good)[:20])


def test_monitor_closes_a_round_without_a_silent_robot_and_flushes_at_shutdown(
    ros_context: Context, tmp_path: Path
) -> None:
    """A robot that stops reporting (deactivated, crashed): the round closes ``close_after_s``
    after its first report with the others, the robot is named in missing.csv; the round still
    open at shutdown is written by flush()."""
    import json

    from std_msgs.msg import String

    from gossip_learning.nodes.monitor import MonitorNode
    from gossip_learning.protocol.report import RoundReport

    monitor = MonitorNode(
        context=ros_context,
        parameter_overrides=_overrides(
            num_robots=3, output_dir=str(tmp_path), marker_period=0.0, close_after_s=0.5
        ),
    )

    def report(rid: int, rnd: int) -> None:
        status = RoundReport(rid, rnd, 10.0 * rid, 0.0, "none", -1, -1, 1, 50).to_dict()
        monitor._on_status(String(data=json.dumps({**status, "acc": 0.5, "transport": {}})))

    try:
        for rid in (0, 1, 2):
            report(rid, 0)
        for rid in (0, 1):  # robot 2 was deactivated: it never reports round 1
            report(rid, 1)
        monitor._on_timer()
        assert monitor.rows == []  # not yet: close_after_s has not passed
        time.sleep(0.6)
        monitor._on_timer()
        assert [(r["round"], r["robots_reporting"]) for r in monitor.rows] == [(1, 2)]
        report(0, 2)  # round 2: robot 0 only, then Ctrl-C
        monitor.flush()
        assert [(r["round"], r["robots_reporting"]) for r in monitor.rows] == [(1, 2), (2, 1)]
        lines = (tmp_path / "metrics.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 3
        missing = (tmp_path / "missing.csv").read_text(encoding="utf-8").splitlines()
        assert missing == ["round,expected,reporting,missing", "1,3,2,2", "2,3,1,1 2"]
    finally:
        monitor.destroy_node()
