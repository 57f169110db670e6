"""Real rclpy: robot, mobility and monitor nodes on a private, loopback-only ROS 2 domain.

Network safety: every test gets its own ROS domain id, discovery limited to localhost, and, when
the process may (root on Linux), a private network namespace with only a loopback interface for
the test's duration, so no DDS packet can leave the machine.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")
from rclpy.context import Context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from gossip_learning.nodes.launch_support import loopback_only  # noqa: E402

pytestmark = pytest.mark.ros

CLONE_NEWNET = 0x40000000
_DOMAINS = itertools.count(1 + os.getpid() % 50)
FAST_TIMING = {  # short, but long enough for DDS + a busy 2-core executor to deliver in-phase
    "cluster_phase_s": 0.25,
    "train_phase_s": 0.25,
    "gossip_phase_s": 0.25,
    "end_phase_s": 0.25,
}


def _enter_private_network() -> int | None:
    """Move this thread into a new network namespace with loopback up; return the old one's fd."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("ip") is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    old = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    if libc.unshare(CLONE_NEWNET) != 0:
        os.close(old)
        return None
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    return old


def _leave_private_network(old: int | None) -> None:
    if old is not None:
        ctypes.CDLL(None, use_errno=True).setns(old, CLONE_NEWNET)
        os.close(old)


@pytest.fixture
def ros_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """An initialised rclpy Context: fresh domain, localhost discovery, private netns if root."""
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_STATIC_PEERS", raising=False)
    old = _enter_private_network()
    ctx = Context()
    try:
        rclpy.init(context=ctx, domain_id=next(_DOMAINS))
        yield ctx
    finally:
        if rclpy.ok(context=ctx):
            rclpy.shutdown(context=ctx)
        _leave_private_network(old)


def write_config(tmp_path: Path, num_robots: int, rounds: int = 3, **sections: Any) -> str:
    """A small, fast experiment config for ROS tests."""
    import yaml

    cfg: dict[str, Any] = {
        "experiment": {"rounds": rounds},
        "swarm": {"num_robots": num_robots, "area": [100.0, 100.0]},
        "channel": {"comm_range": 40.0},
        "clustering": {"passes": 3, "head_prob": 0.3, "min_cluster_size": 2},
        "learning": {"head": "linear", "epochs": 0, "init": "per_robot"},
        "gossip": {"matching": "retry", "match_attempts": 2},  # 3 more phases per gossip step
        "timing": dict(FAST_TIMING),
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path = tmp_path / "ros_test.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return str(path)


def spin_until(spin: Callable[[], None], cond: Callable[[], bool], timeout: float) -> bool:
    """Spin until ``cond()`` or ``timeout`` seconds; return ``cond()``."""
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        spin()
    return cond()


def _consensus(models: np.ndarray) -> float:
    return float(np.linalg.norm(models - models.mean(axis=0), axis=1).mean())


def _overrides(**params: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in params.items()]


def test_swarm_in_one_process_clusters_gossips_and_converges(
    ros_context: Context, tmp_path: Path
) -> None:
    from gossip_learning.nodes.monitor import MonitorNode
    from gossip_learning.nodes.swarm import SwarmHost

    near = [
        (30, 30, 0.0),
        (38, 32, 1.0),
        (34, 40, 2.0),
        (26, 36, 3.0),
        (40, 40, 4.0),
        (30, 24, 5.0),
    ]
    far = (95.0, 95.0, 0.0)  # 80 m from the group, range 40 m: hears nobody
    cfg = write_config(tmp_path, num_robots=7)
    # building + discovery fit in 3 s; a 50 ms clock tick and 5 Hz odometry keep the 2-core
    # executor far from saturation, so messages arrive inside their phase
    params = {"config_file": cfg, "epoch": time.time() + 3.0, "tick_period": 0.05}
    mobility = {"model": "static", "area": [100.0, 100.0], "rate_hz": 5.0}
    host = SwarmHost(params, [*near, far], mobility, context=ros_context)
    out = tmp_path / "monitor"
    monitor = MonitorNode(
        context=ros_context,
        parameter_overrides=_overrides(num_robots=7, output_dir=str(out), comm_range=40.0),
    )
    host.executor.add_node(monitor)
    try:
        start = np.stack([r.agent.params.copy() for r in host.robots])
        assert spin_until(lambda: host.spin_once(0.05), lambda: host.done, timeout=45)
        spin_until(lambda: host.spin_once(0.05), lambda: len(monitor.rows) >= 3, timeout=3)
        end = np.stack([r.agent.params for r in host.robots])
        statuses = [r.agent.status() for r in host.robots]

        # the six near robots heard each other, formed a cluster and merged models
        history = [h for r in host.robots[:6] for h in r.history]
        assert any(h["role"] == "member" and 0 <= h["head"] < 6 for h in history)
        assert all(r.transport.counters()["delivered"] > 0 for r in host.robots[:6])
        assert sum(s["merged_total"] for s in statuses[:6]) >= 3
        assert _consensus(end[:6]) < 0.8 * _consensus(start[:6])
        # the far robot: every frame was dropped by the range filter, nothing reached its agent
        far_stats = host.robots[6].transport.counters()
        assert far_stats["delivered"] == 0 and far_stats["dropped"] > 0
        assert set(far_stats["reasons"]) == {"out_of_range"}
        assert statuses[6]["merged_total"] == 0 and statuses[6]["neighbours"] == 0
        assert all(math.isnan(s["train_loss"]) for s in statuses)  # epochs 0: no training
        np.testing.assert_array_equal(end[6], start[6])
        # the monitor turned statuses into metrics rows, files and markers
        rounds = [row["round"] for row in monitor.rows]
        assert rounds == list(range(rounds[0], rounds[0] + 3)), rounds  # 3 rounds, in order
        assert [row["robots_reporting"] for row in monitor.rows] == [7, 7, 7]
        assert [row["models_reporting"] for row in monitor.rows] == [7, 7, 7]
        assert [row["isolated"] for row in monitor.rows] == [1, 1, 1]  # the far robot alone
        for row in monitor.rows:  # the rows count what the robots reported for that round
            same_round = [h for r in host.robots for h in r.history if h["round"] == row["round"]]
            clusters = {h["cluster"] for h in same_round if h["role"] != "none"}
            assert row["num_clusters"] == len(clusters)
            assert row["num_heads"] == sum(h["role"] == "head" for h in same_round)
        assert max(row["num_clusters"] for row in monitor.rows) >= 1  # a cluster formed
        sent = [row["msgs_sent"] for row in monitor.rows]  # per round, like the simulator's
        assert all(n > 0 for n in sent), sent
        assert sum(sent) == sum(r.transport.counters()["sent"] for r in host.robots)
        # the simulator's recorder made the rows: its columns, with the robots' seed
        assert all(row["seed"] == 0 and row["method"] == "bilayer" for row in monitor.rows)
        matched = [row["pairs_matched"] for row in monitor.rows]  # NaN: nobody had a partner
        assert all(math.isnan(m) or 0.0 <= m <= 1.0 for m in matched), matched
        assert all(row["agent_buffer_bytes"] > 0 for row in monitor.rows)
        # what a ROS run cannot know is empty (docs/ros.md): the time each phase took
        assert all(math.isnan(row[c]) for row in monitor.rows for c in row if c[:5] == "time_")
        assert all(0.0 <= row["acc_mean"] <= 1.0 for row in monitor.rows)
        # the monitor's consensus distance is that of the models the robots ended with
        assert monitor.rows[-1]["consensus_distance"] == pytest.approx(_consensus(end), rel=1e-5)
        assert (out / "metrics.csv").is_file()
        markers = monitor.marker_array().markers
        assert sum(1 for m in markers if m.ns == "robots") == 7
        assert json.loads(json.dumps(host.robots[0].history[-1]))["round"] >= 1
    finally:
        host.executor.remove_node(monitor)
        monitor.destroy_node()  # draws the final plots
        host.close()
    assert (out / "plots" / "accuracy.png").is_file()
    from gossip_learning.results import compare

    assert "bilayer" in compare([out], tmp_path / "cmp")  # compare reads the monitor's folder


def test_swarm_robots_train_locally_when_epochs_is_positive(
    ros_context: Context, tmp_path: Path
) -> None:
    """learning.epochs 1 on separable synthetic data (4 classes, chance 0.25): every robot
    trains in its worker thread every round (finite training loss) and its model learns."""
    from gossip_learning.nodes.swarm import SwarmHost

    cfg = write_config(
        tmp_path,
        num_robots=4,
        learning={"epochs": 1, "lr": 0.05, "batch_size": 32, "init": "shared"},
        data={
            "dataset": "synthetic",
            "params": {"num_train": 800, "num_test": 200, "dim": 8, "num_classes": 4},
        },
        timing={**FAST_TIMING, "train_phase_s": 0.5},
    )
    params = {"config_file": cfg, "epoch": time.time() + 3.0, "tick_period": 0.05}
    mobility = {"model": "static", "area": [100.0, 100.0], "rate_hz": 5.0}
    poses = [(30.0, 30.0, 0.0), (38.0, 32.0, 0.0), (34.0, 40.0, 0.0), (26.0, 36.0, 0.0)]
    host = SwarmHost(params, poses, mobility, context=ros_context)
    try:
        start = np.stack([r.agent.params.copy() for r in host.robots])
        assert spin_until(lambda: host.spin_once(0.05), lambda: host.done, timeout=45)
        for robot in host.robots:
            losses = [h["train_loss"] for h in robot.history]
            assert len(losses) == 3 and all(math.isfinite(v) for v in losses), losses
            accs = [h["acc"] for h in robot.history]
            assert accs[-1] > 0.7, accs  # chance is 0.25; the shared initial head scores ~chance
        end = np.stack([r.agent.params for r in host.robots])
        assert not np.allclose(end, start)
        assert sum(r.agent.window.merged_total for r in host.robots) > 0  # and they gossiped
    finally:
        host.close()


def test_monitor_writes_rounds_in_order_and_drops_reports_for_written_rounds(
    ros_context: Context, tmp_path: Path
) -> None:
    """A robot that falls behind: its round closes two rounds later, before the next complete
    round (rows in round order), and its report for a written round is counted, not a new row.
    DDS events in the robots' transport counters become the ``dds_*`` columns."""
    import json

    from std_msgs.msg import String

    from gossip_learning.nodes.monitor import MonitorNode
    from gossip_learning.protocol.report import RoundReport

    monitor = MonitorNode(
        context=ros_context,
        parameter_overrides=_overrides(num_robots=2, output_dir=str(tmp_path), marker_period=0.0),
    )

    def report(rid: int, rnd: int) -> None:
        status = RoundReport(rid, rnd, 10.0 * rid, 0.0, "none", -1, -1, 1, 50).to_dict()
        transport = {"sent": rnd, "lost": 2 * rnd} if rid == 0 else {"sent": rnd}
        monitor._on_status(String(data=json.dumps({**status, "acc": 0.5, "transport": transport})))

    try:
        for rid in (0, 1):
            report(rid, 0)
        report(0, 1)  # robot 1 is late for round 1
        for rid in (0, 1):
            report(rid, 2)  # round 2 is complete; round 1 is not
        report(0, 3)  # two rounds on: round 1 closes without robot 1, then round 2
        report(1, 1)  # robot 1's round-1 report comes after its row was written
        rows = [(row["round"], row["robots_reporting"]) for row in monitor.rows]
        assert rows == [(1, 1), (2, 2)]
        assert monitor.late_reports == 1
        # robot 0 counts DDS message-lost events (robot_node does): their deltas per round
        assert [row["dds_lost"] for row in monitor.rows] == [2, 2]
        assert [row["msgs_sent"] for row in monitor.rows] == [1, 3]
        lines = (tmp_path / "metrics.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 3  # header and one line per round
        # what a ROS run cannot know is left empty (docs/ros.md): the time each phase took
        header, first = lines[0].split(","), lines[1].split(",")
        times = [k for k, name in enumerate(header) if name.startswith("time_")]
        assert len(times) == 6 and all(first[k] == "nan" for k in times), first
    finally:
        monitor.destroy_node()


def test_kinematic_driver_publishes_moving_odometry(ros_context: Context) -> None:
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from gossip_learning.nodes.mobility import MobilityNode

    driver = MobilityNode(
        namespace="robot_0",
        context=ros_context,
        parameter_overrides=[
            Parameter("x0", value=10.0),
            Parameter("y0", value=20.0),
            Parameter("yaw0", value=0.0),
            Parameter("speed", value=5.0),
            Parameter("turn_prob", value=0.0),
            Parameter("rate_hz", value=50.0),
        ],
    )
    listener = Node("listener", context=ros_context)
    seen: list[tuple[float, float]] = []
    listener.create_subscription(
        Odometry,
        "/robot_0/odom",
        lambda m: seen.append((m.pose.pose.position.x, m.pose.pose.position.y)),
        10,
    )
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(driver)
    ex.add_node(listener)
    try:
        assert spin_until(lambda: ex.spin_once(timeout_sec=0.05), lambda: len(seen) >= 20, 5)
        xs = [p[0] for p in seen]
        assert xs[-1] > xs[0] and all(abs(p[1] - 20.0) < 1e-9 for p in seen)  # heading 0: +x
    finally:
        ex.shutdown()
        driver.destroy_node()
        listener.destroy_node()


def test_gazebo_driver_steers_toward_model_heading(ros_context: Context) -> None:
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from gossip_learning.nodes.mobility import MobilityNode

    driver = MobilityNode(
        namespace="robot_1",
        context=ros_context,
        parameter_overrides=[
            Parameter("mode", value="gazebo"),
            Parameter("yaw0", value=math.pi / 2),
            Parameter("turn_prob", value=0.0),
            Parameter("rate_hz", value=50.0),
        ],
    )
    sim = Node("fake_gazebo", context=ros_context)
    odom_pub = sim.create_publisher(Odometry, "/robot_1/odom", 10)
    cmds: list[Twist] = []
    sim.create_subscription(Twist, "/robot_1/cmd_vel", cmds.append, 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(driver)
    ex.add_node(sim)

    def step() -> None:
        odom = Odometry()
        odom.pose.pose.position.x = 50.0
        odom.pose.pose.position.y = 50.0
        odom.pose.pose.orientation.w = 1.0  # facing +x, model wants +y: turn left
        odom_pub.publish(odom)
        ex.spin_once(timeout_sec=0.05)

    try:
        assert spin_until(step, lambda: len(cmds) >= 5, 5)
        assert cmds[-1].angular.z > 0.5 and cmds[-1].linear.x < 0.1
    finally:
        ex.shutdown()
        driver.destroy_node()
        sim.destroy_node()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"robot_id": 0, "comm_range": -5.0}, "parameter 'comm_range'"),
        ({"robot_id": 9, "num_robots": 4}, "parameter 'robot_id'"),
        ({"robot_id": 0, "swarm_namespace": "9 bad"}, "parameter 'swarm_namespace'"),
        ({"robot_id": 0, "method": "cfl"}, "parameter 'method'"),
    ],
)
def test_bad_robot_parameter_is_rejected_with_a_clear_message(
    ros_context: Context, overrides: dict[str, Any], message: str
) -> None:
    from gossip_learning.nodes.robot import RobotNode

    with pytest.raises(ValueError, match=message):
        RobotNode(
            context=ros_context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )


def test_bad_mobility_parameter_is_rejected(ros_context: Context) -> None:
    from gossip_learning.nodes.mobility import MobilityNode

    with pytest.raises(ValueError, match="parameter 'mode'"):
        MobilityNode(context=ros_context, parameter_overrides=[Parameter("mode", value="teleport")])
    with pytest.raises(ValueError, match="parameter 'x0'"):
        MobilityNode(context=ros_context, parameter_overrides=[Parameter("x0", value=500.0)])


def test_robot_executable_exits_with_the_message(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(next(_DOMAINS)),
    }
    code = "import sys; from gossip_learning.nodes.robot import main; sys.exit(main(sys.argv))"
    cmd = [sys.executable, "-c", code, "--ros-args", "-p", "robot_id:=0", "-p", "comm_range:=-1.0"]
    cmd = loopback_only(cmd)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "parameter 'comm_range'" in proc.stderr and "-1.0" in proc.stderr


def test_a_robot_refuses_the_simulators_oracle_matching(
    ros_context: Context, tmp_path: Path
) -> None:
    """``gossip.matching: oracle`` is the simulator's central matching: a ROS robot, which can
    only match by messages, refuses it and names the key."""
    from gossip_learning.errors import ConfigError
    from gossip_learning.nodes.robot import RobotNode

    cfg = write_config(tmp_path, num_robots=2, gossip={"matching": "oracle"})
    with pytest.raises(ConfigError, match=r"gossip\.matching") as err:
        RobotNode(
            context=ros_context,
            parameter_overrides=[
                Parameter("config_file", value=cfg),
                Parameter("robot_id", value=0),
            ],
        )
    assert "'single' or 'retry'" in str(err.value)
