"""``monitor_node``: collects per-round robot reports, writes metrics and draws the swarm.

Listens to ``/<ns>/status`` (each robot's round report as JSON) and ``/<ns>/models`` (each
robot's model after the round), ``<ns>`` being the swarm namespace. A round is complete when
every robot has reported its status and, if its status says it publishes one, its model (the two
topics arrive in any order). It closes then, or ``close_after_s`` after its first report, or
when a robot reports two rounds later, or at shutdown (Ctrl-C included: :meth:`flush`), with the
robots that reported: those that did not are named in a warning and in ``missing.csv`` (round,
expected, reporting, missing ids). Rounds close in order, one row each, and ``metrics.csv`` is
rewritten (atomically) as each closes: a report for a round already written is counted in
``late_reports`` and dropped (its robot joined late or fell behind). Closed rounds go through
the same :class:`~gossip_learning.recorder.Recorder` as the in-process simulator, so
``metrics.csv`` has the same columns with the same meaning. What a ROS run cannot know stays
NaN: ``gossip_contraction`` (the models right after training are not published) and the phase
timings; ``dds_lost`` and ``dds_qos_incompatible`` sum the DDS events robot_node counts; links
are unit-disk at ``comm_range`` from the reported poses. The latest poses are published as a
``visualization_msgs/MarkerArray`` on ``/<ns>/markers``: robots coloured by cluster, heads as
cubes, radio links grey and member-to-head links in cluster colour.

A lifecycle node like the robots: *configure* subscribes to the two topics and creates the marker
publisher, *activate* starts the marker timer; with ``autostart`` (the default) it does both at
start-up. Matplotlib is imported only when plots are drawn.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, String, UInt8MultiArray
from visualization_msgs.msg import Marker, MarkerArray

from gossip_learning.errors import WireError
from gossip_learning.nodes.base import ManagedNode, run_node
from gossip_learning.nodes.common import check_namespace, require
from gossip_learning.protocol.report import RoundReport
from gossip_learning.recorder import DDS_EVENTS, TRAFFIC, Recorder
from gossip_learning.transports.ros import RELIABLE_QOS_DEPTH, reliable_qos
from gossip_learning.wire import decode

PARAMETERS: dict[str, tuple[Any, str]] = {
    "swarm_namespace": ("swarm", "Namespace of the shared swarm topics."),
    "num_robots": (0, "Robots expected per round (0: decide a round when later rounds arrive)."),
    "output_dir": ("", "Folder for metrics.csv and plots; empty writes nothing."),
    "comm_range": (60.0, "Radio range used to draw links, in metres."),
    "area": ([100.0, 100.0], "Arena width and height, for the swarm maps."),
    "marker_period": (1.0, "Seconds between MarkerArray updates (0 disables them)."),
    "plot_every": (5, "Redraw plots every this many rounds and at shutdown (0: at shutdown only)."),
    "frame_id": ("world", "Frame of the markers (the robots' swarm_frame)."),
    "close_after_s": (
        10.0,
        "Seconds (ROS time) after a round's first report that it closes with the robots that "
        "reported (the others are marked missing); 0: wait for all, or two later rounds.",
    ),
    "rounds": (
        0,
        "Last round of the swarm: once its row is written the monitor exits by itself "
        "(0: it runs until shut down).",
    ),
}

#: Rounds of reports (a status and a model per robot) the monitor's subscriptions keep while it
#: is busy: drawing the plots of 60 robots took longer than a round on two loaded cores, and a
#: keep-last history of 64 dropped the reports of three whole rounds (60 robots, issue 18).
ROUNDS_KEPT = 4

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


def _preload_plotting() -> None:
    """Import what :meth:`MonitorNode._write` needs (matplotlib takes seconds on a busy host)."""
    with contextlib.suppress(Exception):
        importlib.import_module("gossip_learning.results")
        importlib.import_module("gossip_learning.plots")


def round_inputs(
    statuses: dict[int, dict[str, Any]],
    models: dict[int, np.ndarray],
    comm_range: float,
    last_traffic: dict[int, dict[str, int]],
) -> tuple[list[RoundReport], dict[str, Any]]:
    """The recorder's inputs from one round's robot statuses (JSON) and models: the reports,
    sorted by robot id, and the keyword arguments of :meth:`Recorder.row`. ``last_traffic``
    (each robot's cumulative transport counters at its previous report) is updated."""
    ids = sorted(statuses)
    reports = [RoundReport.from_dict(statuses[i]) for i in ids]
    pos = np.array([[r.x, r.y] for r in reports], dtype=float).reshape(-1, 2)
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    in_range = dist <= comm_range
    np.fill_diagonal(in_range, False)
    counted = {k for i in ids for k in statuses[i].get("transport", {})}
    keys = [*TRAFFIC, *(k for k in DDS_EVENTS if k in counted)]  # DDS events: robot_node's only
    traffic = dict.fromkeys(keys, 0)
    for i in ids:
        now = {k: int(statuses[i].get("transport", {}).get(k, 0)) for k in keys}
        before = last_traffic.get(i, {})
        for k in keys:
            traffic[k] += now[k] - before.get(k, 0)
        last_traffic[i] = now
    have = [i for i in ids if i in models]
    return reports, {
        "acc": np.array([statuses[i].get("acc", math.nan) for i in ids], dtype=float),
        "loss": np.array([statuses[i].get("loss", math.nan) for i in ids], dtype=float),
        "models": np.stack([models[i] for i in have]) if have else None,
        "in_range": in_range,
        "traffic": traffic,
    }


class MonitorNode(ManagedNode):
    """Aggregates robot status into metrics rows, files and markers."""

    def __init__(self, node_name: str = "monitor", **node_options: Any) -> None:
        """``node_options``: namespace, context, parameter_overrides (see :class:`ManagedNode`)."""
        super().__init__(node_name, PARAMETERS, **node_options)
        p = self.params
        self.ns = check_namespace(str(p["swarm_namespace"]))
        self.expected = int(require("num_robots", p["num_robots"], p["num_robots"] >= 0, ">= 0"))
        self.comm_range = float(require("comm_range", p["comm_range"], p["comm_range"] > 0, "> 0"))
        self.area = [float(v) for v in p["area"]]
        self.frame_id = str(p["frame_id"])
        self.output_dir = Path(p["output_dir"]) if p["output_dir"] else None
        self.plot_every = int(require("plot_every", p["plot_every"], p["plot_every"] >= 0, ">= 0"))
        self.rounds = int(require("rounds", p["rounds"], p["rounds"] >= 0, ">= 0"))
        self._plotted = 0  # rows in the plots drawn last
        self.statuses: dict[int, dict[int, dict[str, Any]]] = {}
        self.models: dict[int, dict[int, np.ndarray]] = {}
        self.latest: dict[int, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.bad_messages = 0
        self.recorder: Recorder | None = None  # made from the first status (method, seed)
        self.initial: dict[int, RoundReport] = {}
        self._traffic: dict[int, dict[str, int]] = {}
        self._newest = 0
        self._closed = 0  # rounds 1.._closed are written; a report for one of them is late
        self.late_reports = 0
        self.close_after_s = float(
            require("close_after_s", p["close_after_s"], p["close_after_s"] >= 0, ">= 0")
        )
        self._opened: dict[int, float] = {}  # round -> ROS time of its first report
        self.missing: list[tuple[int, list[int]]] = []  # (round, robots that did not report)
        self._flushed = False
        self._entities: list[Any] = []
        if self.output_dir is not None:
            self.get_logger().info(f"writing metrics to {self.output_dir.resolve()}")
        self.autostart()

    def configure(self) -> None:
        """Subscribe to statuses and models; create the marker publisher; load the plotting
        code in the background (so the plots at shutdown, Ctrl-C included, are quick)."""
        if self.output_dir is not None:
            threading.Thread(target=_preload_plotting, name="preload", daemon=True).start()
        ns, qos = self.ns, reliable_qos(max(RELIABLE_QOS_DEPTH, ROUNDS_KEPT * self.expected))
        self._entities = [
            self.create_subscription(String, f"/{ns}/status", self._on_status, qos),
            self.create_subscription(UInt8MultiArray, f"/{ns}/models", self._on_model, qos),
        ]
        self._markers = self.create_lifecycle_publisher(MarkerArray, f"/{ns}/markers", 10)

    def activate(self) -> None:
        """Start the marker timer (it also closes rounds past ``close_after_s``)."""
        period = float(self.params["marker_period"]) or 1.0
        self._timer = self.create_timer(min(period, 1.0), self._on_timer)

    def _on_timer(self) -> None:
        if self.statuses:
            self._close_rounds(self._newest)
        if self.params["marker_period"] > 0:
            self.publish_markers()

    def cleanup(self) -> None:
        """Unsubscribe and drop the marker publisher (rows kept so far stay)."""
        self.deactivate()
        for sub in self._entities:
            self.destroy_subscription(sub)
        self._entities = []
        if getattr(self, "_markers", None) is not None:
            self.destroy_lifecycle_publisher(self._markers)
            self._markers = None

    def _on_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
            rid, rnd = int(status["id"]), int(status["round"])
            RoundReport.from_dict(status)  # reject a malformed status before it is kept
        except (ValueError, KeyError, TypeError, AttributeError):
            self.bad_messages += 1
            return
        self.latest[rid] = status
        if rnd == 0:  # the state a robot starts from: churn of round 1 counts from it
            self.initial[rid] = RoundReport.from_dict(status)
            return
        if rnd <= self._closed:  # its round's row is written: rows stay in order, one per round
            self.late_reports += 1
            return
        self.statuses.setdefault(rnd, {})[rid] = status
        self._opened.setdefault(rnd, self._now())
        self._newest = max(self._newest, rnd)
        self._close_rounds(self._newest)

    def _on_model(self, msg: UInt8MultiArray) -> None:
        try:
            m = decode(bytes(msg.data))
        except WireError:
            self.bad_messages += 1
            return
        if m.model is not None and m.round > self._closed:
            self.models.setdefault(m.round, {})[m.sender] = m.model
            if m.round in self.statuses:
                self._close_rounds(self._newest)

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _overdue(self, rnd: int) -> bool:
        opened = self._opened.get(rnd)
        return (
            self.close_after_s > 0
            and opened is not None
            and self._now() - opened >= self.close_after_s
        )

    def flush(self) -> None:
        """Close every open round with the robots that reported, write the files and the plots
        (at shutdown, Ctrl-C included; once)."""
        if self._flushed:
            return
        self._flushed = True
        if self.statuses:
            self._close_rounds(self._newest, force=True)
        self._write(plots=True)

    def _close_rounds(self, newest: int, force: bool = False) -> None:
        for rnd in sorted(self.statuses):
            models = self.models.get(rnd, {})
            waiting = [  # statuses and models come on two topics, in any order
                rid
                for rid, st in self.statuses[rnd].items()
                if st.get("publishes_model") and rid not in models
            ]
            complete = (
                self.expected > 0 and len(self.statuses[rnd]) >= self.expected and not waiting
            )
            if not (complete or force or rnd <= newest - 2 or self._overdue(rnd)):
                break  # rounds close in order: a later one waits for this one
            statuses = self.statuses.pop(rnd)
            self._opened.pop(rnd, None)
            self._closed = rnd
            self._mark_missing(rnd, statuses)
            first = statuses[min(statuses)]
            if self.recorder is None:
                method, seed = str(first.get("method", "bilayer")), int(first.get("seed", 0))
                self.recorder = Recorder(method, seed, spectral=len(statuses) <= 200)
                self.recorder.start([self.initial[i] for i in sorted(self.initial)])
            reports, inputs = round_inputs(
                statuses, self.models.pop(rnd, {}), self.comm_range, self._traffic
            )
            self.rows.append(self.recorder.row(reports, **inputs))
            self.snapshots.append(
                self.recorder.snapshot(reports, inputs["in_range"], self.area, self.comm_range)
            )
            self._write()
            if self.rounds and rnd >= self.rounds:
                self.done = True  # the swarm's last round is written: exit by itself

    def _mark_missing(self, rnd: int, statuses: dict[int, dict[str, Any]]) -> None:
        if self.expected <= 0:
            return
        missing = [i for i in range(self.expected) if i not in statuses]
        self.missing.append((rnd, missing))
        if missing:
            names = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            self.get_logger().warning(
                f"round {rnd} closed with {len(statuses)}/{self.expected} robots; no report from "
                f"robot(s) {names}: check that they run and are active (ros2 lifecycle get "
                f"/robot_{missing[0]}/robot) and their own warnings"
            )

    def _write(self, plots: bool = False) -> None:
        if self.output_dir is None or not self.rows:
            return
        from gossip_learning import atomic
        from gossip_learning.results import write_metrics_csv, write_plots

        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_metrics_csv(self.output_dir / "metrics.csv", self.rows)
        if self.missing:
            lines = ["round,expected,reporting,missing"] + [
                f"{r},{self.expected},{self.expected - len(m)},{' '.join(map(str, m))}"
                for r, m in self.missing
            ]
            atomic.write_text(self.output_dir / "missing.csv", "\n".join(lines) + "\n")
        due = plots or (self.plot_every and len(self.rows) % self.plot_every == 0)
        if due and len(self.rows) != self._plotted:  # the same rows are not drawn twice
            self._plotted = len(self.rows)
            try:  # matplotlib is slow: not every round, and never fatal
                write_plots(self.output_dir, self.rows, self.snapshots[-1:])
            except Exception as exc:
                self.get_logger().warning(f"plots failed: {exc}")

    def before_exit(self) -> None:
        """:meth:`flush`: the process ends without destroying the node."""
        self.flush()

    def destroy_node(self) -> None:
        """:meth:`flush` (if not done yet), then destroy the node."""
        self.flush()
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
        if self.latest and self._markers is not None:
            self._markers.publish(self.marker_array())


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run gossip_learning monitor_node``."""
    return run_node("monitor_node", MonitorNode, args, multi_threaded=False)
