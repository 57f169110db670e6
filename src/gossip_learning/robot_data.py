"""One robot's share of an experiment, computed in-process or read from a per-robot file.

:func:`robot_parts` cuts robot ``i``'s slice from the same :class:`~gossip_learning.plan.SwarmPlan`
as the in-process engine: its data partition (standardised as the config asks), initial head,
agent seed, label mix and the evaluation subset. That needs the whole dataset in memory.

:func:`write_robot_files` (``gossip-learning partition CONFIG --out DIR``) does it once for the
whole fleet and writes ``DIR/robot_<i>.npz`` per robot; :func:`read_robot_file` gives a robot its
parts back from its own file, loading nothing else: no dataset module, no scikit-learn, no torch.
The channel, fleet key and training engine a config asks for are built here too (the in-process
engine imports them through :mod:`gossip_learning.plan`), so a robot never imports the plan.
A file records which experiment it was cut for (seed, robot id, fleet size and a fingerprint of
the config keys that decide the data); reading it for another one is an error naming
``data_dir``. Only numpy and the standard library are imported at module level.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gossip_learning.auth import FleetAuth
from gossip_learning.channel import Channel, make_channel
from gossip_learning.config import Config
from gossip_learning.learner import HeadSpec
from gossip_learning.protocol import AgentSettings

if TYPE_CHECKING:
    from gossip_learning.learner import TorchTrainer
    from gossip_learning.learning.numpy_trainer import NumpyTrainer

#: Format version of the per-robot files.
FILE_VERSION = 1


@dataclass
class RobotParts:
    """Everything one robot needs besides its transport (protocol settings come from the
    config and ``spec``: :func:`agent_settings`)."""

    spec: HeadSpec
    train_idx: np.ndarray  # the robot's rows of the training set (the engine's partition)
    params: np.ndarray
    samples: int
    label_dist: np.ndarray
    agent_seed: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def channel_for(cfg: Config) -> Channel:
    """The link model the config asks for."""
    ch = cfg.channel
    return make_channel(
        ch.model, ch.comm_range, ch.loss_prob, ch.exponent, ch.shadowing_db, ch.max_range or None
    )


def fleet_auth(
    cfg: Config, counter_start: int = 0, robots: Iterable[int] | None = None
) -> FleetAuth | None:
    """What seals and opens frames (``defence.identity``): None for version-1 frames, the fleet
    key, or the robot keys of ``robots`` (:func:`gossip_learning.identity.frame_auth`).
    ``counter_start``: see :class:`FleetAuth` (a robot process passes
    :func:`~gossip_learning.auth.session_counter_start`)."""
    from gossip_learning.identity import frame_auth

    return frame_auth(cfg, counter_start, robots)


def trainer_for(cfg: Config, spec: HeadSpec) -> NumpyTrainer | TorchTrainer:
    """The training engine the config asks for (``learning.trainer``; torch is imported only
    for ``torch``)."""
    from gossip_learning.learner import TorchTrainer
    from gossip_learning.learning.numpy_trainer import NumpyTrainer

    lc = cfg.learning
    threads = cfg.experiment.threads or None
    engine = NumpyTrainer if lc.trainer == "numpy" else TorchTrainer
    return engine(spec, lc.lr, lc.weight_decay, lc.epochs, lc.batch_size, lc.optimizer, threads)


def robot_file(data_dir: str | os.PathLike[str], robot_id: int) -> Path:
    """Where robot ``robot_id``'s file lives in ``data_dir``."""
    return Path(data_dir) / f"robot_{robot_id}.npz"


def agent_settings(cfg: Config, spec: HeadSpec, method: str) -> AgentSettings:
    """Protocol settings for ``method`` (cfl and local robots do not gossip)."""
    return AgentSettings(
        method=method if method in ("bilayer", "flat") else "local",
        clustering=cfg.clustering,
        gossip=cfg.gossip,
        comm_range=cfg.channel.comm_range,
        model_version=spec.version(),
        num_params=spec.num_params(),
        # the distance bound compares a model with the robot's own, which assumes one shared
        # start: robots that start from their own random heads are about 1.4 norms apart
        defence=cfg.defence
        if cfg.learning.init == "shared"
        else dataclasses.replace(cfg.defence, dist_ratio=0.0),
    )


def fingerprint(cfg: Config, seed: int) -> str:
    """Hash of what decides a robot's data: the data section, fleet size, head and its
    initialisation, and the seed (not timing, channel or rounds, which the launch overrides)."""
    lc = cfg.learning
    key = {
        "data": dataclasses.asdict(cfg.data),
        "num_robots": cfg.swarm.num_robots,
        "head": [lc.head, list(lc.hidden), lc.init, lc.init_seed, lc.init_scheme],
        "seed": seed,
    }
    import hashlib  # here: imported at start-up, it loads OpenSSL before lean_imports can say no

    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def robot_parts(cfg: Config, seed: int, robot_id: int) -> RobotParts:
    """Robot ``robot_id``'s parts, cut from the in-process engine's :class:`SwarmPlan` (loads the
    whole dataset)."""
    from gossip_learning.plan import SwarmPlan, load_data

    return robot_parts_of_plan(SwarmPlan(cfg, seed, load_data(cfg)), robot_id)


def robot_parts_of_plan(plan: Any, robot_id: int) -> RobotParts:
    """Robot ``robot_id``'s parts cut from a built :class:`~gossip_learning.plan.SwarmPlan`."""
    from gossip_learning.datasets import standardize_with

    x_train, y_train, stats = plan.robot_data(robot_id)
    x_test = plan.data.X_test[plan.eval_idx]
    if stats is not None:
        x_test = standardize_with(x_test, *stats)
    return RobotParts(
        spec=plan.spec,
        train_idx=plan.parts[robot_id],
        params=plan.initial_params(robot_id),
        samples=int(plan.samples[robot_id]),
        label_dist=plan.label_dist[robot_id],
        agent_seed=int(plan.agent_seeds[robot_id]),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=plan.data.y_test[plan.eval_idx],
    )


def write_robot_files(cfg: Config, seed: int, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``robot_<i>.npz`` for every robot of ``cfg`` into ``out_dir``; return the paths."""
    from gossip_learning.atomic import write_bytes
    from gossip_learning.plan import SwarmPlan, load_data

    plan = SwarmPlan(cfg, seed, load_data(cfg))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = fingerprint(cfg, seed)
    paths = []
    for i in range(cfg.swarm.num_robots):
        p = robot_parts_of_plan(plan, i)
        meta = {
            "version": FILE_VERSION,
            "robot_id": i,
            "num_robots": cfg.swarm.num_robots,
            "seed": seed,
            "fingerprint": stamp,
            "dataset": cfg.data.dataset,
            "spec": [p.spec.kind, p.spec.in_dim, p.spec.num_classes, list(p.spec.hidden)],
            "samples": p.samples,
            "agent_seed": p.agent_seed,
        }
        path = robot_file(out, i)
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.array(json.dumps(meta)),
            train_idx=p.train_idx,
            params=p.params,
            label_dist=p.label_dist,
            x_train=p.x_train,
            y_train=p.y_train,
            x_test=p.x_test,
            y_test=p.y_test,
        )
        write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths


def read_robot_file(
    data_dir: str | os.PathLike[str], cfg: Config, seed: int, robot_id: int
) -> RobotParts:
    """Robot ``robot_id``'s parts from ``data_dir/robot_<id>.npz``; ValueError naming the
    ``data_dir`` parameter if the file is missing, unreadable or cut for another experiment."""
    path = robot_file(data_dir, robot_id)
    where = f"parameter 'data_dir': {str(data_dir)!r}"
    if not path.is_file():
        raise ValueError(
            f"{where} has no {path.name}; write the fleet's files with "
            "`gossip-learning partition CONFIG --out DIR --seed SEED`"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {k: f[k] for k in f.files if k != "meta"}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{where}: cannot read {path.name}: {exc}") from None
    if meta.get("version") != FILE_VERSION:
        version = meta.get("version")
        raise ValueError(f"{where}: {path.name} has format {version}, not {FILE_VERSION}")
    want = {
        "robot_id": robot_id,
        "num_robots": cfg.swarm.num_robots,
        "seed": seed,
        "fingerprint": fingerprint(cfg, seed),
    }
    wrong = {k: (meta.get(k), v) for k, v in want.items() if meta.get(k) != v}
    if wrong:
        what = ", ".join(f"{k} {a!r} (this robot: {b!r})" for k, (a, b) in wrong.items())
        raise ValueError(
            f"{where}: {path.name} was written for another experiment: {what}; rewrite the files "
            "with `gossip-learning partition` for this config and seed"
        )
    kind, in_dim, num_classes, hidden = meta["spec"]
    return RobotParts(
        spec=HeadSpec(kind, in_dim, num_classes, tuple(hidden)),
        train_idx=arrays["train_idx"],
        params=arrays["params"],
        samples=int(meta["samples"]),
        label_dist=arrays["label_dist"],
        agent_seed=int(meta["agent_seed"]),
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
    )
