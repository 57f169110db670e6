"""Pure-Python helpers for launch/swarm.launch.py: seeded spawn poses, per-robot SDF, bridge YAML.

Nothing here imports ``launch`` or ``rclpy``, so it is unit-tested without ROS installed.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import yaml

TEMPLATE_MODEL_NAME = "diff_bot"
SIM_MODES = ("kinematic", "gazebo")


def robot_name(index: int) -> str:
    """Namespace and Gazebo model name of robot ``index``."""
    return f"robot_{index}"


def spawn_poses(
    n: int, area: tuple[float, float], seed: int, margin: float = 1.0
) -> list[tuple[float, float, float]]:
    """``n`` seeded poses ``(x, y, yaw)``, uniform in the area, ``margin`` from the walls."""
    if n < 1:
        raise ValueError(f"num_robots must be >= 1, got {n}")
    w, h = (float(a) for a in area)
    if not (w > 2 * margin and h > 2 * margin):
        raise ValueError(f"area {w:g} x {h:g} is too small for a {margin:g} m margin")
    rng = np.random.default_rng(seed)
    xy = rng.uniform((margin, margin), (w - margin, h - margin), size=(n, 2))
    yaw = rng.uniform(-math.pi, math.pi, size=n)
    return [(float(x), float(y), float(t)) for (x, y), t in zip(xy, yaw, strict=True)]


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
