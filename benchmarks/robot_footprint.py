"""Memory and start-up time of one robot process (``robot_node``), as a launch starts it.

Starts ``--robots`` robot processes the way ``ros2 launch gossip_learning swarm.launch.py`` does
(one process each, the per-robot data files of ``gossip-learning partition`` in ``data_dir``,
a shared round epoch ``--start-delay`` seconds after they start) and plays their odometry from
this process, which also listens to the swarm topics. Per robot process it records:

* ``active_s``: seconds from the process start until the robot logs that it is active
  (imports, rclpy, its data file, agent, publishers, lifecycle configure + activate);
* ``first_beacon_s``: seconds from the process start until its first beacon arrives here,
  and ``first_round`` that beacon's round (1: it was ready for the shared start);
* ``first_status_round``: the first round the robot reported on ``/swarm/status`` (1: it ran
  round 1; a round-1 beacon can still miss this listener: best effort, sent before matching);
* ``rss_mb`` (the last sample while it ran its rounds) and ``peak_rss_mb`` (VmHWM) of the
  process, sampled every 0.2 s.

``--no-data-file`` also measures the old path (each robot loads the whole dataset), ``--lean``
also robots without the lifecycle services (``lifecycle_services:=false``, fewer DDS endpoints).
The floor is measured too: a bare rclpy node, and one with the message types and a lifecycle node
the robot needs, each in its own process. Loopback only (``ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST``) on a private domain id; the load average is printed and recorded beside each line.

    python benchmarks/robot_footprint.py                       # 4 robots, data files, 3 rounds
    python benchmarks/robot_footprint.py --no-data-file --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _report import ROOT, Report, allow_dirty_flag, format_load, load_avg

FLOOR = {
    "bare rclpy node": "import rclpy; rclpy.init(); n = rclpy.create_node('floor')",
    "rclpy + numpy + messages + lifecycle node": (
        "import numpy, rclpy; from rclpy.lifecycle import LifecycleNode; "
        "from nav_msgs.msg import Odometry; from std_msgs.msg import String, UInt8MultiArray; "
        "rclpy.init(); n = LifecycleNode('floor'); p = n.create_publisher(String, 's', 10); "
        "s = n.create_subscription(Odometry, 'o', print, 10)"
    ),
}


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """``field`` of /proc/<pid>/status in kB (0 once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def floor(env: dict[str, str]) -> list[dict[str, Any]]:
    """RSS of the smallest rclpy processes, each in its own interpreter."""
    out = []
    for what, code in FLOOR.items():
        probe = f"{code}; import time; time.sleep(1.0); print(open('/proc/self/status').read())"
        proc = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
        )
        kb = next(int(x.split()[1]) for x in proc.stdout.splitlines() if x.startswith("VmRSS:"))
        out.append({"what": what, "rss_mb": kb / 1024})
    return out


def fleet(
    args: argparse.Namespace, env: dict[str, str], data_file: bool, lean: bool = False
) -> list[dict[str, Any]]:
    """Start the robots, play their odometry, listen for beacons; one record per robot."""
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import String, UInt8MultiArray

    from gossip_learning.config import load_config
    from gossip_learning.robot_data import write_robot_files
    from gossip_learning.transports.ros import beacon_qos, reliable_qos
    from gossip_learning.wire import Kind, decode

    n = args.robots
    overrides = [f"swarm.num_robots={n}"]
    work = Path(tempfile.mkdtemp(prefix="robot_footprint_"))
    data_dir = work / "parts"
    if data_file:
        write_robot_files(load_config(args.config, overrides), 0, data_dir)

    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = Node("footprint_bench", context=ctx)
    first: dict[int, tuple[float, int]] = {}

    def on_beacon(msg: UInt8MultiArray) -> None:
        m = decode(bytes(msg.data))
        if m.kind == Kind.BEACON and m.sender not in first:
            first[m.sender] = (time.monotonic(), m.round)

    node.create_subscription(UInt8MultiArray, "/swarm/beacon", on_beacon, beacon_qos())
    reported: dict[int, int] = {}

    def on_status(msg: String) -> None:
        st = json.loads(msg.data)
        if st["round"] >= 1:
            reported.setdefault(int(st["id"]), int(st["round"]))

    node.create_subscription(String, "/swarm/status", on_status, reliable_qos())
    odom = [node.create_publisher(Odometry, f"/robot_{i}/odom", 10) for i in range(n)]

    def play() -> None:
        for i, pub in enumerate(odom):
            msg = Odometry()
            msg.header.frame_id = "world"
            msg.pose.pose.position.x = 40.0 + 3.0 * i  # all within range of each other
            msg.pose.pose.position.y = 50.0
            msg.pose.pose.orientation.w = 1.0
            pub.publish(msg)

    node.create_timer(0.2, play)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)

    epoch = time.time() + args.start_delay
    procs, started, active = [], [], [dict[str, float]() for _ in range(n)]
    code = "import sys; from gossip_learning.nodes.robot import main; sys.exit(main(sys.argv))"
    for i in range(n):
        params = {
            "robot_id": i, "num_robots": n, "config_file": args.config, "epoch": epoch,
            "rounds": args.rounds, **({"data_dir": str(data_dir)} if data_file else {}),
            "lifecycle_services": not lean,
        }  # fmt: skip
        ros_args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
        cmd = [sys.executable, "-c", code, "--ros-args", "-r", f"__ns:=/robot_{i}", *ros_args]
        started.append(time.monotonic())
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        procs.append(proc)

        def watch(p: subprocess.Popen[str], seen: dict[str, float]) -> None:
            assert p.stderr is not None
            for line in p.stderr:
                if "active, joins" in line and "t" not in seen:
                    seen["t"] = time.monotonic()

        threading.Thread(target=watch, args=(proc, active[i]), daemon=True).start()

    last_rss, peak = [0] * n, [0] * n
    next_sample = 0.0
    deadline = time.monotonic() + args.start_delay + 60 + 30 * args.rounds
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
        if time.monotonic() >= next_sample:
            next_sample = time.monotonic() + 0.2
            for i, p in enumerate(procs):
                if p.poll() is None:
                    last_rss[i] = rss_kb(p.pid) or last_rss[i]
                    peak[i] = max(peak[i], rss_kb(p.pid, "VmHWM"))
    for p in procs:
        if p.poll() is None:
            p.terminate()
        p.wait(timeout=30)
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)
    out = []
    for i in range(n):
        t_beacon, rnd = first.get(i, (float("nan"), -1))
        out.append(
            {
                "data_file": data_file,
                "lifecycle_services": not lean,
                "robot": i,
                "robots": n,
                "exit_code": procs[i].returncode,
                "active_s": active[i].get("t", float("nan")) - started[i],
                "first_beacon_s": t_beacon - started[i],
                "first_round": rnd,
                "first_status_round": reported.get(i, -1),
                "rss_mb": last_rss[i] / 1024,
                "peak_rss_mb": peak[i] / 1024,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--robots", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--start-delay", type=float, default=5.0, help="seconds to round 1")
    ap.add_argument("--config", default=str(ROOT / "config" / "ros_swarm.yaml"))
    ap.add_argument("--no-data-file", action="store_true", help="also the old path, for comparison")
    ap.add_argument("--lean", action="store_true", help="also without the lifecycle services")
    ap.add_argument("--domain", type=int, default=97, help="private ROS_DOMAIN_ID")
    ap.add_argument("--json", help="write the report here")
    allow_dirty_flag(ap)
    args = ap.parse_args(argv)
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(args.domain),
        "PYTHONUNBUFFERED": "1",
        "RCUTILS_LOGGING_BUFFERED_STREAM": "0",  # each log line as it happens ("active")
    }
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    report = Report(
        "robot_footprint",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=args.json,
        allow_dirty=args.allow_dirty,
    )
    for rec in floor(env):
        print(f"floor: {rec['what']}: {rec['rss_mb']:.1f} MB")
        report.add(kind="floor", **rec)
    runs = [(True, False)] + [(True, True)] * args.lean + [(False, False)] * args.no_data_file
    for data_file, lean in runs:
        what = ("own data file" if data_file else "whole dataset") + (", lean" if lean else "")
        for rec in fleet(args, env, data_file, lean):
            load = load_avg()
            print(
                f"robot {rec['robot']} ({what}): "
                f"active {rec['active_s']:.2f} s, first beacon {rec['first_beacon_s']:.2f} s "
                f"(round {rec['first_round']}), first report: round {rec['first_status_round']}, "
                f"RSS {rec['rss_mb']:.1f} MB, "
                f"peak {rec['peak_rss_mb']:.1f} MB, exit {rec['exit_code']}  [{format_load(load)}]"
            )
            report.add(kind="robot", load_avg_1min=load[0], **rec)
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
