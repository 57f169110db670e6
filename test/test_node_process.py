"""A node process ends by nodes/process.end_process: its last output first, then its exit code,
with no DDS entity destroyed (a per-entity teardown at 60 processes tripped the watchdog in
every one of them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gossip_learning.nodes.launch_support import loopback_only

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")
pytestmark = pytest.mark.ros

_NODE = """
import sys
import rclpy
from rclpy.node import Node
from std_msgs.msg import String
from gossip_learning.nodes.process import end_process, process_age_s

class Done(Node):
    def before_exit(self):
        print("last output", flush=False)  # end_process flushes

    def destroy_node(self):
        print("destroyed one by one")
        super().destroy_node()

rclpy.init()
node = Done("ending")
pubs = [node.create_publisher(String, f"/t{i}", 10) for i in range(20)]
subs = [node.create_subscription(String, f"/t{i}", lambda m: None, 10) for i in range(20)]
print(f"age {process_age_s():.2f}")
end_process(int(sys.argv[1]), [node])
"""


@pytest.mark.parametrize("code", [0, 2])
def test_end_process_writes_the_last_output_and_leaves_with_the_code(
    code: int, tmp_path: Path
) -> None:
    env = {**os.environ, "ROS_DOMAIN_ID": "88", "ROS_LOG_DIR": str(tmp_path)}
    proc = subprocess.run(
        loopback_only([sys.executable, "-c", _NODE, str(code)]),
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == code, proc.stderr
    assert "last output" in proc.stdout  # flushed before os._exit
    assert "destroyed one by one" not in proc.stdout
    assert "Timeout (" not in proc.stderr
    age = float(proc.stdout.split("age ")[1].split()[0])
    assert 0.0 < age < 180.0  # seconds since this process started
