"""Run a swarm experiment in-process: N agents, one simulated medium, one round driver.

For each (method, seed) the same swarm is rebuilt from the seed (:class:`~.plan.SwarmPlan`):
start positions, mobility, data partition and initial head are identical across methods, so
methods compare fairly. Rows come from the shared :class:`~.recorder.Recorder`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gossip_learning import graph_metrics as gm
from gossip_learning.auth import FleetAuth, read_secret
from gossip_learning.baselines import CflServer
from gossip_learning.channel import GilbertElliott
from gossip_learning.config import Config
from gossip_learning.datasets import Dataset
from gossip_learning.driver import RoundDriver
from gossip_learning.faults import FaultPlan, Rogue, RoundFaults
from gossip_learning.identity import insider
from gossip_learning.identity import mode as identity_mode
from gossip_learning.learner import evaluate, fold_standardizer
from gossip_learning.matching import OracleMatchmaker
from gossip_learning.messages import Message
from gossip_learning.plan import (
    SwarmPlan,
    channel_for,
    fleet_auth,
    load_data,
    mobility_for,
    trainer_for,
)
from gossip_learning.protocol import RobotAgent
from gossip_learning.protocol.ports import Trainer
from gossip_learning.protocol.window import Accumulator
from gossip_learning.recorder import METRIC_COLUMNS, Recorder
from gossip_learning.schedule import Phase, PhaseKind, build_schedule
from gossip_learning.training import BatchedTrainer
from gossip_learning.transports.inprocess import InProcessNetwork
from gossip_learning.wire import encode

Log = Callable[[str], None]

__all__ = ["METRIC_COLUMNS", "RunResult", "Swarm", "format_row", "load_data", "run_one"]


@dataclass
class RunResult:
    """Per-round rows and map snapshots of one (method, seed) run."""

    method: str
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    label_histograms: list[list[int]] = field(default_factory=list)


def _spectral_enabled(cfg: Config) -> bool:
    mode = cfg.experiment.spectral
    return mode == "always" or (mode == "auto" and cfg.swarm.num_robots <= 200)


class Swarm:
    """N agents on one in-process medium, built from a config, a method and a seed."""

    def __init__(
        self,
        cfg: Config,
        method: str,
        seed: int,
        data: Dataset,
        trainers: Mapping[int, Trainer] | None = None,
        accumulators: Mapping[int, Accumulator] | None = None,
    ) -> None:
        """``trainers`` / ``accumulators``: robots (by id) that train / merge elsewhere than the
        batched numpy trainer and the in-process accumulator, e.g. on an RP2040 coprocessor."""
        plan = SwarmPlan(cfg, seed, data)
        self.plan = plan
        self.cfg, self.method, self.seed, self.data = cfg, method, seed, data
        n = cfg.swarm.num_robots
        self.n = n
        self.positions = plan.positions
        self.mobility = mobility_for(cfg, plan.positions, plan.mobility_rng)
        fc = cfg.faults
        fault_ss, rogue_ss, burst_ss = np.random.SeedSequence([seed, 0xFA17]).spawn(3)
        oracle = OracleMatchmaker(  # gossip.matching oracle: a central matching of running robots
            lambda: [a for a in self.driver.agents if isinstance(a, RobotAgent)],
            np.random.default_rng(np.random.SeedSequence([seed, 0x0AC1E])),
        )
        auth = fleet_auth(cfg, robots=range(n))
        self.network = InProcessNetwork(n + fc.rogues, channel_for(cfg), plan.channel_rng, auth)
        if fc.burst_enter > 0:
            self.network.burst = GilbertElliott(
                n + fc.rogues, fc.burst_enter, fc.burst_leave, fc.burst_loss
            )
            self.network.burst_rng = np.random.default_rng(burst_ss)
        self.faults = FaultPlan(fc, n, np.random.default_rng(fault_ss))
        self._faulty = bool(fc.crash_prob or fc.offline_fraction or fc.partition_rounds)
        self.label_histograms = plan.label_histograms
        self.samples = plan.samples
        self.spec = plan.spec
        robot_data = [plan.robot_data(i) for i in range(n)]
        self.local_stats = [st for _, _, st in robot_data if st is not None]
        self.trainer = BatchedTrainer(
            trainer_for(cfg, self.spec), [(x, y) for x, y, _ in robot_data], seed
        )
        settings = plan.settings(method)
        self.agents = [
            RobotAgent(
                i, settings, self.network.endpoint(i), plan.initial_params(i),
                int(plan.samples[i]), plan.label_dist[i], int(plan.agent_seeds[i]),
                (trainers or {}).get(i) or self.trainer.port(i), (accumulators or {}).get(i),
                oracle,
            )
            for i in range(n)
        ]  # fmt: skip
        rogue_rng = np.random.default_rng(rogue_ss)
        area = np.asarray(cfg.swarm.area, dtype=np.float64)
        self.rogue_positions = rogue_rng.uniform(0.25, 0.75, (fc.rogues, 2)) * area
        self.rogues = [
            Rogue(n + k, fc.rogue_attack, self.network, settings.num_params,
                  settings.model_version, rogue_rng, _rogue_encoder(cfg, n + k))
            for k in range(fc.rogues)
        ]  # fmt: skip
        self.server = CflServer(self.samples) if method == "cfl" else None
        self.driver = RoundDriver(
            self.agents,
            build_schedule(settings.method, cfg.clustering.passes, cfg.gossip),
            deliver=self.network.flush,
            after={PhaseKind.TRAIN: self._after_training},
        )
        self.recorder = Recorder(method, seed, _spectral_enabled(cfg))
        self.recorder.start([a.report() for a in self.agents])
        self.eval_idx = plan.eval_idx
        self.round = 0
        self._spread_before = float("nan")

    def _after_training(self, phase: Phase) -> None:
        for a in self.agents:
            a.settle_training()
        trained = np.stack([a.model for a in self.agents])
        self._spread_before = gm.consensus_distance(trained)
        if self.server is not None:
            self.server.aggregate(self.agents, trained)

    def _apply_faults(self, r: int) -> np.ndarray:
        """Draw round ``r``'s faults and set the medium (positions, cut links) and the robots
        that run this round; return which robots are down."""
        n = self.n
        faults = self.faults.round(r) if self._faulty else RoundFaults(np.zeros(n, dtype=bool))
        if self.cfg.faults.rejoin == "reset":
            for i in faults.rejoined:
                self.agents[i].adopt(self.plan.initial_params(i), reboot=True)
        positions = np.vstack([self.positions, self.rogue_positions])
        cut = None
        if self._faulty:
            down = np.concatenate([faults.down, np.zeros(len(self.rogues), dtype=bool)])
            cut = FaultPlan.cut(down, positions, self.cfg.swarm.area[0], faults.partitioned)
        self.network.set_positions(positions, cut)
        self.driver.agents = [*self.rogues, *(a for a in self.agents if not faults.down[a.id])]  # type: ignore[list-item]
        for a in self.agents:
            if faults.down[a.id]:
                a.begin_round(r)  # off: no phases, but its round number moves on
        return faults.down

    def evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and loss of every robot's model on the evaluation set."""
        X = self.data.X_test[self.eval_idx]
        y = self.data.y_test[self.eval_idx]
        models = np.stack([a.model for a in self.agents])
        if self.local_stats:  # each robot sees inputs through its own statistics
            models = np.stack(
                [
                    fold_standardizer(self.spec, a.model, *self.local_stats[a.id])
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
        t0 = time.perf_counter()
        self.positions = self.mobility.step(1.0) if r > 1 else self.mobility.positions.copy()
        down = self._apply_faults(r)
        self.network.time = float(r)
        for a in self.agents:
            a.set_position(*self.positions[a.id])
        t_move = time.perf_counter() - t0
        before = self.network.stats.as_dict()
        rogue_before = sum(rg.sent for rg in self.rogues)
        wire_before = dict(self.network.stats.reasons)
        self.driver.run_round(r)
        t = time.perf_counter()
        acc, loss = self.evaluate()
        models = np.stack([a.model for a in self.agents])
        t_eval = time.perf_counter() - t
        after = self.network.stats.as_dict()
        reports = [a.report() for a in self.agents]
        in_range = self.network.in_range()[: self.n, : self.n]
        times = {**self.driver.times, "move": t_move, "eval": t_eval}
        times["round"] = time.perf_counter() - t0
        row = self.recorder.row(
            reports, acc, loss, models, in_range,
            {k: after[k] - before[k] for k in after}, self._spread_before, times,
        )  # fmt: skip
        row["robots_down"] = int(down.sum())
        row["rogue_frames"] = sum(rg.sent for rg in self.rogues) - rogue_before
        row["transport_rejected_by"] = _delta(self.network.stats.reasons, wire_before)
        snap = self.recorder.snapshot(
            reports, in_range, self.cfg.swarm.area, self.cfg.channel.comm_range
        )
        return row, snap


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


def _rogue_encoder(cfg: Config, rogue: int) -> Callable[[Message], bytes]:
    """How a rogue makes frames: unauthenticated, (a foreign fleet's robot, when this fleet
    has a key) sealed with another fleet's key and id, (robot keys, and ``defence.robot_keys``
    holds the rogue's own key: an insider) signed with its own key whatever id it claims, or (an
    ``insider*`` attack with a fleet key) sealed with the fleet key, which every robot holds."""
    d = cfg.defence
    own = insider(cfg, rogue)
    if own is not None:
        return lambda msg: own.seal_as(encode(msg), rogue)
    if cfg.faults.rogue_attack.startswith("insider") and identity_mode(cfg) == "fleet_key":
        fleet = FleetAuth(read_secret(d.fleet_key), d.fleet_id, d.replay_window)
        return lambda msg: encode(msg, fleet)
    if cfg.faults.rogue_attack == "foreign_fleet" and d.fleet_key:
        secret = read_secret(d.fleet_key) + b"/other fleet"
        other = FleetAuth(secret, (d.fleet_id + 1) % (1 << 32), d.replay_window)
        return lambda msg: encode(msg, other)
    return encode


def _delta(now: dict[str, int], before: dict[str, int]) -> str:
    """``reason=count;...`` of the counts that grew since ``before``."""
    grown = {k: v - before.get(k, 0) for k, v in sorted(now.items())}
    return ";".join(f"{k}={v}" for k, v in grown.items() if v)


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
