"""``swarm_node``: many robots (and their kinematic drivers) in one process, one executor.

For large swarms on one machine: N :class:`RobotNode` and N :class:`MobilityNode` objects share
one :class:`~rclpy.executors.MultiThreadedExecutor` and one training thread pool instead of 2N
processes. Each robot still has its own node, namespace ``robot_<i>``, topics and callback group,
so what it sends and hears is the same as with one process per robot. Tests use
:class:`SwarmHost` directly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from gossip_learning.errors import GossipLearningError
from gossip_learning.mobility import model_params
from gossip_learning.nodes.base import LINGER_S
from gossip_learning.nodes.common import coerce
from gossip_learning.nodes.mobility import PARAMETERS as MOBILITY_PARAMETERS
from gossip_learning.nodes.mobility import MobilityNode
from gossip_learning.nodes.robot import PARAMETERS as ROBOT_PARAMETERS
from gossip_learning.nodes.robot import RobotNode
from gossip_learning.transports.ros import InvalidHandle, shutdown, spin_tolerant

#: Robot parameters the host passes through to every robot (robot_id is set per robot).
PASSED = [name for name in ROBOT_PARAMETERS if name != "robot_id"]
HOST_PARAMETERS: dict[str, tuple[Any, str]] = {
    **{name: ROBOT_PARAMETERS[name] for name in PASSED},
    "x0": ([0.0], "Start x of each robot (one entry per robot)."),
    "y0": ([0.0], "Start y of each robot."),
    "yaw0": ([0.0], "Start heading of each robot (radians)."),
    "mobility_model": ("", "Mobility model for every robot; empty takes mobility.model."),
    "speed": (0.0, "Speed in m/s; 0 takes mobility.speed from the config."),
    "rate_hz": (10.0, "Odometry rate of the kinematic drivers."),
    "threads": (0, "Executor threads; 0 picks min(8, CPUs)."),
}


class SwarmHost:
    """Builds robots ``robot_<i>`` with kinematic drivers and runs them on one executor."""

    def __init__(
        self,
        robot_params: dict[str, Any],
        poses: Sequence[tuple[float, float, float]],
        mobility: dict[str, Any],
        context: Any = None,
        threads: int = 0,
        ids: Sequence[int] | None = None,
    ) -> None:
        self.context = context
        self.pool = ThreadPoolExecutor(
            max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="train"
        )
        self.executor = MultiThreadedExecutor(
            num_threads=threads or min(8, os.cpu_count() or 2), context=context
        )
        self.robots: list[RobotNode] = []
        self.drivers: list[MobilityNode] = []
        for i, (x, y, yaw) in zip(
            ids if ids is not None else range(len(poses)), poses, strict=True
        ):
            ns = f"robot_{i}"
            params = coerce({**robot_params, "robot_id": i}, ROBOT_PARAMETERS)
            robot = RobotNode(
                namespace=ns,
                context=context,
                parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
                train_pool=self.pool,
            )
            drive = {**mobility, "x0": x, "y0": y, "yaw0": yaw, "mode": "kinematic"}
            drive = coerce(drive, MOBILITY_PARAMETERS)
            drive.setdefault("seed", i)
            drive.setdefault("child_frame_id", f"{ns}/base_link")
            driver = MobilityNode(
                namespace=ns,
                context=context,
                parameter_overrides=[Parameter(k, value=v) for k, v in drive.items()],
            )
            self.robots.append(robot)
            self.drivers.append(driver)
            self.executor.add_node(robot)
            self.executor.add_node(driver)

    def spin_once(self, timeout_sec: float = 0.1) -> None:
        """Handle one ready callback (or wait up to ``timeout_sec``)."""
        with contextlib.suppress(InvalidHandle):  # a robot dropped a subscription (cluster change)
            self.executor.spin_once(timeout_sec=timeout_sec)

    @property
    def done(self) -> bool:
        """Whether every robot has run all its rounds."""
        return all(r.done for r in self.robots)

    def close(self) -> None:
        """Destroy every node and stop the executor and the training pool."""
        for node in [*self.robots, *self.drivers]:
            self.executor.remove_node(node)
            node.destroy_node()
        self.executor.shutdown()
        self.pool.shutdown(wait=True)


class _HostParams(Node):
    """Reads the swarm_node's own parameters."""

    def __init__(self) -> None:
        super().__init__("swarm")
        self.values = {
            name: self.declare_parameter(
                name, default, ParameterDescriptor(description=text, read_only=True)
            ).value
            for name, (default, text) in HOST_PARAMETERS.items()
        }


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run gossip_learning swarm_node``."""
    rclpy.init(args=args)
    host = None
    try:
        reader = _HostParams()
        p = reader.values
        reader.destroy_node()
        if not len(p["x0"]) == len(p["y0"]) == len(p["yaw0"]) or not p["x0"]:
            raise ValueError("parameters 'x0', 'y0', 'yaw0' must be lists of one entry per robot")
        from gossip_learning.config import load_config

        cfg = load_config(p["config_file"] or None)
        mob = cfg.mobility
        model = p["mobility_model"] or mob.model
        mobility = {
            "model": model,
            **model_params(model, mob),
            **({"speed": p["speed"]} if p["speed"] else {}),
            "area": [float(a) for a in cfg.swarm.area],
            "rate_hz": p["rate_hz"],
            "use_sim_time": False,
        }
        robot_params = {name: p[name] for name in PASSED}
        robot_params["num_robots"] = robot_params["num_robots"] or len(p["x0"])
        poses = list(zip(p["x0"], p["y0"], p["yaw0"], strict=True))
        host = SwarmHost(robot_params, poses, mobility, threads=int(p["threads"]))
        spin_tolerant(host.executor, until=lambda: host.done)  # every robot ran its rounds
        if host.executor.context.ok():
            end = time.monotonic() + LINGER_S  # let the last statuses reach the monitor
            spin_tolerant(host.executor, until=lambda: time.monotonic() > end)
    except (ValueError, GossipLearningError) as exc:
        print(f"swarm_node: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if host is not None:
            host.close()
        shutdown()
    return 0
