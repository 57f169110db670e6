"""A host that runs many robots in one process over one shared bus (``swarm_node``).

Why not one rclpy node per robot: with N robots in a process, every beacon is handed by DDS to N
subscriptions and each copy goes through the Python executor as its own callback, next to N phase
timers and N odometry drivers. At 20 robots on two cores the executor fell more than a phase
behind, so robots heard beacons after they had moved on (rejected as ``late``) and no cluster
formed. Here a process has:

* one subscription per swarm topic (``/<ns>/beacon``, ``inbox_<k>`` carrying its robots'
  ``robot_<id>``, ``cluster_<cid>``, ``inter``), shared by its robots: DDS hands each frame to the
  process once, it is decoded once and dispatched to the robots listening on that topic, each
  with its own range filter and counters (:class:`HostedTransport`); robots in other processes
  are reached through DDS;
* a bounded number of DDS endpoints, however large the swarm and however many peers its robots
  meet: the beacon's and every inbox's publisher are made at start-up (matched before the first
  round; :data:`~gossip_learning.transports.ros.INBOXES`), and a cluster's topic is subscribed
  while one of its robots hears it and goes at the next drain after none does (every endpoint is
  kept by the participants that match it: endpoints that piled up with the peers and clusters
  met made a robot process grow round after round);
* one clock timer and one :class:`~gossip_learning.driver.RoundDriver` for all its robots, which
  drains the subscriptions between phases (like the in-process engine flushes its medium), so a
  frame sent in a phase is heard before the next phase starts;
* one kinematic model for the whole swarm (the engine's, from the same
  :class:`~gossip_learning.plan.SwarmPlan`), so start poses, headings and, with ``motion=round``,
  every move are those of ``gossip-learning run``; and the batched trainer of the engine.

The subscriptions live on a second node that no executor spins: the host takes their frames itself,
in its timer, so no delivery races the clock.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from gossip_learning.auth import session_counter_start
from gossip_learning.config import Config
from gossip_learning.driver import RoundDriver
from gossip_learning.errors import WireError
from gossip_learning.learner import evaluate
from gossip_learning.nodes.common import DECENTRALISED_METHODS
from gossip_learning.nodes.health import (
    Health,
    clock_message,
    late_message,
    peers_message,
    round_line,
)
from gossip_learning.plan import swarm_motion
from gossip_learning.protocol import RobotAgent
from gossip_learning.protocol.clock_sync import PhaseAnchor
from gossip_learning.robot_data import (
    RobotParts,
    agent_settings,
    channel_for,
    fleet_auth,
    read_robot_file,
    robot_parts_of_plan,
    trainer_for,
)
from gossip_learning.schedule import Phase, PhaseKind, RoundClock, build_schedule
from gossip_learning.training import BatchedTrainer
from gossip_learning.transports.base import BEACON_TOPIC, Handler, TransportStats, robot_topic
from gossip_learning.transports.ros import (
    INBOX_PREFIX,
    dds_topic,
    inbox_mate,
    qos_for,
    reliable_qos,
)
from gossip_learning.wire import BROADCAST, Kind, Layer, Message, decode, encode

MOTIONS = ("time", "round")
REPORTS_PER_TICK = 8  # (model, status) pairs published per clock tick
ROUND_LINES = 8  # per-robot info lines per round; the rest in one line
#: Seconds between clock ticks while round 1 is more than two of them away: 60 robot processes
#: waiting for the epoch at 20 ticks a second took CPU from the ones still starting.
IDLE_TICK_S = 0.5


class JoiningDriver(RoundDriver):
    """A :class:`RoundDriver` whose agents may change between rounds: ``before_begin`` runs
    before every round starts (the host admits robots activated since)."""

    before_begin: Callable[[], None] | None = None

    def begin(self, round_no: int) -> None:
        if self.before_begin is not None:
            self.before_begin()
        super().begin(round_no)


class HostedTransport:
    """One hosted robot's transport: publishes through the host, hears what the host dispatches
    (range-filtered by the configured channel, counted like :class:`RosTransport`)."""

    def __init__(self, host: SharedHost, robot_id: int, rng: np.random.Generator) -> None:
        self.host, self.robot_id, self.rng = host, robot_id, rng
        self.channel = host.channel
        self.stats = TransportStats()
        self.reasons: Counter[str] = Counter()
        self.received = 0
        self.x = math.nan
        self.y = math.nan
        self.handlers: dict[str, Handler] = {}

    def publish(self, topic: str, msg: Message) -> None:
        size = self.host.send(topic, msg)
        self.stats.sent += 1
        self.stats.bytes_sent += size
        key = topic.split("_")[0]
        self.stats.by_topic[key] = self.stats.by_topic.get(key, 0) + 1

    def subscribe(self, topic: str, handler: Any, batch: Any = None) -> None:
        self.handlers[topic] = handler
        self.host.listen(topic, self)

    def unsubscribe(self, topic: str) -> None:
        if self.handlers.pop(topic, None) is not None:
            self.host.unlisten(topic, self)

    def now(self) -> float:
        return self.host.now()

    def set_position(self, x: float, y: float) -> None:
        self.x, self.y = float(x), float(y)

    def counters(self) -> dict[str, Any]:
        return {**self.stats.as_dict(), "reasons": dict(self.reasons)}

    def _drop(self, reason: str) -> None:
        self.stats.dropped += 1
        self.reasons[reason] += 1

    def hear(self, topic: str, msg: Message, size: int) -> None:
        """A decoded frame on ``topic``: range filter, then the agent's handler."""
        self.received += 1
        if msg.sender == self.robot_id:
            return  # a radio does not hear itself
        if msg.receiver not in (BROADCAST, self.robot_id):
            self.stats.rejected += 1
            self.reasons["not_addressed_to_me"] += 1
            return
        if not self.host.range_filter:  # the network itself emulates the radio (fleet harness)
            return self._deliver(topic, msg, size)
        pose = self.host.poses.get(msg.sender)
        if pose is None:
            return self._drop("sender_position_unknown")
        if math.isnan(self.x):
            return self._drop("own_position_unknown")
        dist = math.hypot(pose[0] - self.x, pose[1] - self.y)
        p = float(self.channel.reception_probability(np.array([dist]))[0])
        if p <= 0.0:
            return self._drop("out_of_range")
        if p < 1.0 and self.rng.random() >= p:
            return self._drop("channel_loss")
        self._deliver(topic, msg, size)

    def _deliver(self, topic: str, msg: Message, size: int) -> None:
        handler = self.handlers.get(topic)
        if handler is None:
            return
        self.stats.delivered += 1
        self.stats.bytes_delivered += size
        handler(msg)


def hosted_parts(cfg: Config, seed: int, ids: Sequence[int], data_dir: str) -> list[RobotParts]:
    """The parts of robots ``ids``: from their files in ``data_dir`` (``gossip-learning
    partition``; nothing else is loaded), else cut from the engine's plan (the whole dataset).
    Robots that evaluate on the same test rows share one array (one batched evaluation)."""
    if data_dir:
        parts = [read_robot_file(data_dir, cfg, seed, i) for i in ids]
    else:
        from gossip_learning.plan import SwarmPlan, load_data

        plan = SwarmPlan(cfg, seed, load_data(cfg))
        parts = [robot_parts_of_plan(plan, i) for i in ids]
    first = parts[0]
    for p in parts[1:]:
        if p.x_test.shape == first.x_test.shape and np.array_equal(p.x_test, first.x_test):
            p.x_test = first.x_test
    return parts


class SharedHost:
    """Robots ``ids`` of a (config, seed) swarm on ``node`` (timer, status) and ``bus`` (frames)."""

    def __init__(
        self,
        node: Node,
        bus: Node,
        cfg: Config,
        seed: int,
        ids: Sequence[int],
        *,
        method: str = "bilayer",
        epoch: float = 0.0,
        rounds: int = 0,
        namespace: str = "swarm",
        motion: str = "time",
        tick: float = 0.05,
        evaluate_models: bool = True,
        publish_model: bool = True,
        data_dir: str = "",
        range_filter: bool = True,
        clock_offset: float = 0.0,
        clock_drift_ppm: float = 0.0,
        health: Health | None = None,
        log_rounds: bool = True,
        frame: str = "world",
        phase_scale: float = 1.0,
    ) -> None:
        if method not in DECENTRALISED_METHODS:
            raise ValueError(
                f"parameter 'method': {method!r} cannot run on robots; "
                f"allowed: {', '.join(DECENTRALISED_METHODS)}"
            )
        if motion not in MOTIONS:
            raise ValueError(f"parameter 'motion': {motion!r} must be one of {', '.join(MOTIONS)}")
        n = cfg.swarm.num_robots
        bad = [i for i in ids if not 0 <= i < n]
        if bad or not ids:
            raise ValueError(f"parameter 'robot_ids': {list(ids)} must be ids in 0..{n - 1}")
        self.node, self.bus, self.cfg, self.seed = node, bus, cfg, seed
        self.range_filter = range_filter
        # a clock that disagrees (fleet rehearsal): offset in s, drift in parts per million
        self.clock_offset, self.clock_drift = clock_offset, clock_drift_ppm * 1e-6
        self._clock_zero = self._raw_now()
        self.ids = list(ids)
        self.rounds = rounds or cfg.experiment.rounds
        self.prefix = f"/{namespace.strip('/')}/"
        self.motion = motion
        self.phase_scale = phase_scale  # cfg.timing is already scaled (nodes/pacing.py)
        self.evaluate_models, self.publish_model = evaluate_models, publish_model
        self.channel = channel_for(cfg)
        self.auth = fleet_auth(cfg, session_counter_start(), self.ids)
        parts = hosted_parts(cfg, seed, self.ids, data_dir)
        self.spec = parts[0].spec
        self.mobility = swarm_motion(cfg, seed)  # the engine's start poses and moves, no data
        self.poses: dict[int, tuple[float, float]] = {}  # sender -> position from its beacons
        self._subs: dict[str, Any] = {}  # by DDS topic
        self._pubs: dict[str, Any] = {}  # by DDS topic
        self._listeners: dict[str, dict[int, HostedTransport]] = {}  # by agent topic
        self._unheard: set[str] = set()  # DDS topics none of its robots listens to any more
        self.inbox_others = 0  # inbox frames for robots of other processes, passed over
        settings = agent_settings(cfg, self.spec, method)
        self.method = settings.method
        by_id = dict(zip(self.ids, parts, strict=True))
        none = (np.empty((0, self.spec.in_dim)), np.empty(0, dtype=np.int64))
        self.trainer = BatchedTrainer(  # indexed by robot id: the engine's training seeds
            trainer_for(cfg, self.spec),
            [(by_id[i].x_train, by_id[i].y_train) if i in by_id else none for i in range(n)],
            seed,
        )
        self.transports: list[HostedTransport] = []
        self.agents: list[RobotAgent] = []
        for i, part in zip(self.ids, parts, strict=True):
            tr = HostedTransport(self, i, np.random.default_rng([seed, i, 0x5A5]))
            self.agents.append(RobotAgent(
                i, settings, tr, part.params, part.samples, part.label_dist, part.agent_seed,
                self.trainer.port(i),
            ))  # fmt: skip
            self.transports.append(tr)
        self.tests = [p.x_test for p in parts]
        self.y_test = parts[0].y_test
        schedule = build_schedule(self.method, cfg.clustering.passes, cfg.gossip)
        self.clock = RoundClock(schedule, cfg.timing, start=epoch)
        # follow the most advanced clock heard (timing.clock_sync_max_s; 0: own clock only)
        self.anchor = PhaseAnchor(
            epoch, self.clock.period, self.clock.offsets, cfg.timing.clock_sync_max_s
        )
        self.driver = JoiningDriver(
            self.agents, schedule, deliver=self.drain, after={PhaseKind.END: self._end_of_round}
        )
        self.driver.before_begin = self._admit
        # robots taking part: all, unless their RobotFace (lifecycle) takes them out
        self.active: set[int] = set(self.ids)
        self._joining: set[int] = set()
        self.on_status: Callable[[int, dict[str, Any]], None] | None = None
        self.on_move: Callable[[Callable[[], dict], float], None] | None = None
        self.health = health
        self.log_rounds = log_rounds
        self.frame = frame
        self._heard: dict[int, int] = {}  # frames each robot had heard at its last report
        self._lonely_rounds = 0
        self._late_before = 0
        self.completed = 0
        self.joined_round = 0  # the round it joined the swarm at (1 unless start-up was late)
        self.done = False
        # End-of-round reports wait here and go out REPORTS_PER_TICK at a time: a burst of 2N
        # would overflow the keep-last depth of the monitor's subscriptions (64) at 100 robots.
        self._reports: deque[tuple[UInt8MultiArray | None, String]] = deque()
        self.delivered_frames = 0  # frames taken from DDS by this process
        self._last_move: float | None = None
        self._clock_round: int | None = None  # the clock's round at the last tick before joining
        self.tick_s = tick
        self._place()
        self._status_pub = node.create_publisher(String, self.prefix + "status", reliable_qos())
        self._model_pub = node.create_publisher(
            UInt8MultiArray, self.prefix + "models", reliable_qos()
        )
        # every robot hears beacons, heads hear inter, and every inbox of the swarm (at most
        # INBOXES) has its publisher from the start, matched before the first proposal
        inboxes = {dds_topic(robot_topic(i)) for i in range(n)}
        self._permanent = {BEACON_TOPIC, "inter", *inboxes}
        for topic in (BEACON_TOPIC, "inter"):
            self._subscription(topic)
        for name in sorted(inboxes):
            self._publisher(name)
        self.timer = node.create_timer(tick, self.tick)
        # on the steady clock: with use_sim_time and no /clock, ROS-time timers never fire
        self.health_timer = node.create_timer(
            0.5, self._check_clock, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )

    # -------------------------------------------------------------- activity
    def set_active(self, robot_id: int, active: bool) -> None:
        """Take robot ``robot_id`` out at once, or let it take part from the next round."""
        if active:
            if robot_id not in self.active:
                self._joining.add(robot_id)
            return
        self._joining.discard(robot_id)
        self.active.discard(robot_id)
        self.driver.agents = [a for a in self.agents if a.id in self.active]

    def _admit(self) -> None:
        if self._joining:
            self.active |= self._joining
            self._joining.clear()
            self.driver.agents = [a for a in self.agents if a.id in self.active]

    # ------------------------------------------------------------------- bus
    def _raw_now(self) -> float:
        return float(self.node.get_clock().now().nanoseconds) * 1e-9

    def now(self) -> float:
        raw = self._raw_now()
        own = raw + self.clock_offset + self.clock_drift * (raw - self._clock_zero)
        return own + self.anchor.correction

    def _qos(self, topic: str) -> Any:
        """The topic's QoS with a history deep enough for one phase of the whole swarm: every
        robot may send on a topic in the same phase, and keep-last would drop the oldest."""
        qos = qos_for(topic)
        qos.depth = max(qos.depth, 2 * self.cfg.swarm.num_robots)
        return qos

    def _subscription(self, name: str) -> None:
        """The subscription (and publisher) of DDS topic ``name``."""
        self._unheard.discard(name)
        if name not in self._subs:
            self._subs[name] = self.bus.create_subscription(
                UInt8MultiArray, self.prefix + name, lambda _: None, self._qos(name)
            )
            self._publisher(name)

    def _publisher(self, name: str) -> Any:
        pub = self._pubs.get(name)
        if pub is None:
            pub = self.bus.create_publisher(UInt8MultiArray, self.prefix + name, self._qos(name))
            self._pubs[name] = pub
        return pub

    def listen(self, topic: str, transport: HostedTransport) -> None:
        self._listeners.setdefault(topic, {})[transport.robot_id] = transport
        self._subscription(dds_topic(topic))

    def unlisten(self, topic: str, transport: HostedTransport) -> None:
        """``transport`` stops hearing ``topic``; a cluster topic none of this host's robots
        hears any more loses its subscription and publisher at the next :meth:`drain`."""
        listeners = self._listeners.get(topic, {})
        listeners.pop(transport.robot_id, None)
        if not listeners:
            self._listeners.pop(topic, None)
            name = dds_topic(topic)
            if name not in self._permanent and not self._heard_here(name):
                self._unheard.add(name)

    def _heard_here(self, name: str) -> bool:
        return any(dds_topic(t) == name for t in self._listeners)

    def _drop_unheard(self) -> None:
        """Destroy the subscription and publisher of each DDS topic left unheard (never while
        :meth:`drain` takes frames from them)."""
        for name in sorted(self._unheard):
            if self._heard_here(name):
                continue
            sub, pub = self._subs.pop(name, None), self._pubs.pop(name, None)
            if sub is not None:
                self.bus.destroy_subscription(sub)
            if pub is not None:
                self.bus.destroy_publisher(pub)
        self._unheard.clear()

    @property
    def dds_topics(self) -> tuple[list[str], list[str]]:
        """The DDS topics (relative) this host publishes and subscribes to now."""
        return sorted(self._pubs), sorted(self._subs)

    def send(self, topic: str, msg: Message) -> int:
        """Publish ``msg`` on the swarm topic; DDS brings it back to this process's subscription
        too, so local and remote robots hear it the same way. Returns the frame size."""
        out = UInt8MultiArray()
        out.data = encode(msg, self.auth)
        self._publisher(dds_topic(topic)).publish(out)
        return len(out.data)

    def drain(self) -> int:
        """Take every frame waiting on the shared subscriptions and dispatch it; repeat while
        handlers send more. Returns the number of frames."""
        self._drop_unheard()
        total = 0
        while True:
            taken = 0
            for topic, sub in list(self._subs.items()):
                while True:
                    with sub.handle:
                        got = sub.handle.take_message(sub.msg_type, sub.raw)
                    if got is None:
                        break
                    taken += 1
                    self._dispatch(topic, bytes(got[0].data))
            total += taken
            if not taken:
                self.delivered_frames += total
                return total

    def _targets(self, name: str, frame: bytes) -> list[tuple[str, HostedTransport]]:
        """(agent topic, robot) pairs here that hear ``frame`` of DDS topic ``name``: on an
        inbox only its receiver's (none: a robot of another process, counted in
        ``inbox_others``), or, misaddressed, each robot of that inbox here (which refuses it)."""
        if not name.startswith(INBOX_PREFIX):  # every other topic travels under its own name
            return [(name, tr) for tr in self._listeners.get(name, {}).values()]
        mate = inbox_mate(name, frame)
        if mate is not None:
            topic = robot_topic(mate)
            heard = [(topic, tr) for tr in self._listeners.get(topic, {}).values()]
            self.inbox_others += not heard
            return heard
        return [(t, tr) for t, heard in self._listeners.items() if dds_topic(t) == name
                for tr in heard.values()]  # fmt: skip

    def _dispatch(self, name: str, frame: bytes) -> None:
        targets = self._targets(name, frame)
        if not targets:
            return
        try:
            msg = decode(frame, self.auth)
        except WireError as exc:
            for _, tr in targets:
                tr.stats.rejected += 1
                tr.reasons[exc.reason] += 1
            return
        n = self.cfg.swarm.num_robots
        if not 0 <= msg.sender < n:
            for _, tr in targets:
                tr.stats.rejected += 1
                tr.reasons["unknown_robot_id"] += 1
            return
        if msg.kind == Kind.BEACON and msg.beacon is not None:
            self.poses[msg.sender] = (msg.beacon.x, msg.beacon.y)
        self.anchor.observe(msg.round, msg.step, self.now())  # a sender ahead moves the clock
        for topic, tr in targets:
            tr.hear(topic, msg, len(frame))

    # ----------------------------------------------------------------- clock
    def _place(self) -> None:
        pos = self.mobility.positions
        for a, tr in zip(self.agents, self.transports, strict=True):
            x, y = pos[a.id]
            a.set_position(x, y)
            tr.set_position(x, y)

    def _move(self, now: float) -> None:
        if self.motion == "time" and self._last_move is not None and now > self._last_move:
            self.mobility.step(now - self._last_move)
            self._place()
        self._last_move = now
        if self.on_move is not None:
            self.on_move(self.poses_now, now)

    def poses_now(self) -> dict[int, tuple[float, float, float]]:
        """Each hosted robot's ``(x, y, heading)`` now."""
        pos, vel = self.mobility.positions, self.mobility.velocity()
        return {i: (float(pos[i][0]), float(pos[i][1]), math.atan2(vel[i][1], vel[i][0]))
                for i in self.ids}  # fmt: skip

    @property
    def finished(self) -> bool:
        """Every round run and every report published."""
        return self.done and not self._reports

    def _send_reports(self) -> None:
        for _ in range(min(REPORTS_PER_TICK, len(self._reports))):
            model, status = self._reports.popleft()
            if model is not None:  # before the status: the monitor closes a round on statuses
                self._model_pub.publish(model)
            self._status_pub.publish(status)

    def tick(self) -> None:
        """Move, hear, and run every phase the clock has reached (draining between phases)."""
        self._send_reports()
        if self.done:
            return
        now = self.now()
        self._move(now)
        self.drain()
        rnd, slot = self.clock.locate(now)
        if self.driver.round == 0:
            self._pace(now)
            seen, self._clock_round = self._clock_round, rnd
            # Join at a round's start: slot 0, or the first tick after a round boundary passed
            # while this host waited (a tick that a busy CPU delayed past the first phase must
            # not cost a whole round; the phases it missed run at once, counted as late).
            if rnd == 0 or (slot != 0 and (seen is None or rnd <= seen)):
                return  # before the epoch, or started mid-round: join at the next round start
            self._join(rnd, now)
        self.driver.advance_to(rnd, slot)
        if self.driver.round_done and not self.done:
            self.driver.begin(self.driver.round + 1)

    def _pace(self, now: float) -> None:
        """Tick every :data:`IDLE_TICK_S` while round 1 is further away than two of those ticks
        (a period change takes effect from the next tick), at ``tick`` from then on."""
        period = IDLE_TICK_S if self.clock.start - now > 2 * IDLE_TICK_S else self.tick_s
        ns = round(period * 1e9)
        if self.timer.timer_period_ns != ns:
            self.timer.timer_period_ns = ns

    def _join(self, rnd: int, now: float) -> None:
        """Join the swarm at the start of round ``rnd`` and run ``rounds`` rounds from there. A
        host that starts after round 1 of the shared epoch says so in its log and in every
        status (``joined_round``): the monitor and the benchmark count it, never a silent gap."""
        self.joined_round = rnd
        self.driver.last_round = rnd + self.rounds - 1
        self._admit()
        if rnd > 1 and self.clock.start > 0:
            self.node.get_logger().warning(
                f"robots {self.ids[0]}..{self.ids[-1]}: joined at round {rnd} "
                f"({now - self.clock.start:.1f} s after the epoch): start-up outlasted "
                f"start_delay, rounds 1..{rnd - 1} ran without them"
            )
        for a, tr in zip(self.agents, self.transports, strict=True):
            if a.id in self.active:
                self._publish_status(a, tr, a.status())

    @property
    def round(self) -> int:
        return self.driver.round

    # ----------------------------------------------------------- end of round
    def _publish_status(
        self, agent: RobotAgent, tr: HostedTransport, status: dict, model: Any = None
    ) -> None:
        status.update(
            time=self.now(),
            transport=tr.counters(),
            late_phases=self.driver.late_phases,
            method=self.method,
            seed=self.seed,
            publishes_model=self.publish_model,
            frame=self.frame,
            joined_round=self.joined_round,
            phase_scale=self.phase_scale,
            round_period_s=self.clock.period,
            **self.anchor.counters(),
        )
        self._reports.append((model, String(data=json.dumps(status, allow_nan=True))))
        if self.on_status is not None:
            self.on_status(agent.id, status)

    def _end_of_round(self, _: Phase) -> None:
        acc = loss = None
        if self.evaluate_models:
            acc, loss = self._evaluate()
        statuses = []
        for k, (a, tr) in enumerate(zip(self.agents, self.transports, strict=True)):
            if a.id not in self.active:
                continue
            status = a.status()
            statuses.append(status)
            if acc is not None and loss is not None:
                status.update(acc=float(acc[k]), loss=float(loss[k]))
            out = None
            if self.publish_model:
                out = UInt8MultiArray()
                out.data = encode(Message(
                    Kind.MODEL, a.id, round=self.round, layer=Layer.NONE,
                    cluster=a.state.cluster, samples=a.num_samples,
                    model_version=self.spec.version(), model=a.model,
                ))  # fmt: skip
            self._publish_status(a, tr, status, out)
        self._after_round(statuses)
        self.completed += 1
        if self.motion == "round":
            self.mobility.step(1.0)  # the engine moves robots once between rounds
            self._place()
        if self.completed >= self.rounds:
            self.done = True
            self.node.get_logger().info(
                f"robots {self.ids[0]}..{self.ids[-1]}: finished {self.rounds} rounds "
                f"({len(self._pubs)} DDS publishers, {len(self._subs)} subscriptions)"
            )

    def _after_round(self, statuses: list[dict[str, Any]]) -> None:
        """The round's info lines (at most :data:`ROUND_LINES` robots, then one line for the
        rest) and its health: late phases, robots that heard nobody."""
        log = self.node.get_logger()
        if self.log_rounds and statuses:
            for st in statuses[:ROUND_LINES]:
                log.info(round_line(st))
            rest = statuses[ROUND_LINES:]
            if rest:
                accs = [st["acc"] for st in rest if isinstance(st.get("acc"), float)]
                mean = f", mean acc {sum(accs) / len(accs):.3f}" if accs else ""
                log.info(f"round {self.round}: {len(rest)} more robots reported{mean}")
        late = self.driver.late_phases - self._late_before
        self._late_before = self.driver.late_phases
        if late:
            log.warning(late_message(f"robots {self.ids[0]}..{self.ids[-1]}", self.round, late))
        if self.health is None or self.cfg.swarm.num_robots < 2:
            return
        lonely = []
        for a, tr in zip(self.agents, self.transports, strict=True):
            if a.id in self.active:
                heard = tr.stats.delivered + tr.stats.dropped + tr.stats.rejected
                if heard == self._heard.get(a.id, 0):
                    lonely.append(a.id)
                self._heard[a.id] = heard
        self._lonely_rounds = self._lonely_rounds + 1 if lonely and len(lonely) == len(
            self.active) else 0  # fmt: skip
        who = f"robot(s) {', '.join(map(str, lonely[:10]))}"
        self.health.check(
            "peers", self._lonely_rounds > 0, time.monotonic(),
            lambda age: peers_message(who, self._lonely_rounds, age), warn_after_s=0.0,
        )  # fmt: skip

    def _check_clock(self) -> None:
        if self.health is None or self.done:
            return
        sim = bool(self.node.get_parameter("use_sim_time").value)
        who = f"robots {self.ids[0]}..{self.ids[-1]}"
        self.health.check(
            "clock", sim and self.now() == 0.0, time.monotonic(), lambda a: clock_message(who, a)
        )

    @property
    def failed(self) -> str | None:
        """The error that made the host give up (see :class:`Health`), if any."""
        return None if self.health is None else self.health.failed

    def _evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        if all(t is self.tests[0] for t in self.tests):  # one test set: all models at once
            models = np.stack([a.model for a in self.agents])
            return evaluate(self.spec, models, self.tests[0], self.y_test)
        pairs = [evaluate(self.spec, a.model, t, self.y_test) for a, t in
                 zip(self.agents, self.tests, strict=True)]  # fmt: skip
        return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])

    def await_reports(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until every subscriber (the monitor) acknowledged the last
        statuses and models: a reliable frame lost on a busy host is sent again only after the
        writer's next heartbeat, which a process that exits a second after its last report never
        sends (its last round then missed the monitor)."""
        wait = Duration(seconds=timeout_s)
        return all([pub.wait_for_all_acked(wait) for pub in (self._status_pub, self._model_pub)])

    def close(self) -> None:
        for timer in (self.timer, self.health_timer):
            timer.cancel()
            self.node.destroy_timer(timer)
