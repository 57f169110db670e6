"""swarm_node's SharedHost on real rclpy: many robots, one clock, shared subscriptions.

Same private, loopback-only domain as test_ros_nodes.py. With ``motion=round`` the hosted swarm
is the engine's (same plan, mobility, batched trainer), with DDS as the medium: accuracy must match
`gossip-learning run`'s within 2 points, and no frame may arrive after its phase.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import String  # noqa: E402

import test_ros_nodes  # noqa: E402
from gossip_learning.config import load_config  # noqa: E402
from gossip_learning.experiment import Swarm  # noqa: E402
from gossip_learning.nodes.host import REPORTS_PER_TICK, SharedHost  # noqa: E402
from gossip_learning.plan import load_data  # noqa: E402
from gossip_learning.transports.ros import reliable_qos  # noqa: E402
from ros_schema import check_status  # noqa: E402
from test_ros_nodes import spin_until, write_config  # noqa: E402

pytestmark = pytest.mark.ros
ros_context = test_ros_nodes.ros_context  # the same private-domain fixture


def _host(ctx: Context, cfg_path: str, ids: list[int], **kw: object) -> SharedHost:
    node = Node("swarm_host", context=ctx)
    bus = Node("swarm_host_bus", context=ctx)
    cfg = load_config(cfg_path)
    return SharedHost(node, bus, cfg, 0, ids, epoch=time.time() + 1.0, **kw)  # type: ignore[arg-type]


def test_hosted_swarm_matches_the_engine_and_hears_every_frame_in_its_phase(
    ros_context: Context, tmp_path: Path
) -> None:
    n, rounds = 16, 3
    path = write_config(
        tmp_path, n, rounds,
        learning={"epochs": 1, "init": "shared"}, channel={"comm_range": 60.0},
        clustering={"min_cluster_size": 3, "head_prob": 0.2},
    )  # fmt: skip
    # a clock tick (0.6 s) longer than two phases (0.25 s): the host is behind, as an overloaded
    # executor is; frames are still heard in their phase because the driver drains between phases
    host = _host(ros_context, path, list(range(n)), motion="round", tick=0.6)
    cfg = host.cfg
    engine = Swarm(cfg, "bilayer", 0, load_data(cfg))
    start = np.array([[a.x, a.y] for a in host.agents])
    np.testing.assert_array_equal(start, engine.plan.positions)  # the plan's start poses
    # a monitor whose subscription keeps fewer statuses than one round's burst would be
    monitor = Node("monitor", context=ros_context)
    heard: list[str] = []
    monitor.create_subscription(
        String, "/swarm/status", lambda m: heard.append(m.data), reliable_qos(REPORTS_PER_TICK)
    )
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(host.node)
    ex.add_node(monitor)
    try:
        assert spin_until(lambda: ex.spin_once(timeout_sec=0.05), lambda: host.finished, 60)
        spin_until(lambda: ex.spin_once(timeout_sec=0.05), lambda: False, 0.5)
    finally:
        ex.shutdown()
    assert len(heard) == n * (rounds + 1)  # round 0 and every round: nothing lost in bursts
    for text in heard:  # the documented schema (docs/ros-messages.schema.json)
        check_status(text)
    rows = [engine.step()[0] for _ in range(rounds)]
    acc, _ = host._evaluate()
    assert abs(float(acc.mean()) - rows[-1]["acc_mean"]) <= 0.02, (acc.mean(), rows[-1])
    rejected: Counter[str] = Counter()
    for a in host.agents:
        rejected.update(a.status()["rejected"])
    assert not rejected, rejected  # nothing late, stale or early: every frame heard in its phase
    assert len({a.state.cluster for a in host.agents if a.state.cluster >= 0}) >= 1
    assert host.delivered_frames > n * rounds  # frames really went through DDS
    host.close()


def test_a_host_ready_before_round_1_joins_it_even_when_its_tick_comes_late(
    ros_context: Context, tmp_path: Path
) -> None:
    """A host waiting for the epoch whose first tick after it lands past slot 0 (a busy CPU)
    joins round 1 at once and runs the missed phases late; one that starts mid-round waits for
    the next round's start, and still joins if that tick comes late too."""
    path = write_config(tmp_path, 4, 3)
    host = _host(ros_context, path, [0, 1])
    clock, t = host.clock, [0.0]
    host.now = lambda: t[0]  # type: ignore[method-assign]  # the host's clock, driven here
    t[0] = clock.start - 0.05
    host.tick()
    assert host.driver.round == 0  # before the epoch
    t[0] = clock.phase_start(1, 3) + 0.01  # the next tick, three phases late
    host.tick()
    assert (host.driver.round, host.joined_round) == (1, 1)
    assert host.driver.late_phases == 0 and host.driver.next_slot == 4  # phases 0..3 ran

    late = _host(ros_context, path, [2, 3])
    late.now = lambda: t[0]  # type: ignore[method-assign]
    clock = late.clock
    t[0] = clock.phase_start(1, 2) + 0.01  # started mid-round 1
    late.tick()
    t[0] = clock.phase_start(1, 4) + 0.01
    late.tick()
    assert late.driver.round == 0  # waits for a round start
    t[0] = clock.phase_start(2, 1) + 0.01  # round 2's start passed between two ticks
    late.tick()
    assert (late.driver.round, late.joined_round) == (2, 2)
    host.close()
    late.close()


def test_a_host_waiting_for_round_1_ticks_slowly_until_just_before_it(
    ros_context: Context, tmp_path: Path
) -> None:
    """Before the epoch a host ticks every IDLE_TICK_S (idle robot processes leave the CPU to
    those still starting), at its own tick from two idle ticks before round 1."""
    from gossip_learning.nodes.host import IDLE_TICK_S

    host = _host(ros_context, write_config(tmp_path, 2, 1), [0], tick=0.05)
    t = [host.clock.start - 10.0]
    host.now = lambda: t[0]  # type: ignore[method-assign]
    host.tick()
    assert host.timer.timer_period_ns == round(IDLE_TICK_S * 1e9)
    t[0] = host.clock.start - 0.9
    host.tick()
    assert host.timer.timer_period_ns == round(0.05 * 1e9)
    host.close()


def test_host_refuses_ids_outside_the_swarm(ros_context: Context, tmp_path: Path) -> None:
    path = write_config(tmp_path, 4, 1)
    with pytest.raises(ValueError, match="robot_ids"):
        _host(ros_context, path, [3, 4])
    with pytest.raises(ValueError, match="motion"):
        _host(ros_context, path, [0], motion="teleport")


def test_more_robots_than_the_default_qos_depth_hear_every_beacon(
    ros_context: Context, tmp_path: Path
) -> None:
    n = 70  # one beacon phase sends more frames than the transports' default depth (64)
    path = write_config(tmp_path, n, 1, channel={"comm_range": 60.0})
    host = _host(ros_context, path, list(range(n)), motion="round")
    engine = Swarm(host.cfg, "bilayer", 0, load_data(host.cfg))
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(host.node)
    try:
        assert spin_until(lambda: ex.spin_once(timeout_sec=0.05), lambda: host.done, 60)
    finally:
        ex.shutdown()
    engine.step()
    heard = [a.status()["neighbours"] for a in host.agents]
    assert heard == [a.status()["neighbours"] for a in engine.agents]
    host.close()


def test_a_host_from_data_files_is_the_host_from_the_plan(
    ros_context: Context, tmp_path: Path
) -> None:
    """With ``data_dir`` a host loads only its robots' files, and builds the same robots: data,
    first head, samples, label mix, agent seed, test rows and start poses."""
    from gossip_learning.robot_data import write_robot_files

    path = write_config(tmp_path, 6, 1, data={"standardize": "local"})
    write_robot_files(load_config(path), 0, tmp_path / "parts")
    ids = [1, 4]
    whole = _host(ros_context, path, ids)
    lean = _host(ros_context, path, ids, data_dir=str(tmp_path / "parts"))
    for a, b in zip(whole.agents, lean.agents, strict=True):
        np.testing.assert_array_equal(a.model, b.model)
        assert (a.num_samples, a.x, a.y) == (b.num_samples, b.x, b.y)
        np.testing.assert_array_equal(a.label_dist, b.label_dist)
    for i in ids:
        for x, y in zip(whole.trainer.data[i], lean.trainer.data[i], strict=True):
            np.testing.assert_array_equal(x, y)
    for t, u in zip(whole.tests, lean.tests, strict=True):
        np.testing.assert_array_equal(t, u)
    np.testing.assert_array_equal(whole.y_test, lean.y_test)
    assert whole.tests[0] is not whole.tests[1]  # local statistics: each robot its own test rows


_PROBE = """
import json, sys
from gossip_learning.nodes.process import lean_imports
if sys.argv[3] == "lean":
    lean_imports()  # first, as swarm_node's entry point does
import rclpy
from rclpy.node import Node
from gossip_learning.config import load_config
from gossip_learning.nodes.host import SharedHost
import gossip_learning.nodes.swarm  # what swarm_node imports besides
rclpy.init()
host = SharedHost(Node("h"), Node("b"), load_config(sys.argv[1]), 0, [2], data_dir=sys.argv[2])
print(json.dumps(sorted({m.split(".")[0] for m, mod in sys.modules.items() if mod is not None})))
"""


def test_a_robot_process_from_its_data_file_imports_no_dataset_code(tmp_path: Path) -> None:
    """swarm_node hosting one robot from its file (what the launch starts per robot) imports no
    scikit-learn, torch, scipy, matplotlib or OpenSSL (the fleet key's HMAC, imported only with
    a key); without the file it loads the dataset (sklearn)."""
    import json
    import os
    import subprocess
    import sys

    from gossip_learning.nodes.launch_support import loopback_only
    from gossip_learning.robot_data import write_robot_files
    from test_ros_robot_node import HEAVY

    path = write_config(tmp_path, 4, 1, learning={"epochs": 1, "init": "shared"})
    write_robot_files(load_config(path), 0, tmp_path / "parts")
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(next(test_ros_nodes._DOMAINS)),
    }

    def modules(data_dir: str, lean: str = "lean") -> set[str]:
        proc = subprocess.run(
            loopback_only([sys.executable, "-c", _PROBE, path, data_dir, lean]),
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return set(json.loads(proc.stdout.strip().splitlines()[-1]))

    light = modules(str(tmp_path / "parts"))
    assert not set(HEAVY) & light
    # no OpenSSL (hashlib, hmac: 3-4 MB of RSS) without a fleet key, no IDL code generator
    # (lark, empy, rosidl_parser: 7-8 MB) that rclpy's message type supports would pull in
    assert not {"_hashlib", "_ssl", "lark", "em"} & light, light
    assert {"lark", "_hashlib"} <= modules(str(tmp_path / "parts"), "full")  # the probe sees them
    assert "sklearn" in modules("")  # the probe sees the dataset loader when it runs
