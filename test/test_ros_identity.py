"""Per-robot keys on ROS 2: the rclpy transport refuses a frame signed by one robot in another's
name, and three robots, each a host in its own network namespace (the fleet harness:
``unshare``, a bridge, real DDS discovery), run with only their own key and the keyring."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")
pytest.importorskip("cryptography", reason="robot keys need cryptography (.[identity])")

from rclpy.context import Context

from gossip_learning.identity import RobotAuth
from gossip_learning.keyring import create_fleet, load_keyring, signing_keys
from gossip_learning.wire import encode
from test_ros_contract import RosHarness, _beacon, _one_robot, harness  # noqa: F401
from test_ros_nodes import ros_context  # noqa: F401  (fixture)

pytestmark = pytest.mark.ros
SIGNATURE_REASONS = {"bad_signature", "unknown_signer", "unauthenticated", "revoked_key",
                     "unknown_key", "version", "replay"}  # fmt: skip


def _auth(folder: Path, *robots: int) -> RobotAuth:
    ring = load_keyring(f"file:{folder / 'keyring.json'}", 7)
    return RobotAuth(ring, signing_keys(f"file:{folder}", ring, list(robots)))


def test_rclpy_transport_refuses_a_frame_in_another_robots_name(
    harness: RosHarness,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Robot 2 (a key holder) beacons in robot 1's name first: refused, and no pose is kept
    for robot 1 from it, so robot 1's own beacon after it is taken."""
    keys = tmp_path / "keys"
    create_fleet(keys, [0, 1, 2], fleet_id=7)
    t, got = _one_robot(harness, num_robots=3, auth=_auth(keys, 0))
    harness.inject(1, "beacon", _auth(keys, 2).seal_as(encode(_beacon(1, x=9.0)), 2))
    harness.inject(2, "beacon", encode(_beacon(2)))  # unsigned
    harness.settle()
    harness.inject(1, "beacon", encode(_beacon(1), _auth(keys, 1)))
    harness.settle()
    assert [(m.sender, m.beacon.x) for m in got if m.beacon] == [(1, 5.0)]
    assert t.poses == {1: (5.0, 0.0)}
    assert t.counters()["reasons"] == {"bad_signature": 1, "unauthenticated": 1}


def test_robot_node_takes_key_file_paths_and_signs_only_as_itself(
    ros_context: Context,  # noqa: F811
    tmp_path: Path,
) -> None:
    """robot_node's ``robot_key_file``/``keyring_file`` parameters: paths in, the robot's own
    key only; another robot's key file fails configure with an error naming the key."""
    from rclpy.parameter import Parameter

    from gossip_learning.nodes.robot import RobotNode
    from test_ros_nodes import write_config

    keys = tmp_path / "keys"
    create_fleet(keys, [0, 1, 2], fleet_id=0)
    cfg = write_config(tmp_path, num_robots=3)

    def node(key: str) -> RobotNode:
        params = {"robot_id": 1, "config_file": cfg, "autostart": False, "robot_key_file": key,
                  "keyring_file": str(keys / "keyring.json")}  # fmt: skip
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        return RobotNode(
            context=ros_context, namespace=f"r{len(key)}", parameter_overrides=overrides
        )

    good = node(str(keys / "robot_1.key"))
    try:
        assert good.trigger_configure().to_label() == "transition_success", good.failure
        auth = good.transport.auth
        assert isinstance(auth, RobotAuth) and set(auth._signers) == {1}
        values = [p.value for p in good._parameters.values()]
        assert not any("PRIVATE KEY" in str(v) for v in values)
    finally:
        good.destroy_node()
    bad = node(str(keys / "robot_2.key"))
    try:
        assert bad.trigger_configure().to_label() == "transition_failure"
        assert "defence.robot_keys" in str(bad.failure) and "[1]" in str(bad.failure)
    finally:
        bad.destroy_node()


def test_a_swarm_node_host_signs_for_its_robots_from_a_key_folder(
    ros_context: Context,  # noqa: F811
    tmp_path: Path,
) -> None:
    """One process hosting robots 0-3 (swarm_node's SharedHost) with a folder of keys: it holds
    the keys of its robots only, and its robots hear each other's signed frames."""
    import time

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from gossip_learning.config import load_config
    from gossip_learning.nodes.host import SharedHost
    from test_ros_nodes import spin_until, write_config

    keys = tmp_path / "keys"
    create_fleet(keys, list(range(5)), fleet_id=0)
    path = write_config(tmp_path, 4, 2, channel={"comm_range": 200.0},
                        defence={"keyring": f"file:{keys / 'keyring.json'}",
                                 "robot_keys": f"file:{keys}"})  # fmt: skip
    node, bus = Node("keyed_host", context=ros_context), Node("keyed_bus", context=ros_context)
    host = SharedHost(node, bus, load_config(path), 0, [0, 1, 2, 3], epoch=time.time() + 1.0)
    assert isinstance(host.auth, RobotAuth) and set(host.auth._signers) == {0, 1, 2, 3}
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(host.node)
    try:
        assert spin_until(lambda: ex.spin_once(timeout_sec=0.05), lambda: host.finished, 60)
    finally:
        ex.shutdown()
    reasons = [tr.counters()["reasons"] for tr in host.transports]
    assert host.delivered_frames > 0 and sum(a.window.merged_total for a in host.agents) > 0
    assert not any(set(r) & SIGNATURE_REASONS for r in reasons), reasons
    host.close()


@pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in ("unshare", "ip", "nft", "tc")),
    reason="the fleet harness needs root, unshare, ip, nft and tc",
)
def test_three_hosts_sign_with_their_own_keys(tmp_path: Path) -> None:
    from test_fleet_harness import env_with, fleet_cmd, fleet_config

    def fleet(*args: str) -> tuple[int, str]:
        config = str(fleet_config(tmp_path))
        run = subprocess.run(
            fleet_cmd(config, "--robots", "3", "--robot-keys", str(keys), *args),
            env=env_with(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        return run.returncode, run.stdout[-3000:] + run.stderr[-3000:]

    keys = tmp_path / "keys"
    create_fleet(keys, [0, 1, 2], fleet_id=0)
    out = tmp_path / "out"
    status, log = fleet("--rounds", "3", "--out", str(out))
    assert status == 0, log
    r = json.loads((out / "fleet.json").read_text(encoding="utf-8"))
    assert r["ok"] and r["exits"] == [0, 0, 0], log
    assert [row["reporting"] for row in r["per_round"]] == [3, 3, 3]
    assert r["merged_per_robot_round"] > 0  # models crossed, signed and verified
    assert not set(r["rejected"]) & SIGNATURE_REASONS, r["rejected"]
    private = [(keys / f"robot_{i}.key").read_text() for i in range(3)]
    for f in out.rglob("*"):
        if f.is_file():
            text = f.read_text(encoding="utf-8", errors="replace")
            assert not any(p.strip().splitlines()[1] in text for p in private), f
    # a robot given another robot's key is refused before any work, naming the option
    (keys / "robot_2.key").write_bytes((keys / "robot_1.key").read_bytes())
    status, log = fleet("--out", str(tmp_path / "bad"))
    assert status != 0 and "--robot-keys" in log and "robot 2" in log, log
    assert not (tmp_path / "bad").exists()


def test_robot_launch_passes_key_paths_only(tmp_path: Path) -> None:
    pytest.importorskip("launch_ros", reason="the ROS 2 launch packages are not installed")
    import yaml

    from test_fleet_links import ROOT, _expand_robot, _node_params

    keys = tmp_path / "keys"
    create_fleet(keys, [0, 1], fleet_id=0)
    key, ring = str(keys / "robot_1.key"), str(keys / "keyring.json")
    config = str(ROOT / "config" / "ros_swarm.yaml")
    for sim in ("real", "kinematic"):
        (node,) = _expand_robot(
            robot_id="1", sim=sim, config=config, robot_key_file=key, keyring_file=ring
        )
        p = _node_params(node)
        text = {
            k: yaml.safe_load("".join(getattr(x, "text", str(x)) for x in v))
            for k, v in p.items()
            if k in ("robot_key_file", "keyring_file")
        }  # launch_ros: YAML
        assert text == {"robot_key_file": key, "keyring_file": ring}
        assert "PRIVATE KEY" not in json.dumps(p, default=str)
