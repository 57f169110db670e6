"""The robot process itself, on real rclpy (loopback only, private domain): what it imports,
its lifecycle (configure / activate / deactivate / cleanup, a late robot joining at the next
round), QoS events in its transport counters, and publishing that never waits in a callback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String, UInt8MultiArray

from gossip_learning.channel import UnitDisk
from gossip_learning.config import load_config
from gossip_learning.nodes.launch_support import loopback_only
from gossip_learning.robot_data import write_robot_files
from gossip_learning.transports.ros import RosTransport, inbox_topic
from gossip_learning.wire import Beacon, Kind, Message, Role
from ros_schema import check_status, check_summary
from test_ros_nodes import _DOMAINS, spin_until, write_config
from test_ros_nodes import ros_context as ros_context  # fixture

pytestmark = pytest.mark.ros
HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "pandas", "PIL")

_PROBE = """
import json, sys, rclpy
from rclpy.parameter import Parameter
from gossip_learning.nodes.robot import RobotNode
rclpy.init()
node = RobotNode(namespace="robot_1", parameter_overrides=[
    Parameter("robot_id", value=1), Parameter("config_file", value=sys.argv[1]),
    Parameter("data_dir", value=sys.argv[2]), Parameter("epoch", value=1e12)])
state = node._state_machine.current_state[1]
trains = "gossip_learning.learning.numpy_trainer" in sys.modules
node.destroy_node()
rclpy.shutdown()
print(json.dumps({"state": state, "trains": trains,
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _probe(tmp_path: Path, **learning: Any) -> dict[str, Any]:
    """Start a robot from its data file in a fresh interpreter; what it imported."""
    tmp_path.mkdir(exist_ok=True)
    cfg_path = write_config(
        tmp_path, num_robots=4, learning={"epochs": 1, "init": "shared", **learning}
    )
    data_dir = tmp_path / "parts"
    write_robot_files(load_config(cfg_path), 0, data_dir)
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(next(_DOMAINS)),
    }
    cmd = [sys.executable, "-c", _PROBE, cfg_path, str(data_dir)]
    cmd = loopback_only(cmd)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_a_robot_from_its_data_file_imports_nothing_heavy(tmp_path: Path) -> None:
    """A training robot with the numpy trainer: active, and no torch, scikit-learn, scipy or
    matplotlib in the process (the dataset is digits: only the partition step needs sklearn)."""
    light = _probe(tmp_path)
    assert light["state"] == "active" and light["trains"]
    assert not set(HEAVY) & set(light["modules"]), light["modules"]
    # asking for the torch trainer does import torch: the probe can see it
    heavy = _probe(tmp_path / "torch", trainer="torch")
    assert "torch" in heavy["modules"]


def _fleet(
    context: Context, cfg: str, data_dir: Path, epoch: float, late: int
) -> tuple[list[Any], list[Any], MultiThreadedExecutor]:
    from gossip_learning.nodes.mobility import MobilityNode
    from gossip_learning.nodes.robot import RobotNode

    robots, drivers = [], []
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    for i, (x, y) in enumerate([(30.0, 30.0), (36.0, 32.0), (33.0, 38.0)]):
        params = {
            "robot_id": i, "config_file": cfg, "data_dir": str(data_dir), "epoch": epoch,
            "autostart": i != late,
        }  # fmt: skip
        robot = RobotNode(
            namespace=f"robot_{i}",
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
        )
        driver = MobilityNode(
            namespace=f"robot_{i}",
            context=context,
            parameter_overrides=[
                Parameter("model", value="static"),
                Parameter("x0", value=x),
                Parameter("y0", value=y),
                Parameter("rate_hz", value=5.0),
            ],
        )
        robots.append(robot)
        drivers.append(driver)
        executor.add_node(robot)
        executor.add_node(driver)
    return robots, drivers, executor


def test_lifecycle_and_a_late_robot_joining_at_the_next_round(
    ros_context: Context, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, num_robots=3, rounds=4, clustering={"passes": 1})
    data_dir = tmp_path / "parts"
    write_robot_files(load_config(cfg), 0, data_dir)
    epoch = time.time() + 2.5
    robots, drivers, executor = _fleet(ros_context, cfg, data_dir, epoch, late=2)
    late = robots[2]
    listener = Node("listener", context=ros_context)
    lines: list[str] = []
    listener.create_subscription(String, "/swarm/summary", lambda m: lines.append(m.data), 50)
    executor.add_node(listener)

    def spin() -> None:
        executor.spin_once(timeout_sec=0.05)

    try:
        # not configured: no data, no agent, no topics
        assert late._state_machine.current_state[1] == "unconfigured"
        assert not hasattr(late, "agent") and not hasattr(late, "transport")
        period = robots[0].clock.period
        # configure in the middle of round 2: agent and publishers, but no clock yet
        assert spin_until(spin, lambda: robots[0].round == 2, timeout=epoch - time.time() + period)
        assert spin_until(spin, lambda: robots[0].driver.next_slot >= 3, timeout=period)
        assert late.trigger_configure().to_label() == "transition_success"
        assert late._state_machine.current_state[1] == "inactive"
        assert late.agent is not None and late._timer is None
        spin_until(spin, lambda: False, timeout=0.5)
        assert late.round == 0 and late.history == []  # inactive: no rounds
        assert late.trigger_activate().to_label() == "transition_success"
        assert spin_until(spin, lambda: all(r.done for r in robots), timeout=4 * period + 10)

        for r in robots[:2]:
            assert [h["round"] for h in r.history] == [1, 2, 3, 4]
        joined = [h["round"] for h in late.history]
        assert joined == [3, 4], joined  # from the next round start to the fleet's last round
        assert late.late_phases == 0  # every phase in its own time slot
        assert late.transport.counters()["delivered"] > 0  # it heard the others
        heard_late = [r.transport.counters()["delivered"] for r in robots[:2]]
        assert all(n > 0 for n in heard_late)
        # the summary line: short enough for the default `ros2 topic echo`, with accuracy and
        # the transport counters of the status it sums up
        spin_until(spin, lambda: any(x.startswith("r2 round 4 ") for x in lines), timeout=3)
        last = [x for x in lines if x.startswith("r2 round 4 ")]
        assert last and all(len(x) <= 128 for x in lines), lines
        for r in robots:  # the documented schema (docs/ros-messages.schema.json)
            for status in r.history:
                check_status(status)
        for line in lines:
            check_summary(line)
        c = late.history[-1]["transport"]
        assert f"acc {late.history[-1]['acc']:.3f}" in last[0]
        assert f"sent {c['sent']} heard {c['delivered']} drop {c['dropped']}" in last[0]

        # deactivate stops the clock; cleanup drops agent and topics; configure works again
        assert late.trigger_deactivate().to_label() == "transition_success"
        assert late._timer is None
        assert late.trigger_cleanup().to_label() == "transition_success"
        assert late._state_machine.current_state[1] == "unconfigured"
        assert not hasattr(late, "agent") and not hasattr(late, "transport")
        assert late.trigger_configure().to_label() == "transition_success"
        assert late.agent.round == 0
    finally:
        for node in [*robots, *drivers, listener]:
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()


def test_summary_line_fits_the_default_echo_at_paper_scale() -> None:
    from gossip_learning.nodes.robot import ECHO_LIMIT, summary_line

    big = {"sent": 999_999, "delivered": 9_999_999, "dropped": 999_999, "rejected": 99_999,
           "lost": 9_999, "qos_incompatible": 99}  # fmt: skip
    status = {"id": 99, "round": 100, "role": "member", "cluster": 99, "acc": 0.8123,
              "loss": 0.5312, "transport": big}  # fmt: skip
    line = summary_line(status)
    assert len(line) <= ECHO_LIMIT == 128
    assert "acc 0.812 loss 0.531" in line and line.endswith("lost 9999 qos 99")


def test_configure_fails_cleanly_on_a_foreign_data_file(
    ros_context: Context, tmp_path: Path
) -> None:
    from gossip_learning.nodes.robot import RobotNode

    cfg = write_config(tmp_path, num_robots=3)
    write_robot_files(load_config(cfg), 5, tmp_path / "parts")  # seed 5, robots use seed 0
    node = RobotNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("robot_id", value=0),
            Parameter("config_file", value=cfg),
            Parameter("data_dir", value=str(tmp_path / "parts")),
            Parameter("autostart", value=False),
        ],
    )
    try:
        assert node.trigger_configure().to_label() == "transition_failure"
        assert node._state_machine.current_state[1] == "unconfigured"
        assert "parameter 'data_dir'" in str(node.failure)
        with pytest.raises(ValueError, match="parameter 'data_dir'"):
            node.start()
    finally:
        node.destroy_node()


def _beacon(sender: int) -> Message:
    return Message(Kind.BEACON, sender=sender, beacon=Beacon(1.0, 1.0, Role.NONE, -1, 1))


def test_qos_events_are_counted_with_the_transport_counters(ros_context: Context) -> None:
    """A peer whose endpoints cannot match the robot's QoS (a reliable reader of the best-effort
    beacons, a best-effort writer to the robot's reliable topic) is counted, not just logged."""
    node = Node("qos_robot", context=ros_context)
    other = Node("qos_peer", context=ros_context)
    t = RosTransport(node, 0, UnitDisk(10.0), "qos")
    t.subscribe("beacon", lambda m: None)
    t.subscribe("robot_0", lambda m: None)
    t.publish("beacon", _beacon(0))
    reliable = QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
    )
    best_effort = QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT
    )
    other.create_subscription(UInt8MultiArray, "/qos/beacon", lambda m: None, reliable)
    other.create_publisher(UInt8MultiArray, f"/qos/{inbox_topic(0)}", best_effort)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(other)
    try:
        assert spin_until(
            lambda: ex.spin_once(timeout_sec=0.05),
            lambda: t.counters()["qos_incompatible"] >= 2,
            timeout=10,
        ), t.counters()
        assert t.counters()["lost"] == 0
    finally:
        t.close()
        ex.shutdown()
        node.destroy_node()
        other.destroy_node()


def test_publish_on_a_fresh_topic_queues_instead_of_waiting(ros_context: Context) -> None:
    """Publishing from a callback never waits for discovery: a frame for a publisher nobody has
    matched yet is queued, and sent by the transport's timer once the publisher matched. The
    receiver (another participant: a second context) subscribes only after the frame was sent;
    waiting in publish() instead (the old way) would have published it to nobody."""
    other = Context()
    rclpy.init(context=other, domain_id=ros_context.get_domain_id())
    a_node = Node("sender", context=ros_context)
    b_node = Node("receiver", context=other)
    a = RosTransport(a_node, 0, UnitDisk(10.0), "fresh", match_timeout=60.0)
    b = RosTransport(b_node, 1, UnitDisk(10.0), "fresh")
    ex_a = SingleThreadedExecutor(context=ros_context)
    ex_b = SingleThreadedExecutor(context=other)
    ex_a.add_node(a_node)
    ex_b.add_node(b_node)

    def spin() -> None:
        ex_a.spin_once(timeout_sec=0.02)
        ex_b.spin_once(timeout_sec=0.02)

    try:
        start = time.monotonic()
        a.publish("robot_1", _beacon(0))  # nobody listens yet (the old code slept here)
        assert a._pending.get(inbox_topic(1)), "the frame should wait in the queue"
        assert a.counters()["sent"] == 1
        b.subscribe("robot_1", lambda m: None)
        assert spin_until(spin, lambda: b.received >= 1, 10)
        assert time.monotonic() - start < 60.0  # sent on the match, not at match_timeout
        assert not a._pending
        assert np.isnan(b.x)  # b has no position: it received the frame, then dropped it
        assert b.counters()["reasons"] == {"own_position_unknown": 1}
    finally:
        a.close()
        b.close()
        ex_a.shutdown()
        ex_b.shutdown()
        a_node.destroy_node()
        b_node.destroy_node()
        rclpy.shutdown(context=other)


@pytest.mark.skipif(shutil.which("ros2") is None, reason="needs ros2cli (../shared/wheels)")
def test_ros2_lifecycle_cli_configures_and_activates_a_waiting_robot(tmp_path: Path) -> None:
    """``autostart:=false``: the robot process waits unconfigured until ``ros2 lifecycle set``
    configures and activates it (what an operator or a launch's ChangeState events do)."""
    import signal

    from test_ros_nodes import _enter_private_network, _leave_private_network

    cfg = write_config(tmp_path, num_robots=2)
    write_robot_files(load_config(cfg), 0, tmp_path / "parts")
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(next(_DOMAINS)),
        "ROS_LOG_DIR": str(tmp_path / "ros_log"),
    }
    code = "import sys; from gossip_learning.nodes.robot import main; sys.exit(main(sys.argv))"
    params = {"robot_id": 0, "config_file": cfg, "data_dir": str(tmp_path / "parts"),
              "autostart": "false", "epoch": time.time() + 600}  # fmt: skip
    robot_cmd = [sys.executable, "-c", code, "--ros-args", "-r", "__ns:=/robot_0"]
    robot_cmd += [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]

    def cli(*args: str, expect: str) -> str:
        """Run ``ros2 lifecycle ...`` until its output has ``expect`` (discovery on a loaded
        machine can outlast one call's spin time); the last output."""
        cmd = ["ros2", "lifecycle", *args[:1], "--no-daemon", "--spin-time", "3", *args[1:]]
        end = time.monotonic() + 60
        out = ""
        while expect not in out and time.monotonic() < end:
            assert robot.poll() is None, "the robot process ended"
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
            out = proc.stdout + proc.stderr
        return out

    old = _enter_private_network()  # the processes started from here inherit it
    robot = subprocess.Popen(robot_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert "unconfigured [1]" in cli("get", "/robot_0/robot", expect="unconfigured")
        out = cli("set", "/robot_0/robot", "configure", expect="Transitioning successful")
        assert "Transitioning successful" in out, out
        assert "inactive [2]" in cli("get", "/robot_0/robot", expect="inactive")
        out = cli("set", "/robot_0/robot", "activate", expect="Transitioning successful")
        assert "Transitioning successful" in out, out
        assert "active [3]" in cli("get", "/robot_0/robot", expect="active [3]")
        robot.send_signal(signal.SIGINT)
        out, _ = robot.communicate(timeout=30)
        assert robot.returncode == 0, out
        assert b"active, joins at the next round start" in out
    finally:
        if robot.poll() is None:
            robot.kill()
            robot.wait()
        _leave_private_network(old)
