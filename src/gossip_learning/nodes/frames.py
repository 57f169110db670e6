"""Poses in one frame: every robot compares positions (range filter, markers, status) in the
declared ``swarm_frame``. Odometry in that frame is taken as it is; odometry in the robot's own
``odom_frame`` is brought into it by a static offset (``odom_offset``: that frame's pose in the
swarm frame); anything else is refused with a warning. No rclpy import.
"""

from __future__ import annotations

import math
from typing import Any

#: Frame parameters of every robot (robot_node, and each robot a swarm_node hosts).
FRAME_PARAMETERS: dict[str, tuple[Any, str]] = {
    "swarm_frame": (
        "world",
        "Frame all robots compare positions in (range filter, status, markers); odometry in "
        "another frame is refused unless that frame is odom_frame.",
    ),
    "odom_frame": (
        "",
        "Frame of this robot's odometry when it is not swarm_frame (e.g. robot_3/odom, as "
        "/odometry/filtered on a real robot); empty: odometry must be in swarm_frame.",
    ),
    "odom_offset": (
        [0.0, 0.0, 0.0],
        "Pose [x, y, yaw] (m, m, rad) of odom_frame in swarm_frame: where this robot's odometry "
        "frame lies in the swarm frame (a static offset).",
    ),
    "odom_offset_from_tf": (
        False,
        "Look odom_frame's pose in swarm_frame up on TF (tf2_ros, e.g. a static_transform_publisher"
        ") instead of odom_offset. Needs a ROS install with tf2_ros; untested (CI has no tf2_ros).",
    ),
}

_FRAME_ID = r"^[A-Za-z_/][A-Za-z0-9_/]*$"


class OdomFrame:
    """Turns a robot's odometry into swarm-frame positions (see the module)."""

    def __init__(self, swarm_frame: str, odom_frame: str, offset: list[float]) -> None:
        import re

        if not re.match(_FRAME_ID, swarm_frame):
            raise ValueError(
                f"parameter 'swarm_frame': {swarm_frame!r} is not a frame id (letters, digits, "
                "'_' and '/')"
            )
        if odom_frame and not re.match(_FRAME_ID, odom_frame):
            raise ValueError(f"parameter 'odom_frame': {odom_frame!r} is not a frame id")
        if odom_frame == swarm_frame:
            odom_frame = ""  # the same frame: nothing to transform
        if len(offset) != 3 or not all(math.isfinite(v) for v in offset):
            raise ValueError(
                f"parameter 'odom_offset': {list(offset)!r} must be three finite numbers "
                "[x, y, yaw]"
            )
        self.swarm_frame, self.odom_frame = swarm_frame, odom_frame
        self.set_offset(*offset)
        self.refused = 0  # odometry messages in an unexpected frame

    def set_offset(self, x: float, y: float, yaw: float) -> None:
        """Pose of ``odom_frame`` in ``swarm_frame``."""
        self.offset = (float(x), float(y), float(yaw))
        self._cos, self._sin = math.cos(yaw), math.sin(yaw)

    def to_swarm(self, frame_id: str, x: float, y: float) -> tuple[float, float] | None:
        """``(x, y)`` given in ``frame_id`` as a swarm-frame position; None (counted in
        :attr:`refused`) when ``frame_id`` is neither frame."""
        frame = frame_id.lstrip("/")
        if frame == self.swarm_frame.lstrip("/"):
            return x, y
        if self.odom_frame and frame == self.odom_frame.lstrip("/"):
            ox, oy, _ = self.offset
            return ox + self._cos * x - self._sin * y, oy + self._sin * x + self._cos * y
        self.refused += 1
        return None

    def mismatch(self, robot_id: int, frame_id: str) -> str:
        """The warning for odometry in ``frame_id``."""
        expected = repr(self.swarm_frame) + (f" or {self.odom_frame!r}" if self.odom_frame else "")
        return (
            f"robot {robot_id}: odometry in frame {frame_id!r} refused ({self.refused} so far): "
            f"poses are compared in swarm_frame {expected}; set odom_frame:={frame_id or '<frame>'}"
            f" and odom_offset:=[x, y, yaw] (that frame's pose in {self.swarm_frame!r}), or "
            "publish the odometry in the swarm frame"
        )
