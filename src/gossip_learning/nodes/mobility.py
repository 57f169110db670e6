"""``mobility_node``: moves one simulated robot with the engine's mobility models.

``mode:=kinematic`` integrates the model on ROS time and publishes ``odom``
(``nav_msgs/Odometry``, pose in the arena frame): no simulator needed. ``mode:=gazebo`` reads
the robot's real pose from ``odom`` (bridged from Gazebo) and publishes ``cmd_vel``
(``geometry_msgs/Twist``) that steers it along the model's heading; the model turns it back at
the arena walls.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry

from gossip_learning.mobility import MOBILITY_MODELS, MobilityModel, make_mobility, model_params
from gossip_learning.nodes.base import ParamNode, run_node
from gossip_learning.nodes.common import require

MODES = ("kinematic", "gazebo")

PARAMETERS: dict[str, tuple[Any, str]] = {
    "mode": ("kinematic", "kinematic (publish odom) or gazebo (publish cmd_vel, read odom)."),
    "model": ("random_direction", "Mobility model: random_direction, random_waypoint or static."),
    "speed": (1.0, "random_direction: speed in m/s."),
    "turn_prob": (0.05, "random_direction: chance per second of a new heading."),
    "speed_min": (0.5, "random_waypoint: slowest speed (m/s)."),
    "speed_max": (1.5, "random_waypoint: fastest speed (m/s)."),
    "pause": (0.0, "random_waypoint: seconds to wait at a waypoint."),
    "area": ([100.0, 100.0], "Arena width and height in metres; the arena is [0, W] x [0, H]."),
    "seed": (0, "Seed of this robot's mobility randomness."),
    "x0": (50.0, "Start x (kinematic mode)."),
    "y0": (50.0, "Start y (kinematic mode)."),
    "yaw0": (0.0, "Start heading in radians."),
    "rate_hz": (10.0, "Update rate in Hz (0.1..1000)."),
    "frame_id": ("world", "Frame of the published odometry."),
    "child_frame_id": ("base_link", "Child frame of the published odometry."),
    "heading_gain": (2.0, "gazebo: angular speed per radian of heading error."),
    "max_angular": (2.0, "gazebo: largest angular speed command (rad/s)."),
}


def yaw_of(q: Any) -> float:
    """Yaw of a quaternion message."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


class MobilityNode(ParamNode):
    """Kinematic odometry source or Gazebo velocity controller for one robot."""

    def __init__(self, node_name: str = "mobility", **node_options: Any) -> None:
        """``node_options``: namespace, context, parameter_overrides (see :class:`ParamNode`)."""
        super().__init__(node_name, PARAMETERS, **node_options)
        p = self.params
        self.mode = require("mode", p["mode"], p["mode"] in MODES, f"one of {', '.join(MODES)}")
        require(
            "model",
            p["model"],
            p["model"] in MOBILITY_MODELS,
            f"one of {', '.join(MOBILITY_MODELS)}",
        )
        require("rate_hz", p["rate_hz"], 0.1 <= p["rate_hz"] <= 1000, "0.1..1000")
        area = tuple(float(v) for v in p["area"])
        require("area", list(area), len(area) == 2 and min(area) > 0, "[width, height], both > 0")
        x0 = require("x0", p["x0"], 0 <= p["x0"] <= area[0], f"inside [0, {area[0]:g}]")
        y0 = require("y0", p["y0"], 0 <= p["y0"] <= area[1], f"inside [0, {area[1]:g}]")
        extra = model_params(p["model"], p)
        if p["model"] == "random_direction":
            extra["headings"] = [p["yaw0"]]
        rng = np.random.default_rng(int(require("seed", p["seed"], p["seed"] >= 0, ">= 0")))
        self.model: MobilityModel = make_mobility(
            p["model"], [[x0, y0]], (area[0], area[1]), rng, **extra
        )
        self.yaw = float(p["yaw0"])
        self.frame_id = str(p["frame_id"])
        self.child_frame_id = str(p["child_frame_id"])
        self.gain = float(p["heading_gain"])
        self.max_angular = float(p["max_angular"])
        self._last: float | None = None
        self._pose: tuple[float, float, float] | None = None
        if self.mode == "kinematic":
            self._odom_pub = self.create_publisher(Odometry, "odom", 10)
        else:
            self._cmd_pub = self.create_publisher(Twist, "cmd_vel", 10)
            self.create_subscription(Odometry, "odom", self._on_odom, 10)
        self._timer = self.create_timer(1.0 / p["rate_hz"], self._tick)

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _on_odom(self, msg: Odometry) -> None:
        pos = msg.pose.pose.position
        self._pose = (pos.x, pos.y, yaw_of(msg.pose.pose.orientation))

    def _tick(self) -> None:
        now = self._now()
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        if dt < 0:  # time jumped back (simulation reset)
            return
        if self.mode == "kinematic":
            if dt > 0:
                self.model.step(dt)
            self._publish_odom()
        elif self._pose is not None:
            self._steer(dt)

    def _publish_odom(self) -> None:
        x, y = self.model.positions[0]
        v = self.model.velocity()[0]
        if np.hypot(v[0], v[1]) > 0:
            self.yaw = math.atan2(v[1], v[0])
        msg = Odometry()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        msg.child_frame_id = self.child_frame_id
        msg.pose.pose.position.x = float(x)
        msg.pose.pose.position.y = float(y)
        msg.pose.pose.orientation.z = math.sin(self.yaw / 2)
        msg.pose.pose.orientation.w = math.cos(self.yaw / 2)
        msg.twist.twist.linear.x = float(np.hypot(v[0], v[1]))
        self._odom_pub.publish(msg)

    def _steer(self, dt: float) -> None:
        assert self._pose is not None
        x, y, yaw = self._pose
        w, h = self.model.area
        self.model.positions[0] = (min(max(x, 0.0), w), min(max(y, 0.0), h))
        if dt > 0:
            self.model.step(dt)  # bounces and re-headings; the real pose overrides the position
        v = self.model.velocity()[0]
        speed = float(np.hypot(v[0], v[1]))
        cmd = Twist()
        if speed > 0:
            err = math.atan2(
                math.sin(math.atan2(v[1], v[0]) - yaw), math.cos(math.atan2(v[1], v[0]) - yaw)
            )
            cmd.angular.z = max(-self.max_angular, min(self.max_angular, self.gain * err))
            cmd.linear.x = speed * max(0.0, math.cos(err))
        self._cmd_pub.publish(cmd)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run gossip_learning mobility_node``."""
    return run_node("mobility_node", MobilityNode, args, multi_threaded=False)
