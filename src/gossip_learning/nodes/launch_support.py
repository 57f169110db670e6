"""Pure-Python helpers for launch/swarm.launch.py: per-robot SDF, bridge YAML, arguments, DDS env.

Nothing here imports ``launch`` or ``rclpy``, so it is unit-tested without ROS installed.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from gossip_learning.nodes.discovery import DISCOVERY_MODES as DISCOVERY_MODES
from gossip_learning.nodes.discovery import choose_discovery

TEMPLATE_MODEL_NAME = "diff_bot"
SIM_MODES = ("kinematic", "gazebo", "plant")


def loopback_only(cmd: list[str]) -> list[str]:
    """``cmd`` in a private network namespace with only ``lo`` up, where this process may make
    one (root, with ``unshare`` and ``ip``); else ``cmd`` unchanged. ``sh -c exec`` keeps the
    command's pid, so signals sent to it reach it."""
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]
    return cmd


def loopback_env(
    domain: int, log_dir: Path | str, prefix: Path | str | None = None
) -> dict[str, str]:
    """This process's environment for ROS processes that stay on this host: localhost discovery,
    ROS domain ``domain``, logs in ``log_dir``, unbuffered output, and ``prefix`` (a colcon
    install) ahead of ``AMENT_PREFIX_PATH``."""
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(domain),
        "ROS_LOG_DIR": str(log_dir),
        "PYTHONUNBUFFERED": "1",
    }
    if prefix is not None:
        env["AMENT_PREFIX_PATH"] = f"{prefix}:{os.environ.get('AMENT_PREFIX_PATH', sys.prefix)}"
    return env


def robot_name(index: int) -> str:
    """Namespace and Gazebo model name of robot ``index``."""
    return f"robot_{index}"


def robot_sdf(template: str, name: str) -> str:
    """The robot model SDF with its model name and Gazebo topics renamed to ``name``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"invalid robot name {name!r}")
    text = template.replace(f"/model/{TEMPLATE_MODEL_NAME}/", f"/model/{name}/")
    text = text.replace(f"{TEMPLATE_MODEL_NAME}/base_link", f"{name}/base_link")
    return text.replace(f'<model name="{TEMPLATE_MODEL_NAME}">', f'<model name="{name}">')


def world_name(sdf_path: str | Path) -> str:
    """The ``<world name=...>`` of an SDF world file (``ros_gz_sim create -world`` needs it)."""
    root = ET.parse(sdf_path).getroot()
    world = root.find("world")
    if world is None or not world.get("name"):
        raise ValueError(f"{sdf_path} has no <world name=...>")
    return str(world.get("name"))


def bridge_entries(names: list[str]) -> list[dict[str, Any]]:
    """ros_gz_bridge entries: /clock, and per robot odometry (gz->ROS) and cmd_vel (ROS->gz)."""
    entries: list[dict[str, Any]] = [
        {
            "ros_topic_name": "/clock",
            "gz_topic_name": "/clock",
            "ros_type_name": "rosgraph_msgs/msg/Clock",
            "gz_type_name": "gz.msgs.Clock",
            "direction": "GZ_TO_ROS",
        }
    ]
    for name in names:
        entries.append(
            {
                "ros_topic_name": f"/{name}/odom",
                "gz_topic_name": f"/model/{name}/odometry",
                "ros_type_name": "nav_msgs/msg/Odometry",
                "gz_type_name": "gz.msgs.Odometry",
                "direction": "GZ_TO_ROS",
            }
        )
        entries.append(
            {
                "ros_topic_name": f"/{name}/cmd_vel",
                "gz_topic_name": f"/model/{name}/cmd_vel",
                "ros_type_name": "geometry_msgs/msg/Twist",
                "gz_type_name": "gz.msgs.Twist",
                "direction": "ROS_TO_GZ",
            }
        )
    return entries


def write_bridge_config(names: list[str], path: str | Path) -> Path:
    """Write the bridge YAML for ``names`` to ``path`` and return it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(bridge_entries(names), sort_keys=False), encoding="utf-8")
    return out


def check_arguments(given: Any, valid: Any) -> None:
    """A mistyped launch argument (``num_robot:=5``) is a ValueError that lists the valid ones."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown launch argument(s) {', '.join(unknown)}; "
            f"valid arguments: {', '.join(sorted(valid))}"
        )


def parse_bool(key: str, text: str) -> bool:
    """A launch argument as a boolean (``true/false/1/0/yes/no``), or a ValueError naming it."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"launch argument {key}:={text!r} is not a boolean (use true or false)")


def parse_number(key: str, text: str, kind: type = float, low: float | None = None) -> Any:
    """A launch argument as ``kind`` with an optional lower bound; a ValueError names it."""
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"launch argument {key}:={text!r} is not {kind.__name__}") from None
    if low is not None and value < low:
        raise ValueError(f"launch argument {key}:={text!r} must be >= {low:g}")
    return value


#: What ``sim:=gazebo`` needs beyond this package (Jazzy: ``ros-jazzy-ros-gz`` brings both).
GAZEBO_PACKAGES = ("ros_gz_sim", "ros_gz_bridge")


def gazebo_missing(find_share: Any) -> None:
    """Raise a ValueError naming what to install (and ``sim:=plant``) if ``find_share`` (ament's
    ``get_package_share_directory``) finds no ros_gz package."""
    missing = []
    for package in GAZEBO_PACKAGES:
        try:
            find_share(package)
        except Exception:  # ament_index_python's PackageNotFoundError (a KeyError)
            missing.append(package)
    if missing:
        raise ValueError(
            f"sim:=gazebo needs {' and '.join(missing)}, not found: install Gazebo Harmonic's "
            "ROS bridge (sudo apt install ros-jazzy-ros-gz) and source its setup.bash; or run "
            "sim:=plant, the same robot and controller nodes on a built-in diff-drive plant "
            "without Gazebo"
        )


def discovery_env(mode: str, profile: str) -> dict[str, str]:
    """Environment for every node the launch starts, by ``discovery:=`` mode, for a swarm that
    fits it (:func:`gossip_learning.nodes.discovery.choose_discovery` counts participants):
    ``localhost`` (rmw_fastrtps's, 32 slots), ``wide`` (the Fast DDS profile ``profile``,
    loopback UDP, 256 slots), ``inherit`` (the caller's environment), ``auto`` (localhost)."""
    return choose_discovery(mode, 0, {}, profile).env


#: start_delay:=auto: seconds for a swarm_node to start (imports, data, plan) plus per extra
#: process (discovery and start-up competing for the CPUs); measured by benchmarks/ros_swarm.py.
AUTO_DELAY_S = 10.0
AUTO_DELAY_PER_PROCESS_S = 3.0


def start_delay(text: str, processes: int) -> float:
    """The ``start_delay`` launch argument in seconds; ``auto`` grows with ``processes``."""
    if text.strip().lower() == "auto":
        return AUTO_DELAY_S + AUTO_DELAY_PER_PROCESS_S * max(0, processes - 1)
    return float(parse_number("start_delay", text, float, 0.0))


#: Seconds between the starts of two robot processes: one start-up (interpreter, imports, DDS
#: participant, the robot's data) takes about half a CPU second (benchmarks/ros_swarm.py,
#: ``active_s``). At 0.3 s, 60 starts on two cores with one other CPU-bound job queued behind
#: each other (a robot needed 60-80 s to become active); a second apart each starts on its own.
STAGGER_PER_PROCESS_S = 1.0


def stagger_s(robots: int, processes_per_robot: int, delay: float) -> float:
    """Seconds between the starts of consecutive robots (each with ``processes_per_robot``
    processes); every robot starts within the first half of the start delay ``delay``."""
    if robots <= 1:
        return 0.0
    return min(STAGGER_PER_PROCESS_S * processes_per_robot, delay / (2 * robots))
