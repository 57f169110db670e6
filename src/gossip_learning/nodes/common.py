"""What the ROS nodes share: one robot's slice of an experiment, and checked node parameters.

:func:`robot_parts` takes robot ``i``'s data partition, initial head, agent seed and evaluation
subset from the same :class:`~gossip_learning.plan.SwarmPlan` as the in-process swarm, so
a ROS swarm and an in-process run of the same config and seed share those. They do not share
start positions or motion: the launch file draws its own spawn poses and seeds one mobility
driver per robot (see docs/ros.md). Each robot loads the whole dataset to cut its slice.
No rclpy import here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from gossip_learning.config import Config
from gossip_learning.datasets import standardize_with
from gossip_learning.learner import HeadSpec
from gossip_learning.plan import SwarmPlan, load_data
from gossip_learning.protocol import AgentSettings

DECENTRALISED_METHODS = ("bilayer", "flat", "local")


@dataclass
class RobotParts:
    """Everything one robot needs besides its transport."""

    spec: HeadSpec
    settings: AgentSettings
    params: np.ndarray
    samples: int
    label_dist: np.ndarray
    agent_seed: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def robot_parts(cfg: Config, method: str, seed: int, robot_id: int) -> RobotParts:
    """Robot ``robot_id``'s slice of the experiment, from the same :class:`SwarmPlan` as the
    in-process swarm."""
    n = cfg.swarm.num_robots
    if not 0 <= robot_id < n:
        raise ValueError(f"parameter 'robot_id': {robot_id} is outside 0..{n - 1} (num_robots={n})")
    if method not in DECENTRALISED_METHODS:
        raise ValueError(
            f"parameter 'method': {method!r} cannot run on robots; "
            f"allowed: {', '.join(DECENTRALISED_METHODS)}"
        )
    plan = SwarmPlan(cfg, seed, load_data(cfg))
    x_train, y_train, stats = plan.robot_data(robot_id)
    x_test = plan.data.X_test[plan.eval_idx]
    if stats is not None:
        x_test = standardize_with(x_test, *stats)
    return RobotParts(
        spec=plan.spec,
        settings=plan.settings(method),
        params=plan.initial_params(robot_id),
        samples=int(plan.samples[robot_id]),
        label_dist=plan.label_dist[robot_id],
        agent_seed=int(plan.agent_seeds[robot_id]),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=plan.data.y_test[plan.eval_idx],
    )


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
