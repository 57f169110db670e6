"""Typed round summaries: ``gossip_learning_msgs/msg/RobotSummary`` on
``/<swarm_namespace>/robot_summary``, next to the JSON status and the summary line, where the
``gossip_learning_msgs`` package (``msgs/`` in this repository, built with colcon) is installed;
nothing without it. ``ros2 topic echo /swarm/robot_summary`` then shows fields."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gossip_learning.transports.ros import reliable_qos


def summary_type() -> Any | None:
    """The RobotSummary message class, or None where gossip_learning_msgs is not installed."""
    try:
        from gossip_learning_msgs.msg import RobotSummary
    except ImportError:
        return None
    return RobotSummary


def to_summary(msg_type: Any, status: dict[str, Any]) -> Any:
    """A RobotSummary of one status (the JSON of /<ns>/status as a dict)."""
    t = status.get("transport", {})
    when = float(status.get("time", 0.0))
    msg = msg_type()
    msg.header.stamp.sec = math.floor(when)
    msg.header.stamp.nanosec = int((when - math.floor(when)) * 1e9) % 1_000_000_000
    msg.header.frame_id = str(status.get("frame", ""))
    msg.robot_id, msg.round = int(status["id"]), int(status["round"])
    msg.role = str(status.get("role", "none"))
    msg.cluster, msg.head = int(status.get("cluster", -1)), int(status.get("head", -1))
    msg.x, msg.y = float(status.get("x", math.nan)), float(status.get("y", math.nan))
    msg.neighbours = int(status.get("neighbours", 0))
    msg.acc = float(status.get("acc", math.nan))
    msg.loss = float(status.get("loss", math.nan))
    for key in ("sent", "delivered", "dropped", "rejected", "lost", "qos_incompatible"):
        setattr(msg, key, int(t.get(key, 0)))
    return msg


class SummaryPublisher:
    """Publishes statuses as RobotSummary through a publisher made by ``create``
    (``node.create_publisher`` or ``create_lifecycle_publisher``)."""

    def __init__(self, msg_type: Any, create: Callable[..., Any], namespace: str) -> None:
        self.msg_type = msg_type
        self.pub = create(msg_type, f"/{namespace.strip('/')}/robot_summary", reliable_qos())

    def __call__(self, status: dict[str, Any]) -> None:
        self.pub.publish(to_summary(self.msg_type, status))


def summary_publisher(create: Callable[..., Any], namespace: str) -> SummaryPublisher | None:
    """A :class:`SummaryPublisher`, or None where gossip_learning_msgs is not installed."""
    msg_type = summary_type()
    return None if msg_type is None else SummaryPublisher(msg_type, create, namespace)
