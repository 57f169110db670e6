"""``plant_node``: a Gazebo-free stand-in for the ROS side of ``sim:=gazebo``.

In Gazebo each robot model runs two systems (worlds/models/diff_bot/model.sdf): ``DiffDrive``
takes ``/model/<name>/cmd_vel`` (clamped to 2 m/s and 3 rad/s, the last command held until the
next) and ``OdometryPublisher`` publishes the model's world pose on ``/model/<name>/odometry``
at 10 Hz (frame ``odom``, child ``<name>/base_link``, planar), which ros_gz_bridge turns into
``geometry_msgs/Twist`` and ``nav_msgs/Odometry``. This node does the same for every robot with a
unicycle model on ROS time, inside the arena's walls, so the ``cmd_vel`` controller of
:mod:`gossip_learning.nodes.mobility` runs end to end without a simulator (``sim:=plant``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry

from gossip_learning.nodes.base import ParamNode, run_node
from gossip_learning.nodes.common import require

PARAMETERS: dict[str, tuple[Any, str]] = {
    "names": (["robot_0"], "Model names; robot i listens on /model/<name>/cmd_vel."),
    "x0": ([50.0], "Start x of each robot (metres)."),
    "y0": ([50.0], "Start y of each robot."),
    "yaw0": ([0.0], "Start heading of each robot (radians)."),
    "area": ([100.0, 100.0], "Arena [width, height]: walls at 0 and there stop a robot."),
    "rate_hz": (10.0, "Odometry rate, as the OdometryPublisher's odom_publish_frequency."),
    "max_linear": (2.0, "Largest |linear.x| (DiffDrive max_linear_velocity, m/s)."),
    "max_angular": (3.0, "Largest |angular.z| (DiffDrive max_angular_velocity, rad/s)."),
}


class PlantNode(ParamNode):
    """Diff-drive robots integrating their cmd_vel and publishing their world pose."""

    def __init__(self, node_name: str = "plant", **node_options: Any) -> None:
        super().__init__(node_name, PARAMETERS, **node_options)
        p = self.params
        names = [str(n) for n in p["names"]]
        n = len(names)
        require("names", names, n > 0 and all(names), "a non-empty list of model names")
        for key in ("x0", "y0", "yaw0"):
            require(key, p[key], len(p[key]) == n, f"a list of {n} numbers (one per name)")
        require("rate_hz", p["rate_hz"], 0.1 <= p["rate_hz"] <= 1000, "0.1..1000")
        area = [float(a) for a in p["area"]]
        require("area", area, len(area) == 2 and min(area) > 0, "[width, height], both > 0")
        self.area = (area[0], area[1])
        self.max_linear, self.max_angular = float(p["max_linear"]), float(p["max_angular"])
        self.names = names
        self.pose = [[float(x), float(y), float(t)] for x, y, t in zip(
            p["x0"], p["y0"], p["yaw0"], strict=True)]  # fmt: skip
        self.cmd = [(0.0, 0.0)] * n
        self.commands = 0  # cmd_vel messages received, all robots
        self._pubs = [
            self.create_publisher(Odometry, f"/model/{name}/odometry", 10) for name in names
        ]
        for i, name in enumerate(names):
            self.create_subscription(Twist, f"/model/{name}/cmd_vel", self._cmd_handler(i), 10)
        self._last: float | None = None
        self.travelled = [0.0] * n  # metres each robot moved
        self._timer = self.create_timer(1.0 / p["rate_hz"], self._tick)

    def _cmd_handler(self, i: int) -> Callable[[Twist], None]:
        return lambda msg: self._on_cmd(i, msg)

    def _on_cmd(self, i: int, msg: Twist) -> None:
        v = max(-self.max_linear, min(self.max_linear, float(msg.linear.x)))
        w = max(-self.max_angular, min(self.max_angular, float(msg.angular.z)))
        self.cmd[i] = (v, w)
        self.commands += 1

    def step(self, dt: float) -> None:
        """Integrate every robot's held command for ``dt`` seconds (exact for constant v, w)."""
        w_max, h_max = self.area
        for k, (pose, (v, w)) in enumerate(zip(self.pose, self.cmd, strict=True)):
            x, y, th = pose
            if abs(w) > 1e-9:
                x += v / w * (math.sin(th + w * dt) - math.sin(th))
                y -= v / w * (math.cos(th + w * dt) - math.cos(th))
            else:
                x += v * dt * math.cos(th)
                y += v * dt * math.sin(th)
            th = math.atan2(math.sin(th + w * dt), math.cos(th + w * dt))
            x, y = min(max(x, 0.0), w_max), min(max(y, 0.0), h_max)
            self.travelled[k] += math.hypot(x - pose[0], y - pose[1])
            pose[:] = [x, y, th]

    def _tick(self) -> None:
        now = self.get_clock().now()
        t = float(now.nanoseconds) * 1e-9
        if self._last is not None and t > self._last:
            self.step(t - self._last)
        self._last = t
        stamp = now.to_msg()
        for name, pub, (x, y, th), (v, w) in zip(
            self.names, self._pubs, self.pose, self.cmd, strict=True
        ):
            msg = Odometry()
            msg.header.stamp = stamp
            msg.header.frame_id = "odom"
            msg.child_frame_id = f"{name}/base_link"
            msg.pose.pose.position.x = x
            msg.pose.pose.position.y = y
            msg.pose.pose.orientation.z = math.sin(th / 2)
            msg.pose.pose.orientation.w = math.cos(th / 2)
            msg.twist.twist.linear.x = v
            msg.twist.twist.angular.z = w
            pub.publish(msg)

    def before_exit(self) -> None:
        """Log what the plant did (the launch test reads it)."""
        self.get_logger().info(
            f"plant: {self.commands} cmd_vel commands, robots travelled "
            f"{min(self.travelled):.1f}..{max(self.travelled):.1f} m"
        )

    def destroy_node(self) -> None:
        """Log what the plant did, then destroy the node."""
        self.before_exit()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run gossip_learning plant_node``."""
    return run_node("plant_node", PlantNode, args, multi_threaded=False)
