"""One small DDS participant for test_ros_discovery.py: a node that reports how many of the
expected nodes it sees, then keeps spinning until ``stop`` exists (so the others can see it)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import rclpy


def main() -> None:
    index, expected, stop = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node(f"probe_{index}")
    seen = 0
    reported = False
    deadline = time.monotonic() + float(sys.argv[4])
    while not stop.exists() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.2)
        seen = sum(1 for n in node.get_node_names() if n.startswith("probe_"))
        if seen >= expected and not reported:
            print(f"probe {index} sees {seen}", flush=True)
            reported = True
    if not reported:
        print(f"probe {index} sees {seen}", flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
