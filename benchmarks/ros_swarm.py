"""The real ``ros2 launch gossip_learning swarm.launch.py`` at 10-100 robots, both modes.

    python benchmarks/ros_swarm.py --robots 10 30 60 100 --rounds 5 \
        --json docs/results/ros_swarm.json

For each size and mode (``per-process``: one swarm_node per robot, one DDS participant each;
``single``: ``single_process:=true``) it builds the package into a colcon workspace (once), runs the
launch on loopback only (a private domain; as root, a private network namespace) and measures:
seconds until every robot is up (swarm_node's ``ready`` lines), rounds per minute from the shared
epoch, robots reporting per round and clusters (the monitor's metrics.csv), RSS per robot process
(sampled with psutil), CPU seconds of the whole launch (getrusage of the waited children), frames
delivered, dropped and rejected, and rejections as ``late``. Beside each run's final accuracy it
records the in-process engine's (``gossip-learning run``) on the same config, seed and number of
rounds: the same plan (start poses, partitions, initial heads); with ``--motion round`` the same
moves too. ``--discovery auto`` uses the wide
Fast DDS profile (config/fastdds_localhost.xml) above 30 processes. Sizes where a run is not
possible are skipped with the reason (``--skip-per-process-above``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, Report, allow_dirty_flag, format_load

from gossip_learning.nodes.launch_support import loopback_env, loopback_only, start_delay

READY = re.compile(r"ready: (\d+) robot\(s\)")
FINISHED = re.compile(r"robots \d+\.\.\d+: finished")


def build_workspace(ws: Path) -> Path:
    """colcon-build this checkout into ``ws`` (once); return the install prefix."""
    prefix = ws / "install" / "gossip_learning"
    if prefix.is_dir():
        return prefix
    (ws / "src").mkdir(parents=True, exist_ok=True)
    link = ws / "src" / "gossip_learning"
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    subprocess.run(
        ["colcon", "build", "--packages-select", "gossip_learning"], cwd=ws, check=True,
        capture_output=True, env={**os.environ, "COLCON_HOME": str(ws / ".colcon")},
    )  # fmt: skip
    return prefix


def _rss_sampler(pid: int, stop: threading.Event, out: dict[int, float]) -> None:
    """Largest RSS (MB) seen per swarm_node/robot process under ``pid``, sampled every second."""
    import psutil

    root = psutil.Process(pid)
    while not stop.wait(1.0):
        try:
            kids = root.children(recursive=True)
        except psutil.Error:
            return
        for k in kids:
            try:
                if any("swarm_node" in c or "robot_node" in c for c in k.cmdline()[:3]):
                    out[k.pid] = max(out.get(k.pid, 0.0), k.memory_info().rss / 2**20)
            except psutil.Error:
                continue


def _reasons(text: str) -> dict[str, int]:
    """A metrics.csv ``rejected_by`` cell (JSON or ``a=1;b=2``) as a dict."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
        return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}
    except ValueError:
        pairs = (p.split("=") for p in re.split(r"[;,\s]+", text) if "=" in p)
        return {k: int(v) for k, v in pairs}


def engine_accuracy(n: int, rounds: int, seed: int = 0) -> float:
    """Final mean accuracy of the in-process engine on the launch's config with ``n`` robots."""
    from gossip_learning.config import load_config
    from gossip_learning.experiment import Swarm
    from gossip_learning.plan import load_data

    overrides = [f"swarm.num_robots={n}", f"experiment.rounds={rounds}"]
    cfg = load_config(ROOT / "config" / "ros_swarm.yaml", overrides)
    swarm = Swarm(cfg, "bilayer", seed, load_data(cfg))
    row: dict[str, Any] = {}
    for _ in range(rounds):
        row = swarm.step()[0]
    return float(row["acc_mean"])


def run_one(
    prefix: Path,
    n: int,
    mode: str,
    rounds: int,
    discovery: str,
    domain: int,
    timeout: float,
    motion: str = "time",
    seed: int = 0,
) -> dict[str, Any]:
    """One launch; returns the measured record."""
    tmp = Path(tempfile.mkdtemp(prefix=f"ros_swarm_{mode}_{n}_"))
    single = mode == "single"
    delay = start_delay("auto", 1 if single else n)
    env = loopback_env(domain, tmp / "log", prefix)
    cmd = [shutil.which("ros2") or "ros2", "launch", "gossip_learning", "swarm.launch.py",
           f"num_robots:={n}", f"rounds:={rounds}", f"single_process:={str(single).lower()}",
           f"discovery:={discovery}", f"motion:={motion}", f"seed:={seed}",
           f"output_dir:={tmp / 'out'}"]  # fmt: skip
    cmd = loopback_only(cmd)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp
    )
    rss: dict[int, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_rss_sampler, args=(proc.pid, stop, rss), daemon=True)
    sampler.start()
    up = 0
    up_s = float("nan")
    last_done = float("nan")  # when the last robot process finished its rounds
    tail: list[str] = []
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    for line in proc.stdout:
        tail = [*tail, line][-40:]
        if FINISHED.search(line):
            last_done = time.monotonic() - t0
        m = READY.search(line)
        if m:
            up += int(m.group(1))
            if up >= n:
                up_s = time.monotonic() - t0
    code = proc.wait()
    wall = time.monotonic() - t0
    timer.cancel()
    stop.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    metrics = tmp / "out" / "metrics.csv"
    rows = list(csv.DictReader(metrics.open(encoding="utf-8"))) if metrics.is_file() else []
    late = sum(_reasons(r.get("rejected_by", "")).get("late", 0) for r in rows)
    reporting = [int(r["robots_reporting"]) for r in rows]
    run_s = max(last_done - delay, 1e-9)  # from the shared epoch to the last robot's last round
    mem = sorted(rss.values())
    return {
        "mode": mode, "robots": n, "seed": seed, "rounds": rounds, "discovery": discovery,
        "motion": motion,
        "exit_code": code, "wall_s": round(wall, 1), "start_delay_s": delay,
        "robots_up": up, "all_up_s": round(up_s, 1),
        "rounds_done": len(rows), "rounds_per_min": round(60 * len(rows) / run_s, 2),
        "reporting_min": min(reporting, default=0),
        "reporting_mean": round(sum(reporting) / max(len(reporting), 1), 1),
        "clusters_mean": round(
            sum(int(r["num_clusters"]) for r in rows) / max(len(rows), 1), 1
        ),
        "acc_first": float(rows[0]["acc_mean"]) if rows else float("nan"),
        "acc_last": float(rows[-1]["acc_mean"]) if rows else float("nan"),
        "processes": len(rss), "rss_mb_mean": round(sum(mem) / max(len(mem), 1), 1),
        "rss_mb_max": round(mem[-1], 1) if mem else 0.0, "rss_mb_total": round(sum(mem), 1),
        "cpu_s": round(cpu, 1), "cpu_cores": round(cpu / max(wall, 1e-9), 2),
        "delivered": sum(int(r.get("msgs_delivered") or 0) for r in rows),
        "dropped": sum(int(r.get("msgs_dropped") or 0) for r in rows),
        "rejected": sum(int(r.get("msgs_rejected") or 0) for r in rows),
        "late": late, "log_tail": "".join(tail)[-600:] if code else "",
    }  # fmt: skip


def run_and_print(
    a: argparse.Namespace,
    report: Report,
    engines: dict[tuple[int, int], float],
    prefix: Path,
    n: int,
    mode: str,
    seed: int,
) -> None:
    """One launch of ``n`` robots in ``mode`` with ``seed``: run, record, print a line."""
    processes = 1 if mode == "single" else n
    disc = a.discovery if a.discovery != "auto" else (
        "wide" if processes + 1 > 30 else "localhost")  # fmt: skip
    r = run_one(prefix, n, mode, a.rounds, disc, a.domain, a.timeout, a.motion, seed)
    r["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    if (n, seed) not in engines:
        engines[n, seed] = engine_accuracy(n, a.rounds, seed)
    r["engine_acc_last"] = engines[n, seed]
    report.add(**r)
    print(
        f"{n:4d} {mode:12s} seed {seed} exit {r['exit_code']} up {r['all_up_s']:6.1f} s  "
        f"{r['rounds_per_min']:.2f} rounds/min  reporting {r['reporting_min']}-{n}  "
        f"clusters {r['clusters_mean']:.1f}  acc {r['acc_first']:.3f}->{r['acc_last']:.3f}"
        f" (engine {r['engine_acc_last']:.3f})"
        f"  RSS {r['rss_mb_mean']:.0f} MB x {r['processes']}  CPU {r['cpu_s']:.0f} s  "
        f"late {r['late']}  wall {r['wall_s']:.0f} s  "
        f"{format_load([r['load_avg_1min_after'], 0, 0]).split(' 0.00')[0]}"
    )
    if r["exit_code"]:
        print(r["log_tail"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--robots", type=int, nargs="+", default=[10, 30, 60, 100])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="experiment seeds (seed:=)")
    p.add_argument("--modes", nargs="+", default=["per-process", "single"],
                   choices=["per-process", "single"])  # fmt: skip
    p.add_argument("--discovery", default="auto", choices=["auto", "localhost", "wide"])
    p.add_argument(
        "--skip-per-process-above", type=int, default=60,
        help="per-process runs above this many robots are skipped (memory, CPU)",
    )  # fmt: skip
    p.add_argument("--motion", default="time", choices=["time", "round"], help="launch motion:=")
    p.add_argument("--workspace", help="colcon workspace to build into (default: a temp folder)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per launch")
    p.add_argument("--domain", type=int, default=96, help="ROS_DOMAIN_ID of the runs")
    p.add_argument("--json", help="write the report here")
    allow_dirty_flag(p)
    a = p.parse_args(argv)
    report = Report(
        "ros_swarm",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=a.json,
        allow_dirty=a.allow_dirty,
    )
    print(f"{os.cpu_count()} CPUs, {format_load(report.load_before)} before")
    ws = Path(a.workspace) if a.workspace else Path(tempfile.mkdtemp(prefix="ros_swarm_ws_"))
    prefix = build_workspace(ws)
    engines: dict[tuple[int, int], float] = {}
    for n in a.robots:
        for mode in a.modes:
            if mode == "per-process" and n > a.skip_per_process_above:
                why = f"more than {a.skip_per_process_above} robot processes: see docs/ros.md"
                report.add(mode=mode, robots=n, skipped=why)
                print(f"{n:4d} {mode:12s} skipped")
                continue
            for seed in a.seeds:
                run_and_print(a, report, engines, prefix, n, mode, seed)
    out = report.write(a.json)
    print(f"{format_load(out['machine']['load_avg_after'])} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
