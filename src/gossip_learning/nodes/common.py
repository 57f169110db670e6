"""What the ROS nodes share: one robot's slice of an experiment, and checked node parameters.

:func:`robot_parts` gives robot ``i`` its data partition, initial head, agent seed and evaluation
subset from the same :class:`~gossip_learning.plan.SwarmPlan` as the in-process swarm, so a ROS
swarm and an in-process run of the same config and seed share those: read from the robot's own
file when a ``data_dir`` written by ``gossip-learning partition`` is given (the launch does this:
the robot then loads only its own rows and imports no dataset code), else cut from the whole
dataset. No rclpy import here.
"""

from __future__ import annotations

import re
from typing import Any

from gossip_learning.config import Config
from gossip_learning.protocol import AgentSettings
from gossip_learning.robot_data import RobotParts, agent_settings, read_robot_file
from gossip_learning.robot_data import robot_parts as plan_parts

DECENTRALISED_METHODS = ("bilayer", "flat", "local")


def robot_parts(
    cfg: Config, method: str, seed: int, robot_id: int, data_dir: str = ""
) -> tuple[RobotParts, AgentSettings]:
    """Robot ``robot_id``'s parts and protocol settings: from ``data_dir/robot_<id>.npz`` if
    ``data_dir`` is given, else from the in-process engine's plan (the whole dataset)."""
    n = cfg.swarm.num_robots
    if not 0 <= robot_id < n:
        raise ValueError(f"parameter 'robot_id': {robot_id} is outside 0..{n - 1} (num_robots={n})")
    if method not in DECENTRALISED_METHODS:
        raise ValueError(
            f"parameter 'method': {method!r} cannot run on robots; "
            f"allowed: {', '.join(DECENTRALISED_METHODS)}"
        )
    if data_dir:
        parts = read_robot_file(data_dir, cfg, seed, robot_id)
    else:
        parts = plan_parts(cfg, seed, robot_id)
    return parts, agent_settings(cfg, parts.spec, method)


_NAMESPACE = re.compile(r"^/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")


def check_namespace(value: str) -> str:
    """A swarm namespace such as ``swarm`` or ``/fleet/swarm``; ValueError names the parameter."""
    if not _NAMESPACE.match(value):
        raise ValueError(
            f"parameter 'swarm_namespace': {value!r} is not a valid ROS namespace "
            "(letters, digits and '_', segments separated by '/', each starting with a letter)"
        )
    return value.strip("/")


def require(name: str, value: Any, ok: bool, rule: str) -> Any:
    """Return ``value`` if ``ok``, else raise ValueError("parameter 'name': value must be rule")."""
    if not ok:
        raise ValueError(f"parameter '{name}': {value!r} is invalid; it must be {rule}")
    return value


def coerce(values: dict[str, Any], table: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """``values`` with ints given for float parameters (and in float lists) turned into floats."""
    out = dict(values)
    for name, value in values.items():
        default = table.get(name, (None, ""))[0]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(default, list) and default and isinstance(default[0], float):
            out[name] = [float(v) for v in value]
    return out
