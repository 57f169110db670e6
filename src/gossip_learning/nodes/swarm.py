"""``swarm_node``: many robots in one process (``robot_ids``: all, a range, or one).

``main`` runs a :class:`~gossip_learning.nodes.host.SharedHost`: one clock, one driver, one
subscription per swarm topic for the process's robots, the engine's mobility model and batched
trainer (see that module for why not one node per robot). The launch file starts one swarm_node
per robot (one DDS participant each) or one for the whole swarm (``single_process:=true``).
:class:`SwarmHost` is the older node-per-robot host (:class:`RobotNode` + :class:`MobilityNode`
per robot on one executor); tests use it to run real robot nodes side by side.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import rclpy
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from gossip_learning.errors import GossipLearningError
from gossip_learning.nodes.base import LINGER_S, ParamNode
from gossip_learning.nodes.common import check_namespace, coerce, require
from gossip_learning.nodes.host import SharedHost
from gossip_learning.nodes.mobility import PARAMETERS as MOBILITY_PARAMETERS
from gossip_learning.nodes.mobility import MobilityNode
from gossip_learning.nodes.process import end_process, process_age_s
from gossip_learning.nodes.robot import PARAMETERS as ROBOT_PARAMETERS
from gossip_learning.nodes.robot import RobotNode
from gossip_learning.transports.ros import InvalidHandle, spin_tolerant

#: Robot parameters the node-per-robot :class:`SwarmHost` passes to every robot.
PASSED = [name for name in ROBOT_PARAMETERS if name != "robot_id"]
SHARED = (
    "num_robots", "config_file", "method", "seed", "comm_range", "rounds",
    "swarm_namespace", "epoch", "tick_period", "evaluate", "publish_model", "data_dir",
)  # fmt: skip
#: swarm_node's parameters (the robots' own, where they mean the same, plus hosting and motion).
HOST_PARAMETERS: dict[str, tuple[Any, str]] = {
    **{name: ROBOT_PARAMETERS[name] for name in SHARED},
    "robot_ids": ([-1], "Ids of the robots this process hosts; [-1]: all of 0..num_robots-1."),
    "motion": (
        "time",
        "time: robots move continuously at mobility.speed m/s of ROS time; round: they move "
        "once between rounds by the engine's step (positions equal `gossip-learning run`).",
    ),
    "mobility_model": ("", "Mobility model for every robot; empty takes mobility.model."),
    "speed": (0.0, "Speed in m/s; 0 takes mobility.speed from the config."),
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


def host_config(p: dict[str, Any]) -> Any:
    """The experiment config of a swarm_node's parameters (launch overrides applied)."""
    from gossip_learning.config import load_config

    require("num_robots", p["num_robots"], p["num_robots"] >= 0, ">= 0 (0 = from config)")
    require("seed", p["seed"], p["seed"] >= 0, ">= 0")
    require("rounds", p["rounds"], p["rounds"] >= 0, ">= 0 (0 = from config)")
    require("speed", p["speed"], p["speed"] >= 0, ">= 0 (0 = from config)")
    require("tick_period", p["tick_period"], 0.001 <= p["tick_period"] <= 1.0, "0.001..1")
    overrides = []
    if p["num_robots"]:
        overrides.append(f"swarm.num_robots={int(p['num_robots'])}")
    if p["comm_range"]:
        overrides.append(f"channel.comm_range={float(p['comm_range'])}")
    if p["speed"]:
        overrides.append(f"mobility.speed={float(p['speed'])}")
    if p["mobility_model"]:
        overrides.append(f"mobility.model={p['mobility_model']}")
    return load_config(p["config_file"] or None, overrides)


def make_host(node: Node, bus: Node, p: dict[str, Any]) -> SharedHost:
    """A :class:`SharedHost` on ``node`` and ``bus`` from swarm_node parameters ``p``."""
    cfg = host_config(p)
    ids = [int(i) for i in p["robot_ids"]]
    if ids == [-1]:
        ids = list(range(cfg.swarm.num_robots))
    return SharedHost(
        node, bus, cfg, int(p["seed"]), ids,
        method=str(p["method"]), epoch=float(p["epoch"]), rounds=int(p["rounds"]),
        namespace=check_namespace(str(p["swarm_namespace"])), motion=str(p["motion"]),
        tick=float(p["tick_period"]), evaluate_models=bool(p["evaluate"]),
        publish_model=bool(p["publish_model"]), data_dir=str(p["data_dir"]),
    )  # fmt: skip


def _host_nodes(argv: list[str] | None) -> tuple[Node, Node, dict[str, Any]]:
    """The host node (named after its one robot, or ``swarm_host``), its parameters, and the
    un-spun bus node that holds the shared subscriptions."""
    probe = ParamNode("swarm_host_params", HOST_PARAMETERS)
    p = probe.params
    probe.destroy_node()
    ids = [int(i) for i in p["robot_ids"]]
    if len(ids) == 1 and ids[0] >= 0:
        ns, name = f"robot_{ids[0]}", "robot"
    else:
        ns, name = "", f"swarm_host_{ids[0]}" if ids[0] >= 0 else "swarm_host"
    node = Node(name, namespace=ns or None)
    # never spun: its parameter services could not answer, so it has none (fewer DDS endpoints)
    bus = Node(
        f"{name}_bus", namespace=ns or None, start_parameter_services=False, enable_rosout=False
    )
    return node, bus, p


def main(args: list[str] | None = None) -> NoReturn:
    """Entry point of ``ros2 run gossip_learning swarm_node``: robots ``robot_ids`` (all by
    default) on one :class:`SharedHost`; exits 0 after their last round, 2 on a bad
    parameter (the process ends here: :func:`~gossip_learning.nodes.process.end_process`)."""
    rclpy.init(args=args)
    nodes: list[Node] = []
    executor = None
    host = None
    code = 0
    interrupted = False
    try:
        started = time.monotonic()
        node, bus, p = _host_nodes(args)
        nodes = [node, bus]
        host = make_host(node, bus, p)
        # benchmarks/ros_swarm.py counts robots up from this line
        node.get_logger().info(
            f"ready: {len(host.ids)} robot(s) in {time.monotonic() - started:.1f} s "
            f"({process_age_s():.1f} s since process start)"
        )
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_tolerant(executor, until=lambda: host is not None and host.finished)
        if executor.context.ok():
            end = time.monotonic() + LINGER_S  # let the last statuses reach the monitor
            spin_tolerant(executor, until=lambda: time.monotonic() > end)
    except (ValueError, GossipLearningError) as exc:
        print(f"swarm_node: {exc}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        interrupted = True
    except Exception:  # printed in full; the process still ends without a DDS teardown
        traceback.print_exc()
        code = 1
    finally:
        if host is not None:
            host.close()
    # no per-entity DDS teardown while the whole swarm ends at once (see nodes/process.py)
    end_process(code, nodes, executor, interrupted or not rclpy.ok())
