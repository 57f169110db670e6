"""``monitor_node``: collects per-round robot status, writes metrics and draws the swarm.

Listens to ``/<ns>/status`` (JSON per robot per round) and ``/<ns>/models`` (each robot's
model after the round), ``<ns>`` being the swarm namespace. A round is complete when every
robot has reported its status and, if its status says it publishes one, its model (the two
topics arrive in any order), or when a robot reports two rounds later. Complete rounds become
rows of ``metrics.csv`` (the engine's columns, so ``gossip-learning compare`` reads them) and
plots in ``output_dir``; the latest poses are published as a ``visualization_msgs/MarkerArray`` on
``/<ns>/markers``: robots coloured by cluster, heads as cubes, radio links grey and
member-to-head links in cluster colour.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, String, UInt8MultiArray
from visualization_msgs.msg import Marker, MarkerArray

from gossip_learning.errors import WireError
from gossip_learning.nodes.base import ParamNode, run_node
from gossip_learning.nodes.common import check_namespace, require
from gossip_learning.transports.ros import reliable_qos
from gossip_learning.wire import decode

PARAMETERS: dict[str, tuple[Any, str]] = {
    "swarm_namespace": ("swarm", "Namespace of the shared swarm topics."),
    "num_robots": (0, "Robots expected per round (0: decide a round when later rounds arrive)."),
    "output_dir": ("", "Folder for metrics.csv and plots; empty writes nothing."),
    "comm_range": (60.0, "Radio range used to draw links, in metres."),
    "area": ([100.0, 100.0], "Arena width and height, for the swarm maps."),
    "marker_period": (1.0, "Seconds between MarkerArray updates (0 disables them)."),
    "plot_every": (5, "Redraw plots every this many rounds and at shutdown (0: at shutdown only)."),
    "frame_id": ("world", "Frame of the markers."),
}

_PALETTE = [
    (0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
    (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5),
    (0.74, 0.74, 0.13), (0.09, 0.75, 0.81),
]  # fmt: skip


def cluster_color(cluster: int) -> ColorRGBA:
    """A stable colour per cluster id; grey-black for robots in no cluster."""
    if cluster < 0:
        return ColorRGBA(r=0.2, g=0.2, b=0.2, a=1.0)
    r, g, b = _PALETTE[cluster % len(_PALETTE)]
    return ColorRGBA(r=r, g=g, b=b, a=1.0)


def round_row(statuses: dict[int, dict[str, Any]], models: dict[int, np.ndarray]) -> dict[str, Any]:
    """One metrics row (engine column names) from the robots' statuses and models of a round."""
    sts = list(statuses.values())
    acc = np.array([s.get("acc", math.nan) for s in sts], dtype=float)
    loss = np.array([s.get("loss", math.nan) for s in sts], dtype=float)
    samples = np.array([s.get("samples", 1) for s in sts], dtype=float)
    train = np.array([s.get("train_loss", math.nan) for s in sts], dtype=float)
    clusters = [s.get("cluster", -1) for s in sts if s.get("role") in ("head", "member")]
    stacked = np.stack(list(models.values())) if models else np.zeros((0, 1))
    consensus = (
        float(np.linalg.norm(stacked - stacked.mean(axis=0), axis=1).mean())
        if len(stacked)
        else math.nan
    )
    totals = {k: sum(int(s.get("transport", {}).get(k, 0)) for s in sts) for k in
              ("sent", "bytes_sent", "delivered", "dropped", "rejected")}  # fmt: skip
    finite = np.isfinite(acc)
    return {
        "method": sts[0].get("method", "bilayer") if sts else "bilayer",
        "seed": 0,
        "round": int(sts[0]["round"]) if sts else 0,
        "robots_reporting": len(sts),
        "models_reporting": len(models),
        "acc_mean": float(acc[finite].mean()) if finite.any() else math.nan,
        "acc_min": float(acc[finite].min()) if finite.any() else math.nan,
        "acc_max": float(acc[finite].max()) if finite.any() else math.nan,
        "acc_weighted": float((acc[finite] * samples[finite]).sum() / samples[finite].sum())
        if finite.any()
        else math.nan,
        "loss_mean": float(np.nanmean(loss)) if np.isfinite(loss).any() else math.nan,
        "train_loss": float(np.nanmean(train)) if np.isfinite(train).any() else math.nan,
        "consensus_distance": consensus,
        "num_clusters": len(set(clusters)),
        "num_heads": sum(1 for s in sts if s.get("role") == "head"),
        "singletons": sum(1 for s in sts if s.get("role") not in ("head", "member")),
        "isolated": sum(1 for s in sts if s.get("neighbours", 0) == 0),
        "msgs_sent": totals["sent"],
        "bytes_sent": totals["bytes_sent"],
        "msgs_delivered": totals["delivered"],
        "msgs_dropped": totals["dropped"],
        "msgs_rejected": totals["rejected"],
    }


class MonitorNode(ParamNode):
    """Aggregates robot status into metrics rows, files and markers."""

    def __init__(self, node_name: str = "monitor", **node_options: Any) -> None:
        """``node_options``: namespace, context, parameter_overrides (see :class:`ParamNode`)."""
        super().__init__(node_name, PARAMETERS, **node_options)
        p = self.params
        ns = check_namespace(str(p["swarm_namespace"]))
        self.expected = int(require("num_robots", p["num_robots"], p["num_robots"] >= 0, ">= 0"))
        self.comm_range = float(require("comm_range", p["comm_range"], p["comm_range"] > 0, "> 0"))
        self.area = [float(v) for v in p["area"]]
        self.frame_id = str(p["frame_id"])
        self.output_dir = Path(p["output_dir"]) if p["output_dir"] else None
        self.plot_every = int(require("plot_every", p["plot_every"], p["plot_every"] >= 0, ">= 0"))
        self.statuses: dict[int, dict[int, dict[str, Any]]] = {}
        self.models: dict[int, dict[int, np.ndarray]] = {}
        self.latest: dict[int, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.bad_messages = 0
        self._newest = 0
        self.create_subscription(String, f"/{ns}/status", self._on_status, reliable_qos())
        self.create_subscription(UInt8MultiArray, f"/{ns}/models", self._on_model, reliable_qos())
        self._markers = self.create_publisher(MarkerArray, f"/{ns}/markers", 10)
        if p["marker_period"] > 0:
            self.create_timer(float(p["marker_period"]), self.publish_markers)

    def _on_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
            rid, rnd = int(status["id"]), int(status["round"])
        except (ValueError, KeyError, TypeError):
            self.bad_messages += 1
            return
        self.latest[rid] = status
        self.statuses.setdefault(rnd, {})[rid] = status
        self._newest = max(self._newest, rnd)
        self._close_rounds(self._newest)

    def _on_model(self, msg: UInt8MultiArray) -> None:
        try:
            m = decode(bytes(msg.data))
        except WireError:
            self.bad_messages += 1
            return
        if m.model is not None:
            self.models.setdefault(m.round, {})[m.sender] = m.model
            if m.round in self.statuses:
                self._close_rounds(self._newest)

    def _close_rounds(self, newest: int) -> None:
        for rnd in sorted(self.statuses):
            models = self.models.get(rnd, {})
            waiting = [
                rid
                for rid, st in self.statuses[rnd].items()
                if st.get("publishes_model") and rid not in models
            ]
            complete = (
                self.expected > 0 and len(self.statuses[rnd]) >= self.expected and not waiting
            )
            if not (complete or rnd <= newest - 2):
                continue
            statuses = self.statuses.pop(rnd)
            self.rows.append(round_row(statuses, self.models.pop(rnd, {})))
            self.snapshots.append(self._snapshot(rnd, statuses))
            self._write()

    def _snapshot(self, rnd: int, statuses: dict[int, dict[str, Any]]) -> dict[str, Any]:
        ids = sorted(statuses)
        pos = np.array([[statuses[i]["x"], statuses[i]["y"]] for i in ids], dtype=float)
        d = np.linalg.norm(pos[:, None] - pos[None], axis=2) if len(ids) else np.zeros((0, 0))
        index = {rid: k for k, rid in enumerate(ids)}
        return {
            "method": statuses[ids[0]].get("method", "bilayer"),
            "seed": 0,
            "round": rnd,
            "area": self.area,
            "comm_range": self.comm_range,
            "positions": pos.round(3).tolist(),
            "cluster": [int(statuses[i]["cluster"]) for i in ids],
            "is_head": [statuses[i]["role"] == "head" for i in ids],
            "links": [
                [a, b] for a in range(len(ids)) for b in range(a + 1, len(ids))
                if d[a, b] <= self.comm_range
            ],
            "head_links": [
                [index[i], index[statuses[i]["head"]]] for i in ids
                if statuses[i]["role"] == "member" and statuses[i]["head"] in index
            ],
        }  # fmt: skip

    def _write(self, plots: bool = False) -> None:
        if self.output_dir is None or not self.rows:
            return
        from gossip_learning.results import write_metrics_csv, write_plots

        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_metrics_csv(self.output_dir / "metrics.csv", self.rows)
        if plots or (self.plot_every and len(self.rows) % self.plot_every == 0):
            try:  # matplotlib is slow: not every round, and never fatal
                write_plots(self.output_dir, self.rows, self.snapshots[-1:])
            except Exception as exc:
                self.get_logger().warning(f"plots failed: {exc}")

    def destroy_node(self) -> None:
        """Write the final plots, then destroy the node."""
        self._write(plots=True)
        super().destroy_node()

    def marker_array(self) -> MarkerArray:
        """Robots (spheres; heads as cubes), radio links and member-to-head links."""
        stamp = self.get_clock().now().to_msg()
        out = MarkerArray()
        robots = sorted(self.latest.items())
        links = Marker(type=Marker.LINE_LIST, ns="links", id=0, action=Marker.ADD)
        heads = Marker(type=Marker.LINE_LIST, ns="head_links", id=0, action=Marker.ADD)
        for m, width, color in (
            (links, 0.15, ColorRGBA(r=0.6, g=0.6, b=0.6, a=0.4)),
            (heads, 0.4, None),
        ):
            m.header.frame_id = self.frame_id
            m.header.stamp = stamp
            m.scale.x = width
            if color is not None:
                m.color = color
        where = {rid: Point(x=float(s["x"]), y=float(s["y"]), z=0.0) for rid, s in robots}
        for rid, s in robots:
            head = s.get("role") == "head"
            mk = Marker(
                ns="robots", id=rid, action=Marker.ADD, type=Marker.CUBE if head else Marker.SPHERE
            )
            mk.header.frame_id = self.frame_id
            mk.header.stamp = stamp
            mk.pose.position = where[rid]
            mk.pose.orientation.w = 1.0
            size = 3.0 if head else 2.0
            mk.scale.x = mk.scale.y = mk.scale.z = size
            mk.color = cluster_color(int(s.get("cluster", -1)))
            out.markers.append(mk)
            if s.get("role") == "member" and s.get("head") in where:
                heads.points += [where[rid], where[s["head"]]]
                heads.colors += [mk.color, mk.color]
        for a, (ra, sa) in enumerate(robots):
            for rb, sb in robots[a + 1 :]:
                if math.hypot(sa["x"] - sb["x"], sa["y"] - sb["y"]) <= self.comm_range:
                    links.points += [where[ra], where[rb]]
        out.markers += [links, heads]
        return out

    def publish_markers(self) -> None:
        """Publish the current MarkerArray."""
        if self.latest:
            self._markers.publish(self.marker_array())


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run gossip_learning monitor_node``."""
    return run_node("monitor_node", MonitorNode, args, multi_threaded=False)
