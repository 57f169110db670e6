"""Run a swarm experiment in-process: N agents, one simulated medium, round-synchronous phases.

For each (method, seed) the same swarm is rebuilt from the seed: start positions, mobility,
data partition and initial head are identical across methods, so methods compare fairly.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gossip_learning import graph_metrics as gm
from gossip_learning.agent import AgentSettings, RobotAgent
from gossip_learning.aggregation import weighted_average
from gossip_learning.channel import Channel, make_channel
from gossip_learning.config import Config
from gossip_learning.datasets import (
    Dataset,
    fit_standardizer,
    load_dataset,
    standardize,
    standardize_with,
)
from gossip_learning.errors import ConfigError, DataError
from gossip_learning.learner import HeadSpec, TorchTrainer, evaluate, fold_standardizer, init_params
from gossip_learning.mobility import MobilityModel, make_mobility, uniform_positions
from gossip_learning.partition import dirichlet_partition, iid_partition, label_histograms
from gossip_learning.schedule import (
    CLUSTER_KINDS,
    GOSSIP_KINDS,
    PhaseKind,
    build_schedule,
    finish_slots,
)
from gossip_learning.transports.inprocess import InProcessNetwork
from gossip_learning.wire import Role

Log = Callable[[str], None]

METRIC_COLUMNS = [
    "method",
    "seed",
    "round",
    "acc_mean",
    "acc_min",
    "acc_max",
    "acc_weighted",
    "loss_mean",
    "train_loss",
    "consensus_distance",
    "num_clusters",
    "num_heads",
    "singletons",
    "isolated",
    "membership_changes",
    "head_changes",
    "msgs_sent",
    "bytes_sent",
    "msgs_delivered",
    "msgs_dropped",
    "msgs_rejected",
    "spectral_gap_comm",
    "spectral_gap_mix",
    "mix_reach",
    "gossip_contraction",
    "peak_model_buffers",
    "time_move",
    "time_cluster",
    "time_train",
    "time_gossip",
    "time_eval",
    "time_round",
]


@dataclass
class RunResult:
    """Per-round rows and map snapshots of one (method, seed) run."""

    method: str
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    label_histograms: list[list[int]] = field(default_factory=list)


def head_spec(cfg: Config, data: Dataset) -> HeadSpec:
    """The classifier head the config asks for, sized to the data."""
    return HeadSpec(cfg.learning.head, data.dim, data.num_classes, tuple(cfg.learning.hidden))


def load_data(cfg: Config) -> Dataset:
    """Load the configured dataset (with global standardisation if asked)."""
    if cfg.data.dataset == "cifar10-mcunet":
        import gossip_learning.vision  # noqa: F401  (registers the dataset)
    data = load_dataset(cfg.data.dataset, **cfg.data.params)
    return standardize(data, "global") if cfg.data.standardize == "global" else data


def partition(cfg: Config, data: Dataset, rng: np.random.Generator) -> list[np.ndarray]:
    """Split the training set across robots; errors name the config keys to change."""
    n = cfg.swarm.num_robots
    try:
        if cfg.data.partition == "iid":
            return iid_partition(len(data.y_train), n, rng, cfg.data.min_partition_size)
        return dirichlet_partition(
            data.y_train, n, cfg.data.alpha, rng, cfg.data.min_partition_size
        )
    except DataError as exc:
        key = "swarm.num_robots" if cfg.data.partition == "iid" else "data.alpha"
        raise ConfigError(key, f"{exc} (dataset '{data.name}')") from exc


def _validate_swarm(cfg: Config, data: Dataset) -> None:
    if cfg.swarm.num_robots > len(data.y_train):
        raise ConfigError(
            "swarm.num_robots",
            f"{cfg.swarm.num_robots} robots but only {len(data.y_train)} training samples in "
            f"'{data.name}': use fewer robots or a larger dataset",
        )


def _spectral_enabled(cfg: Config) -> bool:
    mode = cfg.experiment.spectral
    return mode == "always" or (mode == "auto" and cfg.swarm.num_robots <= 200)


def _mixing_matrix(agents: list[RobotAgent]) -> np.ndarray:
    n = len(agents)
    by_slot: dict[int, list[tuple[int, dict[int, float]]]] = defaultdict(list)
    for a in agents:
        for slot, row in a.mix_log:
            by_slot[slot].append((a.id, row))
    total = np.eye(n)
    for slot in sorted(by_slot):
        step = np.eye(n)
        for i, row in by_slot[slot]:
            step[i] = 0.0
            for j, w in row.items():
                step[i, j] += w
        total = step @ total
    return total


def _nanmean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else float("nan")


def channel_for(cfg: Config) -> Channel:
    """The link model the config asks for."""
    ch = cfg.channel
    return make_channel(
        ch.model, ch.comm_range, ch.loss_prob, ch.exponent, ch.shadowing_db, ch.max_range or None
    )


def mobility_for(cfg: Config, positions: np.ndarray, rng: np.random.Generator) -> MobilityModel:
    """The mobility model the config asks for, starting at ``positions``."""
    mob = cfg.mobility
    params: dict[str, Any] = {}
    if mob.model == "random_direction":
        params = {"speed": mob.speed, "turn_prob": mob.turn_prob}
    elif mob.model == "random_waypoint":
        params = {"speed_min": mob.speed_min, "speed_max": mob.speed_max, "pause": mob.pause}
    area = (cfg.swarm.area[0], cfg.swarm.area[1])
    return make_mobility(mob.model, positions, area, rng, **params)


def trainer_for(cfg: Config, spec: HeadSpec) -> TorchTrainer:
    """Local training as configured (imports torch)."""
    lc = cfg.learning
    threads = cfg.experiment.threads or None
    return TorchTrainer(
        spec, lc.lr, lc.weight_decay, lc.epochs, lc.batch_size, lc.optimizer, threads
    )


class SwarmPlan:
    """Everything a (config, seed) fixes before any robot runs: start positions, each robot's data,
    initial head, agent seed and the evaluation subset. The in-process swarm uses all of it; the
    ROS nodes take each robot's data, initial head, agent seed and evaluation subset from it, but
    not the start positions (the launch file draws its own spawn poses)."""

    def __init__(self, cfg: Config, seed: int, data: Dataset) -> None:
        _validate_swarm(cfg, data)
        self.cfg, self.seed, self.data = cfg, seed, data
        pos_ss, mob_ss, chan_ss, part_ss, agent_ss, eval_ss = np.random.SeedSequence(
            [seed, 0x6055]
        ).spawn(6)
        n = cfg.swarm.num_robots
        area = (cfg.swarm.area[0], cfg.swarm.area[1])
        self.positions = uniform_positions(n, area, np.random.default_rng(pos_ss))
        self.mobility_rng = np.random.default_rng(mob_ss)
        self.channel_rng = np.random.default_rng(chan_ss)
        self.parts = partition(cfg, data, np.random.default_rng(part_ss))
        self.label_histograms = label_histograms(data.y_train, self.parts, data.num_classes)
        self.samples = self.label_histograms.sum(axis=1)
        self.label_dist = self.label_histograms / np.maximum(self.samples[:, None], 1)
        self.spec = head_spec(cfg, data)
        self.agent_seeds = agent_ss.generate_state(n)
        k, n_test = cfg.data.eval_subset, len(data.y_test)
        erng = np.random.default_rng(eval_ss)
        self.eval_idx = (
            np.sort(erng.choice(n_test, k, replace=False)) if 0 < k < n_test else np.arange(n_test)
        )

    def settings(self, method: str) -> AgentSettings:
        """Protocol settings for ``method`` (cfl and local robots do not gossip)."""
        return AgentSettings(
            method=method if method in ("bilayer", "flat") else "local",
            clustering=self.cfg.clustering,
            gossip=self.cfg.gossip,
            comm_range=self.cfg.channel.comm_range,
            model_version=self.spec.version(),
            num_params=self.spec.num_params(),
        )

    def initial_params(self, robot_id: int) -> np.ndarray:
        """Robot ``robot_id``'s first head: the fleet-wide one, or its own."""
        lc = self.cfg.learning
        if lc.init == "shared":
            return init_params(self.spec, lc.init_seed)
        return init_params(self.spec, lc.init_seed * 100_003 + self.seed * 7919 + robot_id)

    def robot_data(
        self, robot_id: int
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Robot ``robot_id``'s training features and labels, and its own standardiser if the
        config asks for local statistics (features are returned already standardised)."""
        idx = self.parts[robot_id]
        x = self.data.X_train[idx]
        stats = None
        if self.cfg.data.standardize == "local":
            stats = fit_standardizer(x)
            x = standardize_with(x, *stats)
        return x, self.data.y_train[idx], stats


class Swarm:
    """N agents on one in-process medium, built from a config, a method and a seed."""

    def __init__(self, cfg: Config, method: str, seed: int, data: Dataset) -> None:
        plan = SwarmPlan(cfg, seed, data)
        self.plan = plan
        self.cfg, self.method, self.seed, self.data = cfg, method, seed, data
        n = cfg.swarm.num_robots
        self.positions = plan.positions
        self.mobility = mobility_for(cfg, plan.positions, plan.mobility_rng)
        self.channel = channel_for(cfg)
        self.network = InProcessNetwork(n, self.channel, plan.channel_rng)
        self.label_histograms = plan.label_histograms
        self.samples = plan.samples
        self.spec = plan.spec
        self.trainer = trainer_for(cfg, self.spec)
        self.local_stats: list[tuple[np.ndarray, np.ndarray]] = []
        settings = plan.settings(method)
        self.agents = []
        for i in range(n):
            x, y, stats = plan.robot_data(i)
            if stats is not None:
                self.local_stats.append(stats)
            self.agents.append(
                RobotAgent(
                    i,
                    settings,
                    self.network.endpoint(i),
                    plan.initial_params(i),
                    int(plan.samples[i]),
                    plan.label_dist[i],
                    int(plan.agent_seeds[i]),
                    self._updater(i, x, y),
                )
            )
        self.schedule = build_schedule(settings.method, cfg.clustering.passes, cfg.gossip)
        self.finish = finish_slots(self.schedule)
        self.eval_idx = plan.eval_idx
        self.round = 0
        self._prev_cluster = np.array([self._cluster_key(a) for a in self.agents])
        self._prev_head = np.array([a.state.role == Role.HEAD for a in self.agents])

    def _updater(
        self, i: int, x: np.ndarray, y: np.ndarray
    ) -> Callable[[np.ndarray, int], tuple[np.ndarray, float]]:
        def update(params: np.ndarray, round_no: int) -> tuple[np.ndarray, float]:
            return self.trainer.train(
                params, x, y, seed=self.seed * 1_000_003 + round_no * 10_007 + i
            )

        return update

    @staticmethod
    def _cluster_key(a: RobotAgent) -> int:
        return a.state.cluster if a.state.cluster >= 0 else -(a.id + 2)

    def evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and loss of every robot's model on the evaluation set."""
        X = self.data.X_test[self.eval_idx]
        y = self.data.y_test[self.eval_idx]
        models = np.stack([a.params for a in self.agents])
        if self.local_stats:  # each robot sees inputs through its own statistics
            models = np.stack(
                [
                    fold_standardizer(self.spec, a.params, *self.local_stats[a.id])
                    for a in self.agents
                ]
            )
        threads = self.cfg.experiment.threads or None
        acc, loss = evaluate(self.spec, models, X, y, threads=threads)
        return np.asarray(acc), np.asarray(loss)

    def step(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one round; return its metrics row and a map snapshot."""
        self.round += 1
        r = self.round
        times: dict[str, float] = defaultdict(float)
        t0 = time.perf_counter()
        self.positions = self.mobility.step(1.0) if r > 1 else self.mobility.positions.copy()
        self.network.set_positions(self.positions)
        self.network.time = float(r)
        for a in self.agents:
            a.set_position(*self.positions[a.id])
            a.begin_round(r)
        times["move"] += time.perf_counter() - t0
        before = self.network.stats.as_dict()
        rejected_before = sum(sum(a.rejected.values()) for a in self.agents)
        spread_before = 0.0
        for ph in self.schedule:
            t = time.perf_counter()
            fin = self.finish[ph.slot]
            for a in self.agents:
                a.run_phase(ph, fin)
            self.network.flush()
            cat = (
                "cluster"
                if ph.kind in CLUSTER_KINDS
                else "gossip"
                if ph.kind in GOSSIP_KINDS
                else "train"
            )
            times[cat] += time.perf_counter() - t
            if ph.kind == PhaseKind.TRAIN:
                t = time.perf_counter()
                trained = np.stack([a.params for a in self.agents])
                spread_before = gm.consensus_distance(trained)
                if self.method == "cfl":
                    avg = weighted_average(trained, self.samples)
                    for a in self.agents:
                        a.params = avg.copy()
                del trained
                times["gossip"] += time.perf_counter() - t
        t = time.perf_counter()
        acc, loss = self.evaluate()
        models = np.stack([a.params for a in self.agents])
        times["eval"] += time.perf_counter() - t
        row = self._row(acc, loss, models, before, rejected_before, times)
        spread = row["consensus_distance"]
        row["gossip_contraction"] = 1.0 - spread / spread_before if spread_before > 0 else 0.0
        row["time_round"] = time.perf_counter() - t0
        return row, self._snapshot()

    def _row(
        self,
        acc: np.ndarray,
        loss: np.ndarray,
        models: np.ndarray,
        before: dict[str, int],
        rejected_before: int,
        times: dict[str, float],
    ) -> dict[str, Any]:
        after = self.network.stats.as_dict()
        cluster = np.array([self._cluster_key(a) for a in self.agents])
        is_head = np.array([a.state.role == Role.HEAD for a in self.agents])
        moved, heads_changed = gm.cluster_churn(
            self._prev_cluster, cluster, self._prev_head, is_head
        )
        self._prev_cluster, self._prev_head = cluster, is_head
        adj = gm.adjacency(self.network.in_range())
        gap_comm = gap_mix = reach = float("nan")
        if _spectral_enabled(self.cfg):
            gap_comm = gm.comm_graph_spectral_gap(adj)
            if self.method == "cfl":
                gap_mix, reach = 1.0, 1.0
            else:
                mix = _mixing_matrix(self.agents)
                gap_mix = gm.spectral_gap(mix)
                reach = float(np.count_nonzero(mix > 1e-12)) / mix.size
        in_cluster = [a.state.cluster for a in self.agents if a.state.role != Role.NONE]
        w = self.samples / self.samples.sum()
        clustered = self.method == "bilayer"
        return {
            "method": self.method,
            "seed": self.seed,
            "round": self.round,
            "acc_mean": float(acc.mean()),
            "acc_min": float(acc.min()),
            "acc_max": float(acc.max()),
            "acc_weighted": float(w @ acc),
            "loss_mean": float(loss.mean()),
            "train_loss": _nanmean([a.train_loss for a in self.agents]),
            "consensus_distance": gm.consensus_distance(models),
            "num_clusters": len(set(in_cluster)) if clustered else 0,
            "num_heads": int(is_head.sum()),
            "singletons": sum(a.state.role == Role.NONE for a in self.agents) if clustered else 0,
            "isolated": gm.isolated_robots(adj),
            "membership_changes": moved if clustered else 0,
            "head_changes": heads_changed if clustered else 0,
            "msgs_sent": after["sent"] - before["sent"],
            "bytes_sent": after["bytes_sent"] - before["bytes_sent"],
            "msgs_delivered": after["delivered"] - before["delivered"],
            "msgs_dropped": after["dropped"] - before["dropped"],
            "msgs_rejected": after["rejected"]
            - before["rejected"]
            + sum(sum(a.rejected.values()) for a in self.agents)
            - rejected_before,
            "spectral_gap_comm": gap_comm,
            "spectral_gap_mix": gap_mix,
            "mix_reach": reach,
            "peak_model_buffers": max(a.peak_buffers for a in self.agents),
            **{
                f"time_{k}": times.get(k, 0.0)
                for k in ("move", "cluster", "train", "gossip", "eval")
            },
        }

    def _snapshot(self) -> dict[str, Any]:
        n = len(self.agents)
        adj = gm.adjacency(self.network.in_range())
        links = (
            [[int(i), int(j)] for i, j in zip(*np.nonzero(np.triu(adj)), strict=True)]
            if n <= 200
            else []
        )
        head_links = [
            [a.id, a.state.head]
            for a in self.agents
            if a.state.role == Role.MEMBER and 0 <= a.state.head < n and adj[a.id, a.state.head]
        ]
        return {
            "method": self.method,
            "seed": self.seed,
            "round": self.round,
            "area": list(self.cfg.swarm.area),
            "comm_range": self.cfg.channel.comm_range,
            "positions": self.positions.round(3).tolist(),
            "cluster": [int(a.state.cluster) for a in self.agents],
            "is_head": [a.state.role == Role.HEAD for a in self.agents],
            "links": links,
            "head_links": head_links,
        }


def run_one(
    cfg: Config, method: str, seed: int, data: Dataset, log: Log | None = None
) -> RunResult:
    """Run all rounds of one method with one seed."""
    swarm = Swarm(cfg, method, seed, data)
    result = RunResult(method, seed, label_histograms=swarm.label_histograms.tolist())
    want = {r if r > 0 else cfg.experiment.rounds + 1 + r for r in cfg.experiment.map_rounds}
    for _ in range(cfg.experiment.rounds):
        row, snap = swarm.step()
        result.rows.append(row)
        if row["round"] in want:
            result.snapshots.append(snap)
        if log is not None:
            log(format_row(row, cfg.experiment.rounds))
    return result


def format_row(row: dict[str, Any], rounds: int) -> str:
    """One progress line."""
    text = (
        f"[{row['method']:>7} seed {row['seed']}] round {row['round']:>3}/{rounds} "
        f"acc {row['acc_mean']:.3f} (min {row['acc_min']:.3f}) "
    )
    if row["method"] == "bilayer":
        churn = f"{row['membership_changes']}/{row['head_changes']}"
        text += f"clusters {row['num_clusters']:>2} churn {churn} "
    text += (
        f"msgs {row['msgs_sent']} ({row['msgs_dropped']} lost, {row['msgs_rejected']} rejected) "
        f"{row['time_round']:.2f}s"
    )
    return text
