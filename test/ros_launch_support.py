"""What the real `ros2 launch` tests share: their skip condition and one colcon-built workspace
per test session (the package installed as a user installs it)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gossip_learning.config import dump_config, load_config

ROOT = Path(__file__).resolve().parents[1]
MISSING = [
    m
    for m in ("launch", "launch_ros", "ros2launch", "rclpy")
    if importlib.util.find_spec(m) is None
]
#: Marks for a module of real-launch tests: ROS, and skipped without the launch wheels or colcon.
LAUNCH_MARKS = [
    pytest.mark.ros,
    pytest.mark.skipif(
        bool(MISSING) or shutil.which("colcon") is None,
        reason=f"needs the ROS 2 launch wheels (../shared/wheels) and colcon; missing: {MISSING}",
    ),
]


def build_workspace(ws: Path) -> Path:
    """colcon-build this checkout as the one package of workspace ``ws``; return ``ws``."""
    (ws / "src").mkdir()
    (ws / "src" / "gossip_learning").symlink_to(ROOT, target_is_directory=True)
    proc = subprocess.run(
        ["colcon", "build", "--packages-select", "gossip_learning"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLCON_HOME": str(ws / ".colcon")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ws


def small_swarm_config(folder: Path) -> Path:
    """config/ros_swarm.yaml for a few robots that all hear each other (with the paper's minimum
    cluster size of 3, no robot with 3 neighbours could lead), written to ``folder/swarm.yaml``."""
    cfg = load_config(ROOT / "config" / "ros_swarm.yaml", ["clustering.min_cluster_size=1"])
    path = folder / "swarm.yaml"
    path.write_text(dump_config(cfg), encoding="utf-8")
    return path
