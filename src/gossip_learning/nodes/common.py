"""What the ROS nodes share: one robot's slice of an experiment, and checked node parameters.

:func:`robot_parts` derives robot ``i``'s data partition, initial head, agent seed and
evaluation subset from (config, seed) exactly as the in-process :class:`~gossip_learning.
experiment.Swarm` does, so a ROS swarm and an in-process run of the same config and seed start
from the same state. No rclpy import here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from gossip_learning.agent import AgentSettings
from gossip_learning.config import Config
from gossip_learning.datasets import fit_standardizer, standardize_with
from gossip_learning.experiment import head_spec, load_data, partition
from gossip_learning.learner import HeadSpec, init_params
from gossip_learning.partition import label_histograms
from gossip_learning.schedule import Phase, PhaseKind

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
    """Robot ``robot_id``'s slice of the experiment (same derivation as the in-process Swarm)."""
    n = cfg.swarm.num_robots
    if not 0 <= robot_id < n:
        raise ValueError(f"parameter 'robot_id': {robot_id} is outside 0..{n - 1} (num_robots={n})")
    if method not in DECENTRALISED_METHODS:
        raise ValueError(
            f"parameter 'method': {method!r} cannot run on robots; "
            f"allowed: {', '.join(DECENTRALISED_METHODS)}"
        )
    data = load_data(cfg)
    ss = np.random.SeedSequence([seed, 0x6055])
    _pos, _mob, _chan, part_ss, agent_ss, eval_ss = ss.spawn(6)
    parts = partition(cfg, data, np.random.default_rng(part_ss))
    hist = label_histograms(data.y_train, parts, data.num_classes)
    samples = hist.sum(axis=1)
    spec = head_spec(cfg, data)
    lc = cfg.learning
    init_seed = (
        lc.init_seed if lc.init == "shared" else lc.init_seed * 100_003 + seed * 7919 + robot_id
    )
    idx = parts[robot_id]
    x_train = data.X_train[idx]
    x_test = data.X_test
    if cfg.data.standardize == "local":
        mean, std = fit_standardizer(x_train)
        x_train = standardize_with(x_train, mean, std)
        x_test = standardize_with(x_test, mean, std)
    k, n_test = cfg.data.eval_subset, len(data.y_test)
    erng = np.random.default_rng(eval_ss)
    eval_idx = (
        np.sort(erng.choice(n_test, k, replace=False)) if 0 < k < n_test else np.arange(n_test)
    )
    settings = AgentSettings(
        method=method,
        clustering=cfg.clustering,
        gossip=cfg.gossip,
        comm_range=cfg.channel.comm_range,
        model_version=spec.version(),
        num_params=spec.num_params(),
    )
    return RobotParts(
        spec=spec,
        settings=settings,
        params=init_params(spec, init_seed),
        samples=int(samples[robot_id]),
        label_dist=hist[robot_id] / max(int(samples[robot_id]), 1),
        agent_seed=int(agent_ss.generate_state(n)[robot_id]),
        x_train=x_train,
        y_train=data.y_train[idx],
        x_test=x_test[eval_idx],
        y_test=data.y_test[eval_idx],
    )


def finish_slots(schedule: list[Phase]) -> list[int]:
    """For each slot, the slot of the FINISH (or HEAD_FINISH/END) that closes its step."""
    out = [-1] * len(schedule)
    pending: list[int] = []
    for ph in schedule:
        pending.append(ph.slot)
        if ph.kind in (PhaseKind.FINISH, PhaseKind.HEAD_FINISH, PhaseKind.END):
            for s in pending:
                out[s] = ph.slot
            pending = []
    return out


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
