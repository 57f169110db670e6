"""The launch's Fast DDS discovery server (``discovery:=server``, see
:mod:`gossip_learning.nodes.discovery`): one rclpy participant whose profile
(``FASTRTPS_DEFAULT_PROFILES_FILE``, written by :func:`~gossip_learning.nodes.discovery.
server_profile`) makes it a SERVER on a loopback port. It holds no topic of its own; it runs until
the launch stops it (SIGINT) and exits 0.

    python -m gossip_learning.nodes.dds_server
"""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> NoReturn:
    """Be the discovery server until SIGINT (or SIGTERM), then exit 0 (no DDS teardown: the
    swarm's processes are ending too, see :mod:`gossip_learning.nodes.process`)."""
    from gossip_learning.nodes.entry import interrupt_once
    from gossip_learning.nodes.process import end_process, lean_imports

    interrupt_once()
    signal.signal(signal.SIGTERM, _stop)
    lean_imports()
    try:
        import rclpy
        from rclpy.executors import ExternalShutdownException

        rclpy.init(args=sys.argv[1:])
        node = rclpy.create_node(
            "discovery_server", start_parameter_services=False, enable_rosout=False
        )
        print("discovery server ready", flush=True)
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=1.0)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    end_process(0)


if __name__ == "__main__":
    main()
