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
from gossip_learning.nodes.base import (
    LINGER_S,
    ParamNode,
    ignore_interrupts,
    interrupt_once,
)
from gossip_learning.nodes.common import check_namespace, coerce, require
from gossip_learning.nodes.face import Faces, RobotFace
from gossip_learning.nodes.health import EXIT_UNHEALTHY, HEALTH_PARAMETERS, Health
from gossip_learning.nodes.host import SharedHost
from gossip_learning.nodes.mobility import PARAMETERS as MOBILITY_PARAMETERS
from gossip_learning.nodes.mobility import MobilityNode
from gossip_learning.nodes.pacing import scaled, scaled_tick
from gossip_learning.nodes.process import end_process, lean_imports, process_age_s
from gossip_learning.nodes.robot import PARAMETERS as ROBOT_PARAMETERS
from gossip_learning.nodes.robot import RobotNode
from gossip_learning.transports.ros import InvalidHandle, spin_tolerant

#: Robot parameters the node-per-robot :class:`SwarmHost` passes to every robot.
PASSED = [name for name in ROBOT_PARAMETERS if name != "robot_id"]
SHARED = (
    "num_robots", "config_file", "method", "seed", "comm_range", "rounds",
    "swarm_namespace", "epoch", "tick_period", "evaluate", "publish_model", "data_dir",
    "robot_key_file", "keyring_file", "phase_scale",
)  # fmt: skip
#: Seconds a finished swarm_node waits for its last reports to be acknowledged (SharedHost).
REPORT_ACK_S = 10.0
#: No ``~/get_type_description`` service (two DDS endpoints) on a node nobody queries.
NO_TYPE_SERVICE = Parameter("start_type_description_service", value=False)
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
    "range_filter": (
        True,
        "Filter frames by the configured channel at the receiver; false where the network "
        "itself drops them (gossip-learning fleet).",
    ),
    "clock_offset": (0.0, "Seconds added to this process's clock (fleet rehearsal of skew)."),
    "clock_drift_ppm": (0.0, "Drift of this process's clock in parts per million."),
    "swarm_frame": ROBOT_PARAMETERS["swarm_frame"],
    "robot_nodes": (
        True,
        "Give every hosted robot its lifecycle node /robot_<i>/robot (robot_node's parameters, "
        "lifecycle, /robot_<i>/odom); false: none (fewest DDS endpoints, nothing to manage).",
    ),
    **HEALTH_PARAMETERS,
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
        nodes: list[Node] = [*self.robots, *self.drivers]  # typed: without rclpy both are Any
        for node in nodes:
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
    from gossip_learning.identity import node_overrides

    overrides += node_overrides(p["robot_key_file"], p["keyring_file"])
    return scaled(load_config(p["config_file"] or None, overrides), p["phase_scale"])


def hosted_ids(p: dict[str, Any]) -> list[int]:
    """The ids a swarm_node's parameters ask for (all of the swarm for ``[-1]``)."""
    ids = [int(i) for i in p["robot_ids"]]
    return list(range(host_config(p).swarm.num_robots)) if ids == [-1] else ids


def make_host(node: Node, bus: Node, p: dict[str, Any]) -> SharedHost:
    """A :class:`SharedHost` on ``node`` and ``bus`` from swarm_node parameters ``p``."""
    cfg = host_config(p)
    ids = hosted_ids(p)
    log = node.get_logger()
    health = Health(
        float(p["warn_after_s"]), float(p["fail_after_s"]), log.warning, log.error, log.info
    )
    return SharedHost(
        node, bus, cfg, int(p["seed"]), ids,
        method=str(p["method"]), epoch=float(p["epoch"]), rounds=int(p["rounds"]),
        namespace=check_namespace(str(p["swarm_namespace"])), motion=str(p["motion"]),
        tick=scaled_tick(float(p["tick_period"]), p["phase_scale"]),
        evaluate_models=bool(p["evaluate"]),
        publish_model=bool(p["publish_model"]), data_dir=str(p["data_dir"]),
        range_filter=bool(p["range_filter"]), clock_offset=float(p["clock_offset"]),
        clock_drift_ppm=float(p["clock_drift_ppm"]),
        health=health, log_rounds=bool(p["log_rounds"]), frame=str(p["swarm_frame"]),
        phase_scale=float(p["phase_scale"]),
    )  # fmt: skip


def _host_nodes(
    argv: list[str] | None,
) -> tuple[Node, Node, dict[str, Any], list[RobotFace]]:
    """The host node (its one robot's :class:`RobotFace`, or ``swarm_host``), its parameters,
    the un-spun bus node that holds the shared subscriptions, and the robots' faces."""
    # Nodes that nobody calls get no services and no rosout: every DDS endpoint is announced to,
    # and kept by, every other robot process (memory, discovery traffic at start-up).
    probe = ParamNode(
        "swarm_host_params", HOST_PARAMETERS, start_parameter_services=False,
        enable_rosout=False, parameter_overrides=[NO_TYPE_SERVICE],
    )  # fmt: skip
    p = probe.params
    probe.destroy_node()
    ids = [int(i) for i in p["robot_ids"]]
    faces = [RobotFace(i, p) for i in hosted_ids(p)] if p["robot_nodes"] else []
    if len(ids) == 1 and ids[0] >= 0:
        ns, name = f"robot_{ids[0]}", "robot"
    else:
        ns, name = "", f"swarm_host_{ids[0]}" if ids[0] >= 0 else "swarm_host"
    if len(faces) == 1 and len(ids) == 1:
        node: Node = faces[0]  # one robot: its face is the host node (no second name)
    else:
        node = Node(name, namespace=ns or None)
    # never spun: its parameter services could not answer, so it has none (fewer DDS endpoints)
    bus = Node(
        f"{name}_bus", namespace=ns or None, start_parameter_services=False, enable_rosout=False,
        parameter_overrides=[NO_TYPE_SERVICE],
    )  # fmt: skip
    return node, bus, p, faces


def main(args: list[str] | None = None) -> NoReturn:
    """Entry point of ``ros2 run gossip_learning swarm_node``: robots ``robot_ids`` (all by
    default) on one :class:`SharedHost`; exits 0 after their last round (and after Ctrl-C),
    2 on a bad parameter, 3 when it gave up on a failure (see :mod:`gossip_learning.nodes.health`).
    The process ends here (:func:`~gossip_learning.nodes.process.end_process`)."""
    interrupt_once()
    lean_imports()  # also when main is called without the console entry point (fleet)
    rclpy.init(args=args)
    nodes: list[Node] = []
    executor = None
    host = None
    code = 0
    interrupted = False
    try:
        started = time.monotonic()
        node, bus, p, faces = _host_nodes(args)
        nodes = [*faces, *([] if node in faces else [node]), bus]
        host = make_host(node, bus, p)
        if faces:
            hub = Faces(node, faces, str(p["swarm_namespace"]))
            host.on_status, host.on_move = hub.on_status, hub.on_move
            for face in faces:
                face.attach(host)
        # benchmarks/ros_swarm.py counts robots up from this line
        node.get_logger().info(
            f"ready: {len(host.ids)} robot(s) in {time.monotonic() - started:.1f} s "
            f"({process_age_s():.1f} s since process start)"
        )
        executor = SingleThreadedExecutor()
        for n in nodes[:-1]:  # not the bus: the host takes its frames itself
            executor.add_node(n)
        spin_tolerant(
            executor,
            until=lambda: host is not None and (host.finished or host.failed is not None),
        )
        if host.failed is not None:
            code = EXIT_UNHEALTHY
        if executor.context.ok():
            end = time.monotonic() + LINGER_S  # let the last statuses reach the monitor
            spin_tolerant(executor, until=lambda: time.monotonic() > end)
            host.await_reports(REPORT_ACK_S)
    except (ValueError, GossipLearningError) as exc:
        print(f"swarm_node: {exc}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        interrupted = True
    except Exception:  # printed in full; the process still ends without a DDS teardown
        traceback.print_exc()
        code = 1
    finally:
        ignore_interrupts()
        if host is not None:
            host.close()
    # no per-entity DDS teardown while the whole swarm ends at once (see nodes/process.py)
    end_process(code, nodes, executor, interrupted or not rclpy.ok())
