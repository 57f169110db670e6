"""The small interface an agent talks through. Every transport implements it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gossip_learning.messages import NO_CLUSTER, Message

Handler = Callable[[Message], None]
#: Takes many broadcast messages at once that share topic, kind, round, step and receiver.
BatchHandler = Callable[[list[Message]], None]


class Transport(Protocol):
    """Publish/subscribe by topic plus a clock; one instance per robot.

    Topic names are relative ROS tokens: ``beacon``, ``robot_<id>``, ``cluster_<cid>``, ``inter``.
    ``publish`` encodes with :mod:`gossip_learning.wire`; handlers receive decoded, checked
    messages only (a transport counts and drops anything that fails to decode). A transport
    delivers only what the robot's radio would hear: range and loss are its business.
    """

    robot_id: int

    def publish(self, topic: str, msg: Message) -> None:
        """Send ``msg`` on ``topic``."""

    def subscribe(self, topic: str, handler: Handler, batch: BatchHandler | None = None) -> None:
        """Call ``handler`` for every message heard on ``topic`` (replaces an earlier handler).
        A transport may instead hand ``batch`` a list of broadcast messages that share topic,
        kind, round, step and receiver (the in-process medium does: thousands of beacons per
        phase); ``batch`` must behave exactly like ``handler`` called on each."""

    def unsubscribe(self, topic: str) -> None:
        """Stop listening on ``topic`` (no error if not subscribed)."""

    def now(self) -> float:
        """Current time in seconds (simulated, wall or ROS time)."""


@dataclass
class TransportStats:
    """Counters a transport keeps; all cumulative."""

    sent: int = 0
    bytes_sent: int = 0
    delivered: int = 0
    bytes_delivered: int = 0
    dropped: int = 0
    rejected: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # rejected frames by reason

    def reject(self, reason: str) -> None:
        """Count one frame refused before any robot saw it."""
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def as_dict(self) -> dict[str, int]:
        """Plain counters (without the per-topic breakdown)."""
        return {
            "sent": self.sent,
            "bytes_sent": self.bytes_sent,
            "delivered": self.delivered,
            "bytes_delivered": self.bytes_delivered,
            "dropped": self.dropped,
            "rejected": self.rejected,
        }


ROBOT_PREFIX = "robot_"
CLUSTER_PREFIX = "cluster_"
UNCLUSTERED_TOPIC = "unclustered"


def robot_topic(robot_id: int) -> str:
    """Topic for messages addressed to one robot."""
    return f"{ROBOT_PREFIX}{robot_id}"


def addressed_robot(topic: str) -> int | None:
    """The robot whose :func:`robot_topic` ``topic`` is, or None for any other topic."""
    rest = topic.removeprefix(ROBOT_PREFIX)
    return int(rest) if rest != topic and rest.isdigit() else None


def cluster_topic(cluster_id: int) -> str:
    """Topic for one cluster's broadcasts (robots in no cluster: ``unclustered``)."""
    return UNCLUSTERED_TOPIC if cluster_id == NO_CLUSTER else f"{CLUSTER_PREFIX}{cluster_id}"


def is_cluster_topic(topic: str) -> bool:
    """Whether ``topic`` is one a :func:`cluster_topic` names."""
    return topic == UNCLUSTERED_TOPIC or topic.startswith(CLUSTER_PREFIX)


BEACON_TOPIC = "beacon"
INTER_TOPIC = "inter"
