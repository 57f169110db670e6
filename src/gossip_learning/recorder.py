"""The one recorder: robots' round reports -> a ``metrics.csv`` row and a map snapshot.

The in-process simulator and the ROS monitor both call :meth:`Recorder.row`, so the columns mean
the same in both. Inputs are per robot, aligned with ``reports``; a value a driver cannot know
(the spread of the models right after training, on ROS) is NaN.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from gossip_learning import graph_metrics as gm
from gossip_learning.messages import Layer
from gossip_learning.protocol.report import RoundReport

METRIC_COLUMNS = [
    "method", "seed", "round", "robots_reporting", "models_reporting", "acc_mean", "acc_min",
    "acc_max", "acc_weighted", "loss_mean", "train_loss", "consensus_distance", "num_clusters",
    "num_heads", "headless_clusters", "singletons", "isolated", "membership_changes",
    "head_changes", "msgs_sent", "bytes_sent", "msgs_delivered", "msgs_dropped", "msgs_rejected",
    "spectral_gap_comm", "spectral_gap_mix", "mix_reach", "gossip_contraction", "pairs_matched",
    "pairs_matched_inter", "agent_buffer_bytes", "agent_buffers", "time_move", "time_cluster",
    "time_train", "time_gossip", "time_eval", "time_round", "rejected_by", "transport_rejected_by",
    "robots_down", "rogue_frames",
]  # fmt: skip
TRAFFIC = ("sent", "bytes_sent", "delivered", "dropped", "rejected")
#: DDS events a ROS transport counts (``RosTransport``: message lost, incompatible QoS); a run
#: whose medium reports none of them (the in-process engine, swarm_node) has NaN in their columns.
DDS_EVENTS = ("lost", "qos_incompatible")


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else math.nan


def matched_share(reports: Sequence[RoundReport], layer: Layer) -> float:
    """Share of robots that completed an exchange in a ``layer`` gossip step, among those with
    an eligible partner in range, over the round's steps of that layer (NaN if none had one)."""
    tried = done = 0
    for r in reports:
        for lay, had_partner, completed in r.exchanges:
            if lay == layer and had_partner:
                tried += 1
                done += completed
    return done / tried if tried else math.nan


def headless_clusters(reports: Sequence[RoundReport]) -> int:
    """Clusters that some robot is a member of but no robot heads (such a cluster cannot hand a
    model to its members or gossip between clusters through a head)."""
    member_of = {r.cluster for r in reports if r.role == "member"}
    headed = {r.cluster for r in reports if r.role == "head"}
    return len(member_of - headed)


def mixing_matrix(reports: Sequence[RoundReport]) -> np.ndarray:
    """The round's mixing matrix: product over steps of each robot's merge weights."""
    index = {r.id: k for k, r in enumerate(reports)}
    n = len(reports)
    by_slot: dict[int, list[tuple[int, dict[int, float]]]] = defaultdict(list)
    for r in reports:
        for slot, row in r.mix:
            by_slot[slot].append((index[r.id], row))
    total = np.eye(n)
    for slot in sorted(by_slot):
        step = np.eye(n)
        for i, row in by_slot[slot]:
            step[i] = 0.0
            for j, w in row.items():
                if j in index:
                    step[i, index[j]] += w
        total = step @ total
    return total


def _sum_reasons(reports: Sequence[RoundReport]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for r in reports:
        for k, v in r.rejected.items():
            total[k] += v
    return dict(total)


class Recorder:
    """Turns each round's reports into a metrics row; remembers membership to count churn."""

    def __init__(self, method: str, seed: int, spectral: bool = True) -> None:
        self.method = method
        self.seed = seed
        self.spectral = spectral
        self._cluster: dict[int, int] = {}
        self._head: dict[int, bool] = {}
        self._rejected: dict[int, int] = {}
        self._reasons: dict[str, int] = {}  # robots' refusals by reason, summed, so far

    @staticmethod
    def _key(r: RoundReport) -> int:
        return r.cluster if r.cluster >= 0 else -(r.id + 2)

    def _churn(self, reports: Sequence[RoundReport]) -> tuple[int, int]:
        ids = [r.id for r in reports]
        prev_c = np.array([self._cluster.get(i, -(i + 2)) for i in ids])
        prev_h = np.array([self._head.get(i, False) for i in ids])
        cur_c = np.array([self._key(r) for r in reports])
        cur_h = np.array([r.role == "head" for r in reports])
        moved, changed = gm.cluster_churn(prev_c, cur_c, prev_h, cur_h)
        self._cluster.update(zip(ids, cur_c.tolist(), strict=True))
        self._head.update(zip(ids, cur_h.tolist(), strict=True))
        return moved, changed

    def start(self, reports: Sequence[RoundReport]) -> None:
        """Remember the state before round 1 (so round 1 counts only its own changes)."""
        self._churn(reports)
        self._rejected = {r.id: sum(r.rejected.values()) for r in reports}
        self._reasons = _sum_reasons(reports)

    def row(
        self,
        reports: Sequence[RoundReport],
        acc: np.ndarray,
        loss: np.ndarray,
        models: np.ndarray | None,
        in_range: np.ndarray,
        traffic: dict[str, int],
        spread_before: float = math.nan,
        times: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """One metrics row for the round the ``reports`` describe."""
        acc, loss = np.asarray(acc, dtype=float), np.asarray(loss, dtype=float)
        samples = np.array([r.samples for r in reports], dtype=float)
        ok = np.isfinite(acc)
        clustered = self.method == "bilayer"
        moved, heads_changed = self._churn(reports)
        adj = gm.adjacency(in_range)
        gap_comm = gap_mix = reach = math.nan
        if self.spectral and len(reports):
            gap_comm = gm.comm_graph_spectral_gap(adj)
            if self.method == "cfl":
                gap_mix, reach = 1.0, 1.0
            else:
                mix = mixing_matrix(reports)
                gap_mix = gm.spectral_gap(mix)
                reach = float(np.count_nonzero(mix > 1e-12)) / mix.size
        spread = gm.consensus_distance(models) if models is not None and len(models) else math.nan
        peak = max((r.peak_bytes for r in reports), default=0)
        model_bytes = max((r.model_bytes for r in reports), default=0)
        in_cluster = {r.cluster for r in reports if r.role != "none"}
        refused = 0  # messages the robots' inboxes refused this round (transports count theirs)
        for r in reports:
            total = sum(r.rejected.values())
            refused += total - self._rejected.get(r.id, 0)
            self._rejected[r.id] = total
        traffic = {**traffic, "rejected": traffic.get("rejected", 0) + refused}
        reasons = _sum_reasons(reports)
        by_reason = ";".join(
            f"{k}={v - self._reasons.get(k, 0)}"
            for k, v in sorted(reasons.items())
            if v > self._reasons.get(k, 0)
        )
        self._reasons = reasons
        return {
            "method": self.method,
            "seed": self.seed,
            "round": reports[0].round if reports else 0,
            "robots_reporting": len(reports),
            "models_reporting": 0 if models is None else len(models),
            "acc_mean": float(acc[ok].mean()) if ok.any() else math.nan,
            "acc_min": float(acc[ok].min()) if ok.any() else math.nan,
            "acc_max": float(acc[ok].max()) if ok.any() else math.nan,
            "acc_weighted": float(acc[ok] @ samples[ok] / samples[ok].sum())
            if ok.any()
            else math.nan,
            "loss_mean": _nanmean(list(loss)),
            "train_loss": _nanmean([r.train_loss for r in reports]),
            "consensus_distance": spread,
            "num_clusters": len(in_cluster) if clustered else 0,
            "num_heads": sum(r.role == "head" for r in reports),
            "headless_clusters": headless_clusters(reports) if clustered else 0,
            "singletons": sum(r.role == "none" for r in reports) if clustered else 0,
            "isolated": gm.isolated_robots(adj),
            "membership_changes": moved if clustered else 0,
            "head_changes": heads_changed if clustered else 0,
            **{("msgs_" + k if k != "bytes_sent" else k): int(traffic.get(k, 0)) for k in TRAFFIC},
            **{f"dds_{k}": traffic.get(k, math.nan) for k in DDS_EVENTS},
            "spectral_gap_comm": gap_comm,
            "spectral_gap_mix": gap_mix,
            "mix_reach": reach,
            "gossip_contraction": 1.0 - spread / spread_before
            if spread_before > 0 and math.isfinite(spread)
            else (0.0 if spread_before == 0 else math.nan),
            "pairs_matched": matched_share(reports, Layer.INTRA),
            "pairs_matched_inter": matched_share(reports, Layer.INTER),
            "agent_buffer_bytes": peak,
            "agent_buffers": peak / model_bytes if model_bytes else math.nan,
            **{f"time_{k}": math.nan if times is None else times.get(k, 0.0) for k in
               ("move", "cluster", "train", "gossip", "eval", "round")},  # None: not known
            "rejected_by": by_reason,
        }  # fmt: skip

    def snapshot(
        self,
        reports: Sequence[RoundReport],
        in_range: np.ndarray,
        area: Sequence[float],
        comm_range: float,
    ) -> dict[str, Any]:
        """The swarm map of this round: positions, clusters, heads, radio and head links."""
        n = len(reports)
        index = {r.id: k for k, r in enumerate(reports)}
        adj = gm.adjacency(in_range)
        links = (
            [[int(i), int(j)] for i, j in zip(*np.nonzero(np.triu(adj)), strict=True)]
            if n <= 200
            else []
        )
        head_links = [
            [index[r.id], index[r.head]]
            for r in reports
            if r.role == "member" and r.head in index and adj[index[r.id], index[r.head]]
        ]
        return {
            "method": self.method,
            "seed": self.seed,
            "round": reports[0].round if reports else 0,
            "area": list(area),
            "comm_range": comm_range,
            "positions": [[round(r.x, 3), round(r.y, 3)] for r in reports],
            "cluster": [int(r.cluster) for r in reports],
            "is_head": [r.role == "head" for r in reports],
            "links": links,
            "head_links": head_links,
        }
