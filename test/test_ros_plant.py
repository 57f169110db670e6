"""plant_node's diff drive: the held cmd_vel, integrated exactly, clamped like diff_bot's DiffDrive,
inside the arena's walls (real rclpy node on a private domain; no spinning needed)."""

from __future__ import annotations

import math

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")
from geometry_msgs.msg import Twist  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

import test_ros_nodes  # noqa: E402
from gossip_learning.nodes.plant import PlantNode  # noqa: E402

pytestmark = pytest.mark.ros
ros_context = test_ros_nodes.ros_context


def _plant(ctx: Context, **params: object) -> PlantNode:
    values = {"names": ["a", "b"], "x0": [10.0, 50.0], "y0": [10.0, 50.0], "yaw0": [0.0, 0.0]}
    values.update(params)  # type: ignore[arg-type]
    return PlantNode(
        context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
    )


def _twist(v: float, w: float) -> Twist:
    t = Twist()
    t.linear.x, t.angular.z = v, w
    return t


def test_plant_integrates_held_commands_and_clamps_them(ros_context: Context) -> None:
    plant = _plant(ros_context)
    try:
        plant._on_cmd(0, _twist(1.0, 0.0))  # straight ahead at 1 m/s
        plant._on_cmd(1, _twist(1.0, 0.5))  # an arc of radius 2 m
        for _ in range(20):
            plant.step(0.1)
        assert plant.pose[0][:2] == pytest.approx([12.0, 10.0])
        x, y, th = plant.pose[1]
        assert th == pytest.approx(1.0)
        assert (x, y) == pytest.approx((50 + 2 * math.sin(1.0), 50 + 2 * (1 - math.cos(1.0))))
        plant._on_cmd(0, _twist(9.0, -9.0))
        assert plant.cmd[0] == (2.0, -3.0)  # DiffDrive's max_linear / max_angular
        plant._on_cmd(0, _twist(2.0, 0.0))
        plant.pose[0][2] = math.pi  # towards the wall at x = 0
        plant.step(10.0)
        assert plant.pose[0][0] == 0.0 and plant.travelled[0] == pytest.approx(2.0 + 12.0)
    finally:
        plant.destroy_node()


def test_plant_rejects_pose_lists_of_the_wrong_length(ros_context: Context) -> None:
    with pytest.raises(ValueError, match="parameter 'y0'"):
        _plant(ros_context, y0=[1.0])
