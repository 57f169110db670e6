"""The fleet harness's observer: one more host on the bridge that records what the robots report.

    python -m gossip_learning.fleet.observer --robots N --rounds R --out statuses.jsonl

It runs in its own network namespace (its links are never cut or lossy), subscribes to
``/<ns>/status`` and writes every robot's round report as one JSON line, with the wall-clock time
it arrived. The first line records when DDS discovery, seen from here, had found every robot's
beacon publisher (``discovered``); before it, one line each time it had found more of them
(``found``). It exits after ``robots x (rounds + 1)`` reports (each robot
also reports once before round 1), or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gossip_learning.fleet.observer")
    ap.add_argument("--robots", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--namespace", default="swarm")
    ap.add_argument("--timeout", type=float, default=3600.0)
    a = ap.parse_args(argv)

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from std_msgs.msg import String

    from gossip_learning.transports.ros import reliable_qos, shutdown

    rclpy.init()
    signal.signal(signal.SIGTERM, _interrupt)
    node = rclpy.create_node("fleet_observer")
    expected = a.robots * (a.rounds + 1)
    got = 0
    out = open(a.out, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
    started = time.time()
    discovered: float | None = None
    found = 0

    def on_status(msg: Any) -> None:
        nonlocal got
        got += 1
        out.write(json.dumps({"t": time.time(), "status": json.loads(msg.data)}) + "\n")
        out.flush()

    beacon = f"/{a.namespace}/beacon"
    node.create_subscription(String, f"/{a.namespace}/status", on_status, reliable_qos(256))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while got < expected and time.time() - started < a.timeout:
            executor.spin_once(timeout_sec=0.1)
            if discovered is None:
                count = node.count_publishers(beacon)
                if count > found:  # discovery's progress: the robots found so far
                    found = count
                    out.write(json.dumps({"t": time.time(), "found": found}) + "\n")
                if count >= a.robots:
                    discovered = time.time()
                    out.write(json.dumps({"t": discovered, "discovered": a.robots}) + "\n")
                out.flush()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        out.close()
        executor.shutdown()
        node.destroy_node()
        shutdown()  # also when rclpy's SIGINT handling shut it down meanwhile
    return 0


if __name__ == "__main__":
    sys.exit(main())
