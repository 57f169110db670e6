"""rclpy plumbing the package's nodes share: declared read-only parameters, lifecycle (managed)
nodes that can start themselves, and a main() runner."""

from __future__ import annotations

import contextlib
import faulthandler
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node

from gossip_learning.errors import GossipLearningError
from gossip_learning.nodes.entry import interrupt_once
from gossip_learning.transports.ros import spin_tolerant


def declare_read_only(node: Node, parameters: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declare ``parameters`` (name → (default, description)) read-only; return their values."""
    return {
        name: node.declare_parameter(
            name, default, ParameterDescriptor(description=text, read_only=True)
        ).value
        for name, (default, text) in parameters.items()
    }


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
        **options: Any,
    ) -> None:
        """``options``: more of rclpy ``Node``'s keywords (``start_parameter_services``, ...)."""
        super().__init__(
            node_name,
            namespace=namespace,
            context=context,
            parameter_overrides=list(parameter_overrides or []),
            **options,
        )
        self.params: dict[str, Any] = declare_read_only(self, parameters)


#: Parameters every managed node has.
LIFECYCLE_PARAMETERS: dict[str, tuple[Any, str]] = {
    "autostart": (
        True,
        "Configure and activate at start-up; false: wait in 'unconfigured' for lifecycle "
        "transitions (ros2 lifecycle set, or a launch's ChangeState events).",
    ),
    "lifecycle_services": (
        True,
        "Offer the lifecycle services (change_state, get_state, ...); false saves their DDS "
        "endpoints in large swarms (then only autostart can start the node).",
    ),
}

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE


class ManagedNode(LifecycleNodeMixin, Node):
    """A lifecycle node with read-only parameters (``self.params``; :data:`LIFECYCLE_PARAMETERS`
    are added). Subclasses implement :meth:`configure`, :meth:`activate`, :meth:`deactivate` and
    :meth:`cleanup`; an exception in :meth:`configure` fails the transition and is kept in
    ``self.failure``. ``done`` turns true after the shutdown transition."""

    def __init__(
        self,
        node_name: str,
        parameters: Mapping[str, tuple[Any, str]],
        *,
        namespace: str | None = None,
        context: Any = None,
        parameter_overrides: Sequence[Any] | None = None,
    ) -> None:
        Node.__init__(
            self,
            node_name,
            namespace=namespace,
            context=context,
            parameter_overrides=list(parameter_overrides or []),
        )
        self.params: dict[str, Any] = declare_read_only(
            self, {**parameters, **LIFECYCLE_PARAMETERS}
        )
        LifecycleNodeMixin.__init__(
            self, enable_communication_interface=bool(self.params["lifecycle_services"])
        )
        self.failure: BaseException | None = None
        self.done = False
        self._timer: Any = None  # the timer :meth:`activate` starts and :meth:`deactivate` stops

    def start(self) -> None:
        """Configure, then activate; re-raise what made configuring fail."""
        if self.trigger_configure() != SUCCESS:
            raise self.failure or RuntimeError(f"{self.get_name()}: configure failed")
        if self.trigger_activate() != SUCCESS:
            raise self.failure or RuntimeError(f"{self.get_name()}: activate failed")

    def autostart(self) -> None:
        """:meth:`start` if the ``autostart`` parameter says so."""
        if self.params["autostart"]:
            self.start()

    # hooks for subclasses
    def configure(self) -> None:
        """Load what the node needs and create its publishers and subscriptions."""

    def activate(self) -> None:
        """Start the node's timers."""

    def deactivate(self) -> None:
        """Stop the timer :meth:`activate` started (``self._timer``)."""
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def cleanup(self) -> None:
        """Release what :meth:`configure` made."""

    # lifecycle callbacks
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.failure = None
        try:
            self.configure()
        except Exception as exc:  # kept for start(); the transition fails back to unconfigured
            self.failure = exc
            self.get_logger().error(f"configure failed: {exc}")
            self.cleanup()
            return FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if state.label == "active":
            self.deactivate()
        if state.label in ("active", "inactive"):
            self.cleanup()
        self.done = True
        return super().on_shutdown(state)


#: Seconds a node that is done keeps spinning, so its last reliable messages reach subscribers.
LINGER_S = 1.0


#: Seconds the DDS teardown of a node process may take once it is done. Fast DDS 2.14 can spin
#: for good in DomainParticipant::set_listener while destroying the participant (seen about once
#: in 60 processes on a loaded 2-core machine); the launch would then never exit.
TEARDOWN_S = 5.0


def ignore_interrupts() -> None:
    """Ignore SIGINT from now on (the process is tearing down and exits by itself)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def teardown_guard(seconds: float = TEARDOWN_S) -> Iterator[None]:
    """Bound the teardown inside the block: after ``seconds`` the process prints every thread's
    stack to stderr and exits with status 1. The watchdog is faulthandler's C thread, because
    the hang is inside a C call that holds the GIL, where no Python timer or signal handler
    would ever run. SIGINT is ignored from here on (see :func:`interrupt_once`)."""
    ignore_interrupts()
    sys.stdout.flush()
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def run_node(
    executable: str, make: Callable[[], Node], args: list[str] | None, multi_threaded: bool
) -> NoReturn:
    """Init rclpy, spin the node ``make()`` builds until shutdown, or until it says it is
    ``done`` (then a short linger and exit 0); exit 2 on a bad parameter, 0 after Ctrl-C. A node
    with a ``before_exit()`` method (the monitor's files) gets it called before the process ends
    here (:func:`gossip_learning.nodes.process.end_process`)."""
    interrupt_once()
    rclpy.init(args=args)
    node: Node | None = None
    executor: MultiThreadedExecutor | SingleThreadedExecutor | None = None
    code = 0
    interrupted = False
    try:
        node = make()  # a ManagedNode has configured and activated itself if autostart is set
        executor = MultiThreadedExecutor() if multi_threaded else SingleThreadedExecutor()
        executor.add_node(node)
        spin_tolerant(executor, until=lambda: bool(getattr(node, "done", False)))
        if executor.context.ok():
            end = time.monotonic() + LINGER_S
            spin_tolerant(executor, until=lambda: time.monotonic() > end)
    except (ValueError, GossipLearningError) as exc:
        print(f"{executable}: {exc}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        interrupted = True
    except Exception:  # printed in full; the process still ends without a DDS teardown
        traceback.print_exc()
        code = 1
    ignore_interrupts()
    if code == 0:
        code = int(getattr(node, "exit_code", 0))
    # no per-entity DDS teardown while the whole swarm ends at once (see nodes/process.py)
    from gossip_learning.nodes.process import end_process

    end_process(code, [node] if node is not None else [], executor, interrupted or not rclpy.ok())
