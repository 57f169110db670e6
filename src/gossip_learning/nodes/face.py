"""The ROS face of a robot that ``swarm_node`` hosts: the same interface as ``robot_node``.

Whatever ``sim:=`` and ``single_process:=``, every robot is a lifecycle node
``/robot_<i>/robot`` with ``robot_node``'s declared, described, read-only parameters, its status
and summary on the swarm topics, and its pose on ``/robot_<i>/odom`` (``nav_msgs/Odometry`` in
``swarm_frame``). In a ``swarm_node`` the robots' agents, data, clock and motion live in the
shared host (:class:`~gossip_learning.nodes.host.SharedHost`); a :class:`RobotFace` per robot
gives it its name, parameters and lifecycle, several in one process:

* *configure* creates the pose publisher (the host loaded the data and built the agent at
  start-up); *activate* lets the robot take part from the start of the next round;
  *deactivate* takes it out at once (it stops beaconing, training and reporting, as a
  deactivated ``robot_node`` does); *cleanup* drops the publisher; *shutdown* retires it.
* ``ros2 param get/set/describe``, ``ros2 lifecycle get/set/list`` answer as for ``robot_node``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from gossip_learning.nodes.base import ManagedNode
from gossip_learning.nodes.common import coerce
from gossip_learning.nodes.robot import PARAMETERS as ROBOT_PARAMETERS
from gossip_learning.nodes.robot import summary_line
from gossip_learning.nodes.typed import summary_publisher
from gossip_learning.transports.ros import reliable_qos

#: Seconds between pose messages of a hosted robot (its motion is integrated every tick).
POSE_PERIOD_S = 0.5
Pose = tuple[float, float, float]


class RobotFace(ManagedNode):
    """``/robot_<id>/robot`` for a robot hosted by a :class:`SharedHost` (see the module)."""

    def __init__(self, robot_id: int, values: dict[str, Any], **node_options: Any) -> None:
        """``values``: parameter values the host was started with (robot_node's names)."""
        overrides = coerce(
            {k: v for k, v in {**values, "robot_id": robot_id}.items() if k in ROBOT_PARAMETERS},
            ROBOT_PARAMETERS,
        )
        super().__init__(
            "robot",
            ROBOT_PARAMETERS,
            namespace=f"robot_{robot_id}",
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
            **node_options,
        )
        self.robot_id = robot_id
        self.host: Any = None
        self.frame = str(self.params["swarm_frame"])
        self._odom: Any = None
        self._active = False

    def attach(self, host: Any) -> None:
        """Join ``host`` (inactive until this node is activated), then autostart."""
        self.host = host
        host.set_active(self.robot_id, False)
        self.autostart()

    def configure(self) -> None:
        self._odom = self.create_lifecycle_publisher(Odometry, "odom", 10)

    def activate(self) -> None:
        self._active = True
        self.host.set_active(self.robot_id, True)
        self.get_logger().info(f"robot {self.robot_id}: active, joins at the next round start")

    def deactivate(self) -> None:
        self._active = False
        if self.host is not None:
            self.host.set_active(self.robot_id, False)

    def cleanup(self) -> None:
        self.deactivate()
        if self._odom is not None:
            self.destroy_lifecycle_publisher(self._odom)
            self._odom = None

    def publish_pose(self, x: float, y: float, yaw: float, now: float) -> None:
        """The robot's pose on ``odom`` (only while active)."""
        if not self._active or self._odom is None:
            return
        msg = Odometry()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame
        msg.child_frame_id = f"robot_{self.robot_id}/base_link"
        msg.pose.pose.position.x = float(x)
        msg.pose.pose.position.y = float(y)
        msg.pose.pose.orientation.z = math.sin(yaw / 2)
        msg.pose.pose.orientation.w = math.cos(yaw / 2)
        self._odom.publish(msg)


class Faces:
    """Every :class:`RobotFace` of one ``swarm_node`` and the one summary publisher they share:
    the host calls :meth:`on_status` for each report and :meth:`on_move` after moving."""

    def __init__(self, node: Node, faces: list[RobotFace], namespace: str) -> None:
        self.faces = {f.robot_id: f for f in faces}
        self._next_pose = -math.inf
        self._summary = node.create_publisher(
            String, f"/{namespace.strip('/')}/summary", reliable_qos()
        )
        self._typed = summary_publisher(node.create_publisher, namespace)

    def on_status(self, robot_id: int, status: dict[str, Any]) -> None:
        self._summary.publish(String(data=summary_line(status)))
        if self._typed is not None:
            self._typed(status)

    def on_move(self, poses: Callable[[], dict[int, Pose]], now: float) -> None:
        """Publish every robot's pose, at most every :data:`POSE_PERIOD_S` of ROS time."""
        if now < self._next_pose:
            return
        self._next_pose = now + POSE_PERIOD_S
        for rid, (x, y, yaw) in poses().items():
            face = self.faces.get(rid)
            if face is not None:
                face.publish_pose(x, y, yaw, now)
