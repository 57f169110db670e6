"""rclpy plumbing the package's nodes share: declared read-only parameters and a main() runner."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node

from gossip_learning.errors import GossipLearningError
from gossip_learning.transports.ros import shutdown, spin_tolerant


class ParamNode(Node):
    """A node whose parameters (name → (default, description)) are declared read-only at start;
    their values are in ``self.params``."""

    def __init__(
        self,
        node_name: str,
        parameters: Mapping[str, tuple[Any, str]],
        *,
        namespace: str | None = None,
        context: Any = None,
        parameter_overrides: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(
            node_name,
            namespace=namespace,
            context=context,
            parameter_overrides=list(parameter_overrides or []),
        )
        self.params: dict[str, Any] = {
            name: self.declare_parameter(
                name, default, ParameterDescriptor(description=text, read_only=True)
            ).value
            for name, (default, text) in parameters.items()
        }


#: Seconds a node that is done keeps spinning, so its last reliable messages reach subscribers.
LINGER_S = 1.0


def run_node(
    executable: str, make: Callable[[], Node], args: list[str] | None, multi_threaded: bool
) -> int:
    """Init rclpy, spin the node ``make()`` builds until shutdown, or until it says it is
    ``done`` (then a short linger and exit 0); exit 2 on a bad parameter."""
    rclpy.init(args=args)
    node = None
    executor: MultiThreadedExecutor | SingleThreadedExecutor | None = None
    try:
        node = make()
        executor = MultiThreadedExecutor() if multi_threaded else SingleThreadedExecutor()
        executor.add_node(node)
        spin_tolerant(executor, until=lambda: bool(getattr(node, "done", False)))
        if executor.context.ok():
            end = time.monotonic() + LINGER_S
            spin_tolerant(executor, until=lambda: time.monotonic() > end)
    except (ValueError, GossipLearningError) as exc:
        print(f"{executable}: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        shutdown()
    return 0
