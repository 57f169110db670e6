"""rclpy transport: the agent's topics as ROS 2 topics carrying wire frames.

Each agent topic (``beacon``, ``robot_<id>``, ``cluster_<cid>``, ``inter``) becomes
``/<namespace>/<topic>`` of type ``std_msgs/UInt8MultiArray`` whose ``data`` is one
:mod:`gossip_learning.wire` frame. Beacons are best-effort keep-last; everything else is
reliable keep-last. DDS hands a message to every subscriber of its topic, so the radio is
simulated on the receiving side: the sender's last known position (from its beacons) and this
robot's own position (from odometry) go through the configured channel model, and what the
radio would not hear is dropped and counted. Frames that fail to decode, or that are addressed
to someone else, are rejected and counted; the agent only ever sees valid messages meant for it.

Per-robot and per-cluster topics keep DDS deliveries close to what a radio hears:
a robot listens to ``beacon``, its own ``robot_<id>``, its cluster's topic and, as a head,
``inter``. The addressed topics ``robot_<id>`` travel on :data:`INBOXES` shared DDS topics
(:func:`dds_topic`: ``inbox_<id mod INBOXES>``), so a robot process has a bounded number of
endpoints whatever the swarm's size and however many peers it meets; a frame for another robot of
the same inbox is passed over after reading its receiver (counted as ``inbox_others``).
Publishers are created ahead of use (for a peer's inbox once its first beacon is heard, for a
cluster when subscribing to it) so discovery has matched them before the first model is sent.
Nothing here sleeps or waits inside a callback: a frame for a publisher that no subscriber has
matched yet waits in a queue (at most ``match_timeout``) that a short timer flushes.

DDS's own QoS events are counted with the other transport counters: ``lost`` (messages the
middleware reports lost on this robot's lasting subscriptions, ``beacon`` and its own
``robot_<id>``) and ``qos_incompatible`` (a peer's endpoint offered or requested QoS that cannot
match, on those subscriptions and on every publisher). Subscriptions that come and go with cluster
changes get no event handlers: destroying one from a callback would race with a multi-threaded
executor waiting on its events.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from rclpy.callback_groups import CallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.executors import Executor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8MultiArray

try:
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
except ImportError:  # pragma: no cover - older distributions' name; kept, untested (CI: Jazzy)
    from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks

from gossip_learning.auth import FleetAuth
from gossip_learning.channel import Channel
from gossip_learning.errors import WireError
from gossip_learning.pose_check import PoseCheck
from gossip_learning.protocol.clock_sync import PhaseAnchor
from gossip_learning.transports.base import (
    BEACON_TOPIC,
    BatchHandler,
    Handler,
    TransportStats,
    addressed_robot,
    is_cluster_topic,
    robot_topic,
)
from gossip_learning.wire import BROADCAST, Kind, Message, decode, encode, frame_receiver

BEACON_QOS_DEPTH = 64
RELIABLE_QOS_DEPTH = 64

#: Shared DDS topics for the addressed agent topics ``robot_<id>``. Every DDS endpoint is
#: announced to, and kept by, the participants (and the discovery server) that match it; with one
#: publisher per peer addressed, a robot process gained endpoints with every peer it met as the
#: robots moved, and its RSS grew round after round. With inboxes a robot process has at most
#: this many addressed publishers; the price is that a frame reaches every process listening to
#: its inbox (about ``num_robots / INBOXES`` of them), which passes over it after reading its
#: receiver.
INBOXES = 8
INBOX_PREFIX = "inbox_"


def inbox_topic(robot_id: int) -> str:
    """The DDS topic (relative) carrying robot ``robot_id``'s addressed topic."""
    return f"{INBOX_PREFIX}{robot_id % INBOXES}"


def dds_topic(topic: str) -> str:
    """The DDS topic (relative) an agent topic travels on: ``robot_<id>`` on its inbox, every
    other topic under its own name."""
    robot = addressed_robot(topic)
    return topic if robot is None else inbox_topic(robot)


def inbox_mate(dds: str, frame: bytes) -> int | None:
    """The receiver of ``frame`` on DDS topic ``dds`` when it is mail for a robot of that inbox,
    else None: not an inbox, broadcast, garbage, or a receiver whose inbox is another one
    (misaddressed: decoded and refused as usual, by the receiver checks)."""
    if not dds.startswith(INBOX_PREFIX):
        return None
    receiver = frame_receiver(frame)
    if receiver is None or receiver == BROADCAST or inbox_topic(receiver) != dds:
        return None
    return receiver


def beacon_qos(depth: int = BEACON_QOS_DEPTH) -> QoSProfile:
    """Best-effort keep-last: a lost beacon is replaced by the next one."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT
    )


def reliable_qos(depth: int = RELIABLE_QOS_DEPTH) -> QoSProfile:
    """Reliable keep-last for handovers, proposals and models."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE
    )


def qos_for(topic: str) -> QoSProfile:
    """QoS of an agent topic."""
    return beacon_qos() if topic == BEACON_TOPIC else reliable_qos()


def shutdown(context: Any = None) -> None:
    """Shut ``context`` (default: global) down unless it is down already, whoever got there
    first. On SIGINT, rclpy's own signal thread shuts the default context down at a moment of
    its choosing and without the lock ``rclpy.ok`` takes, so checking first and then shutting
    down can fail ("rcl_shutdown already called"); a context that is down afterwards is fine."""
    try:
        rclpy.shutdown(context=context)
    except RuntimeError:  # rclpy's RCLError, or a context never initialised
        if rclpy.ok(context=context):
            raise


def spin_tolerant(executor: Executor, timeout_sec: float = 0.1, until: Any = None) -> None:
    """Spin ``executor`` until its context shuts down (or ``until()`` is true).

    Agents unsubscribe when they change cluster, from a callback; under a multi-threaded executor
    rclpy may then report :class:`InvalidHandle` for the destroyed subscription from another
    thread. Nothing is lost (the topic was being dropped anyway), so spinning simply goes on.
    """
    while executor.context.ok() and not (until is not None and until()):
        try:
            executor.spin_once(timeout_sec=timeout_sec)
        except InvalidHandle:
            continue


class RosTransport:
    """One robot's :class:`~gossip_learning.transports.base.Transport` on an rclpy node."""

    def __init__(
        self,
        node: Node,
        robot_id: int,
        channel: Channel,
        namespace: str = "swarm",
        rng: np.random.Generator | None = None,
        callback_group: CallbackGroup | None = None,
        match_timeout: float = 0.25,
        auth: FleetAuth | None = None,
        num_robots: int = 0,
        peer_timeout_s: float = 0.0,
        pose_check: PoseCheck | None = None,
        anchor: PhaseAnchor | None = None,
    ) -> None:
        """``auth``: the fleet key (frames sealed and opened with it; wire version 2).
        ``num_robots`` > 0 refuses sender ids outside 0..num_robots-1 before anything is kept
        for them; ``peer_timeout_s`` > 0 forgets a sender (pose and publisher) not heard for
        that long, so forged ids cannot pile up state; ``pose_check`` refuses beacons whose pose
        the sender could not have reached since its last accepted one (``implausible_pose``), so
        a forger cannot move a robot out of everyone's range. ``anchor``: the clock follows a
        sender whose phases run ahead (``protocol.clock_sync``; :meth:`now` includes it)."""
        self.node = node
        self.anchor = anchor
        self.auth = auth
        self.num_robots = num_robots
        self.peer_timeout_s = peer_timeout_s
        self.pose_check = pose_check if pose_check is not None else PoseCheck(0.0)
        self._last_heard: dict[int, float] = {}
        self.match_timeout = match_timeout
        self.robot_id = robot_id
        self.channel = channel
        self.prefix = "/" + namespace.strip("/") + "/" if namespace.strip("/") else "/"
        self.rng = rng if rng is not None else np.random.default_rng(robot_id)
        self.callback_group = callback_group
        self.stats = TransportStats()
        self.received = 0  # frames DDS handed us, own echoes included: the delivery cost
        self.reasons: Counter[str] = Counter()
        self.poses: dict[int, tuple[float, float]] = {}
        self.forgotten = 0  # senders dropped after peer_timeout_s of silence
        self.x = math.nan
        self.y = math.nan
        self.lost = 0  # DDS message-lost events (lasting subscriptions)
        self.qos_incompatible = 0  # offered/requested incompatible QoS events
        self.inbox_others = 0  # frames for another robot of a shared inbox, passed over
        self._lock = threading.Lock()
        self._lasting = {BEACON_TOPIC, robot_topic(robot_id)}
        self._pending: dict[str, list[bytes]] = {}  # frames waiting for a publisher to match
        self._pending_until: dict[str, float] = {}
        self._flusher: Any = None
        self._pubs: dict[str, Any] = {}
        self._retiring: dict[str, float] = {}  # left clusters' publishers -> when they may go
        self._subs: dict[str, Any] = {}
        self._handlers: dict[str, Handler] = {}

    # ------------------------------------------------------------ Transport API
    def publish(self, topic: str, msg: Message) -> None:
        """Encode ``msg`` and publish it on ``/<namespace>/<topic>`` (queued, never waited for,
        while a fresh publisher has not matched anyone yet)."""
        frame = encode(msg, self.auth)
        pub = self._publisher(topic)
        name = dds_topic(topic)
        fresh = self._pending_until.get(name, 0.0) > time.monotonic()
        if name in self._pending or (fresh and pub.get_subscription_count() == 0):
            self._pending.setdefault(name, []).append(frame)
            self._start_flusher()
        else:
            self._send(pub, frame)
        with self._lock:
            self.stats.sent += 1
            self.stats.bytes_sent += len(frame)
            key = topic.split("_")[0]
            self.stats.by_topic[key] = self.stats.by_topic.get(key, 0) + 1

    def subscribe(self, topic: str, handler: Handler, batch: BatchHandler | None = None) -> None:
        """Hear ``topic`` (range-filtered) from now on; replaces an earlier handler. The
        executor hands over one frame at a time, so ``batch`` is not used."""
        self._handlers[topic] = handler
        if topic not in self._subs:
            if topic in self._lasting:
                events = SubscriptionEventCallbacks(
                    message_lost=self._on_lost, incompatible_qos=self._on_incompatible
                )
            else:  # no QoS-event waitables: they race with unsubscribe (multi-threaded executor)
                events = SubscriptionEventCallbacks(use_default_callbacks=False)
            self._subs[topic] = self.node.create_subscription(
                UInt8MultiArray,
                self.prefix + dds_topic(topic),
                self._callback(topic),
                qos_for(topic),
                callback_group=self.callback_group,
                event_callbacks=events,
            )
        self._publisher(topic)  # a robot that listens on a topic soon talks on it

    def unsubscribe(self, topic: str) -> None:
        """Stop hearing ``topic`` (no error if not subscribed). A cluster's topic also loses its
        publisher, after sending what still waits for a match on it: a robot that left a
        cluster keeps no endpoint of it (endpoints that piled up with the clusters met made a
        process grow round after round). Another publish makes it again."""
        self._handlers.pop(topic, None)
        sub = self._subs.pop(topic, None)
        if sub is not None:
            self.node.destroy_subscription(sub)
        name = dds_topic(topic)
        if is_cluster_topic(topic) and name in self._pubs:
            # destroyed by flush once its queue has gone out and DDS had match_timeout to
            # deliver it (a writer destroyed right after publishing loses what it sent)
            self._retiring[name] = time.monotonic() + self.match_timeout
            self._start_flusher()

    def now(self) -> float:
        """ROS time in seconds (simulated time under ``use_sim_time``), plus the anchor's
        correction."""
        own = float(self.node.get_clock().now().nanoseconds) * 1e-9
        return own + (self.anchor.correction if self.anchor is not None else 0.0)

    # ------------------------------------------------------------------ extras
    def set_position(self, x: float, y: float) -> None:
        """This robot's own position, from its odometry."""
        self.x, self.y = float(x), float(y)

    @property
    def topics(self) -> list[str]:
        """Agent topics currently subscribed."""
        return sorted(self._subs)

    def close(self) -> None:
        """Send what still waits for a match, then destroy every publisher, subscription and
        timer this transport made."""
        if rclpy.ok(context=self.node.context):
            self.flush(force=True)
        self._pending.clear()  # after a shutdown (Ctrl-C) there is nobody left to send them to
        if self._flusher is not None:
            self.node.destroy_timer(self._flusher)
            self._flusher = None
        for topic in list(self._subs):
            self.unsubscribe(topic)
        for pub in self._pubs.values():
            self.node.destroy_publisher(pub)
        self._pubs.clear()

    def counters(self) -> dict[str, Any]:
        """Cumulative counters, with reasons for drops and rejections."""
        with self._lock:
            return {
                **self.stats.as_dict(),
                "lost": self.lost,
                "qos_incompatible": self.qos_incompatible,
                "inbox_others": self.inbox_others,
                "reasons": dict(self.reasons),
            }

    def flush(self, force: bool = False) -> None:
        """Publish queued frames whose publisher has matched a subscriber or waited
        ``match_timeout`` (all of them if ``force``); stop the flush timer when none are left."""
        now = time.monotonic()
        for topic in list(self._pending):
            pub = self._pubs.get(topic)
            if pub is None:  # destroyed meanwhile (a forgotten peer): nobody to send to
                del self._pending[topic]
                continue
            if force or pub.get_subscription_count() > 0 or now >= self._pending_until[topic]:
                for frame in self._pending.pop(topic):
                    self._send(pub, frame)
                if topic in self._retiring:  # what it sent gets its time to arrive
                    self._retiring[topic] = now + self.match_timeout
        for topic in [t for t, end in self._pending_until.items() if now >= end]:
            if topic not in self._pending:
                del self._pending_until[topic]
        for name in [n for n, end in self._retiring.items() if now >= end]:
            if name not in self._pending:
                self._retire(name)
        if not self._pending and not self._retiring and self._flusher is not None:
            self._flusher.cancel()

    # ----------------------------------------------------------------- private
    def _publisher(self, topic: str) -> Any:
        """The publisher of agent topic ``topic``, kept by its DDS topic (inboxes are shared)."""
        name = dds_topic(topic)
        self._retiring.pop(name, None)  # back in a cluster it left: its publisher stays
        pub = self._pubs.get(name)
        if pub is None:
            pub = self.node.create_publisher(
                UInt8MultiArray,
                self.prefix + name,
                qos_for(topic),
                event_callbacks=PublisherEventCallbacks(incompatible_qos=self._on_incompatible),
            )
            self._pubs[name] = pub
            # A fresh publisher loses what it sends before discovery matches it: frames sent in
            # the next match_timeout seconds wait in a queue until it has matched.
            self._pending_until[name] = time.monotonic() + self.match_timeout
        return pub

    def _retire(self, name: str) -> None:
        """Destroy the publisher of DDS topic ``name`` (a cluster this robot left)."""
        del self._retiring[name]
        self._pending_until.pop(name, None)
        pub = self._pubs.pop(name, None)
        if pub is not None:
            self.node.destroy_publisher(pub)

    @staticmethod
    def _send(pub: Any, frame: bytes) -> None:
        out = UInt8MultiArray()
        out.data = frame
        pub.publish(out)

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = self.node.create_timer(
                0.01, self.flush, callback_group=self.callback_group
            )
        elif self._flusher.is_canceled():
            self._flusher.reset()

    def _on_lost(self, info: Any) -> None:
        with self._lock:
            self.lost += int(info.total_count_change)

    def _on_incompatible(self, info: Any) -> None:
        with self._lock:
            self.qos_incompatible += int(info.total_count_change)

    def _callback(self, topic: str) -> Callable[[UInt8MultiArray], None]:
        return lambda data: self._on_frame(topic, data)

    def _count(self, field: str, reason: str) -> None:
        with self._lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)
            self.reasons[reason] += 1

    def _on_frame(self, topic: str, data: UInt8MultiArray) -> None:
        frame = bytes(data.data)
        with self._lock:
            self.received += 1
        mate = inbox_mate(dds_topic(topic), frame)
        if mate is not None and mate != self.robot_id:
            with self._lock:  # another robot's mail in the inbox this one shares: not decoded
                self.inbox_others += 1
            return
        try:
            msg = decode(frame, self.auth)
        except WireError as exc:
            self._count("rejected", exc.reason)
            return
        if msg.sender == self.robot_id:
            return  # DDS echoes our own broadcasts back; a radio does not hear itself
        if self.num_robots > 0 and not 0 <= msg.sender < self.num_robots:
            self._count("rejected", "unknown_robot_id")  # before any state is kept for it
            return
        if msg.receiver not in (BROADCAST, self.robot_id):
            self._count("rejected", "not_addressed_to_me")
            return
        if self.anchor is not None:  # a sender whose phases run ahead moves this clock
            self.anchor.observe(msg.round, msg.step, self.now())
        if msg.kind == Kind.BEACON and msg.beacon is not None:
            reason = self.pose_check.admit(msg.sender, msg.beacon.x, msg.beacon.y, self.now())
            if reason is not None:
                self._count("rejected", reason)  # the pose it claims is not kept either
                return
            if msg.sender not in self.poses:
                self._publisher(robot_topic(msg.sender))  # its inbox matched before a proposal
            self.poses[msg.sender] = (msg.beacon.x, msg.beacon.y)
            self._last_heard[msg.sender] = time.monotonic()
            self._forget_silent_peers()
        at = None if msg.beacon is None else (msg.beacon.x, msg.beacon.y)
        if not self._heard(msg.sender, at):
            return
        handler = self._handlers.get(topic)
        if handler is None:
            return
        with self._lock:
            self.stats.delivered += 1
            self.stats.bytes_delivered += len(frame)
        handler(msg)

    def _forget_silent_peers(self) -> None:
        """Drop the pose of senders silent for ``peer_timeout_s`` (their inbox's publisher is
        shared, one of at most :data:`INBOXES`, and stays)."""
        if self.peer_timeout_s <= 0:
            return
        cutoff = time.monotonic() - self.peer_timeout_s
        for sender in [s for s, t in self._last_heard.items() if t < cutoff]:
            del self._last_heard[sender]
            self.poses.pop(sender, None)
            self.pose_check.forget(sender)
            self.forgotten += 1

    def _heard(self, sender: int, at: tuple[float, float] | None = None) -> bool:
        """Whether a message of ``sender`` reaches this robot: from the pose a beacon claims
        (``at``), else from the nearest pose the sender's id may be at."""
        pose = self.poses.get(sender)
        if pose is None:
            self._count("dropped", "sender_position_unknown")
            return False
        if math.isnan(self.x):
            self._count("dropped", "own_position_unknown")
            return False
        # a forger's track in this id's name never hides the robot's (pose_check.py)
        poses = [at] if at is not None else self.pose_check.poses(sender) or [pose]
        dist = min(math.hypot(px - self.x, py - self.y) for px, py in poses)
        p = float(np.asarray(self.channel.reception_probability(np.array([dist])))[0])
        if p <= 0.0:
            self._count("dropped", "out_of_range")
            return False
        if p < 1.0 and self.rng.random() >= p:
            self._count("dropped", "channel_loss")
            return False
        return True
