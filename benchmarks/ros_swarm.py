"""The real ``ros2 launch gossip_learning swarm.launch.py`` at 10-100 robots, both modes.

    python benchmarks/ros_swarm.py --robots 10 30 60 100 --rounds 20 --motion round \
        --config config/ros_acceptance.yaml --json docs/results/ros_swarm.json

For each size and mode (``per-process``: one swarm_node per robot, one DDS participant each;
``single``: ``single_process:=true``) it builds the package into a colcon workspace (once), runs the
launch on loopback only (a private domain; as root, a private network namespace) with the
launch's own choice of discovery (``discovery:=auto`` unless ``--discovery`` says otherwise) and
records: robots reporting in each round (the monitor's metrics.csv), every launched process's
exit code (the launch's "finished cleanly" / "has died" lines) and how many ended by the teardown
watchdog (faulthandler's ``Timeout (`` line), seconds from each robot process's start to active
(swarm_node's ``ready`` line), robots that joined after round 1, RSS per robot process (sampled
with psutil; mean and max), CPU seconds of the whole launch, frames delivered, dropped, rejected
and rejected as ``late``, the load average before, during (mean, max) and after, and the final
accuracy of the launch beside the in-process engine's (``gossip-learning run``, same config, seed
and rounds: the same plan; with ``--motion round`` the same moves too) and local-only training
(method ``local``: no communication) on the same seed. A run is ``ok`` when the launch and every
process exited 0, no watchdog fired and every robot reported every round. ``--busy K`` keeps K
CPU-bound processes running beside the launch (start-up under load).
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

from gossip_learning import atomic
from gossip_learning.nodes.launch_support import loopback_env, loopback_only, start_delay
from gossip_learning.nodes.process import WATCHDOG_MARK

READY = re.compile(
    r"ready: (\d+) robot\(s\)(?: in [\d.]+ s \(([\d.]+|nan) s since process start\))?"
)
FINISHED = re.compile(r"robots \d+\.\.\d+: finished")
JOINED = re.compile(r"robots \d+\.\.\d+: joined at round (\d+)")
STARTED = re.compile(r"\[INFO\] \[([\w.-]+)\]: process started with pid \[(\d+)\]")
CLEAN = re.compile(r"\[INFO\] \[([\w.-]+)\]: process has finished cleanly \[pid (\d+)\]")
DIED = re.compile(r"\[([\w.-]+)\]: process has died \[pid (\d+), exit code (-?\d+)")
DISCOVERY = re.compile(r"discovery (\w+):")
PHASE_SCALE = re.compile(r"phase_scale ([\d.]+): ")


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


def _sampler(pid: int, stop: threading.Event, rss: dict[int, float], load: list[float]) -> None:
    """Every second: the largest RSS (MB) seen per swarm_node/robot process under ``pid`` and
    the 1-minute load average."""
    import psutil

    root = psutil.Process(pid)
    while not stop.wait(1.0):
        load.append(os.getloadavg()[0])
        try:
            kids = root.children(recursive=True)
        except psutil.Error:
            return
        for k in kids:
            try:
                if any("swarm_node" in c or "robot_node" in c for c in k.cmdline()[:3]):
                    rss[k.pid] = max(rss.get(k.pid, 0.0), k.memory_info().rss / 2**20)
            except psutil.Error:
                continue


def _busy(k: int) -> list[subprocess.Popen[bytes]]:
    """``k`` CPU-bound processes (a Python busy loop each) to run beside the launch."""
    loop = "while True:\n    pass"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(k)]


class LaunchLog:
    """What the launch's output says about its processes, read line by line."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}  # process name -> pid
        self.exit_codes: dict[str, int] = {}
        self.up = 0
        self.active_s: list[float] = []  # per robot process: its start to active
        self.joined_late = 0
        self.watchdog = 0
        self.discovery = ""
        self.phase_scale = float("nan")  # the launch's phase_scale (nodes/pacing.py)

    def read(self, line: str) -> None:
        if m := STARTED.search(line):
            self.started[m.group(1)] = int(m.group(2))
        elif m := CLEAN.search(line):
            self.exit_codes[m.group(1)] = 0
        elif m := DIED.search(line):
            self.exit_codes[m.group(1)] = int(m.group(3))
        elif m := READY.search(line):
            self.up += int(m.group(1))
            if m.group(2):
                self.active_s.append(float(m.group(2)))
        elif m := JOINED.search(line):
            self.joined_late += 1
        elif m := DISCOVERY.search(line):
            self.discovery = m.group(1)
        elif m := PHASE_SCALE.search(line):
            self.phase_scale = float(m.group(1))
        if WATCHDOG_MARK in line:
            self.watchdog += 1

    def summary(self) -> dict[str, Any]:
        codes = [self.exit_codes.get(name) for name in self.started]
        failed = sorted(
            f"{name}={self.exit_codes.get(name)}"
            for name in self.started
            if self.exit_codes.get(name) != 0
        )
        return {
            "processes_started": len(self.started),
            "processes_exit_0": sum(1 for c in codes if c == 0),
            "processes_failed": " ".join(failed),
            "watchdog_fired": self.watchdog,
            "active_s_mean": round(sum(self.active_s) / max(len(self.active_s), 1), 1),
            "active_s_max": round(max(self.active_s, default=float("nan")), 1),
            "joined_late": self.joined_late,
        }


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


def engine_accuracy(config: Path, n: int, rounds: int, seed: int, method: str = "bilayer") -> float:
    """Final mean accuracy of the in-process engine (``method``: bilayer, or local for training
    with no communication) on the launch's config with ``n`` robots."""
    from gossip_learning.config import load_config
    from gossip_learning.experiment import Swarm
    from gossip_learning.plan import load_data

    overrides = [f"swarm.num_robots={n}", f"experiment.rounds={rounds}"]
    cfg = load_config(config, overrides)
    swarm = Swarm(cfg, method, seed, load_data(cfg))
    row: dict[str, Any] = {}
    for _ in range(rounds):
        row = swarm.step()[0]
    return float(row["acc_mean"])


def round_period(config: str | Path, scale: float) -> float:
    """Seconds of one bilayer round of ``config`` with its phases times ``scale`` (NaN if the
    launch did not say its scale)."""
    from gossip_learning.config import load_config
    from gossip_learning.nodes.pacing import scaled
    from gossip_learning.schedule import RoundClock, build_schedule

    if scale != scale:
        return float("nan")
    cfg = scaled(load_config(config), scale)
    schedule = build_schedule("bilayer", cfg.clustering.passes, cfg.gossip)
    return round(RoundClock(schedule, cfg.timing).period, 2)


def run_one(
    prefix: Path,
    n: int,
    mode: str,
    a: argparse.Namespace,
    seed: int = 0,
) -> dict[str, Any]:
    """One launch of ``n`` robots in ``mode`` with the options ``a``; returns the record."""
    tmp = Path(tempfile.mkdtemp(prefix=f"ros_swarm_{mode}_{n}_"))
    single = mode == "single"
    delay = start_delay("auto", 1 if single else n)
    env = loopback_env(a.domain, tmp / "log", prefix)
    site = next(prefix.glob("lib/python3*/site-packages"), None)
    if site is not None:  # as the workspace's setup.bash: its package metadata (entry points)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(site)]))
    cmd = [shutil.which("ros2") or "ros2", "launch", "gossip_learning", "swarm.launch.py",
           f"num_robots:={n}", f"rounds:={a.rounds}", f"single_process:={str(single).lower()}",
           f"discovery:={a.discovery}", f"motion:={a.motion}", f"seed:={seed}",
           f"config:={Path(a.config).resolve()}", f"output_dir:={tmp / 'out'}",
           f"phase_scale:={a.phase_scale}"]  # fmt: skip
    cmd = loopback_only(cmd)
    load_before = os.getloadavg()[0]
    busy = _busy(a.busy)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp
    )
    rss: dict[int, float] = {}
    load: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(proc.pid, stop, rss, load), daemon=True)
    sampler.start()
    log = LaunchLog()
    up_s = float("nan")
    last_done = float("nan")  # when the last robot process finished its rounds
    tail: list[str] = []
    assert proc.stdout is not None
    timer = threading.Timer(a.timeout, proc.kill)
    timer.start()
    with (tmp / "launch.log").open("w", encoding="utf-8") as keep:
        for line in proc.stdout:
            keep.write(line)
            tail = [*tail, line][-40:]
            if FINISHED.search(line):
                last_done = time.monotonic() - t0
            log.read(line)
            if log.up >= n and up_s != up_s:
                up_s = time.monotonic() - t0
    code = proc.wait()
    wall = time.monotonic() - t0
    timer.cancel()
    stop.set()
    for b in busy:
        b.kill()
        b.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    metrics = tmp / "out" / "metrics.csv"
    rows = list(csv.DictReader(metrics.open(encoding="utf-8"))) if metrics.is_file() else []
    late = sum(_reasons(r.get("rejected_by", "")).get("late", 0) for r in rows)
    reporting = [int(r["robots_reporting"]) for r in rows]
    run_s = max(last_done - delay, 1e-9)  # from the shared epoch to the last robot's last round
    mem = sorted(rss.values())
    procs = log.summary()
    every_round = len(rows) == a.rounds and all(k == n for k in reporting)
    ok = (
        code == 0 and every_round and procs["watchdog_fired"] == 0
        and procs["processes_exit_0"] == procs["processes_started"] > 0
    )  # fmt: skip
    return {
        "mode": mode, "robots": n, "seed": seed, "rounds": a.rounds,
        "discovery": log.discovery or a.discovery, "motion": a.motion,
        "config": Path(a.config).name, "busy": a.busy, "ok": ok,
        "phase_scale": log.phase_scale, "round_period_s": round_period(a.config, log.phase_scale),
        "exit_code": code, **procs, "wall_s": round(wall, 1), "start_delay_s": delay,
        "robots_up": log.up, "all_up_s": round(up_s, 1),
        "rounds_done": len(rows), "rounds_per_min": round(60 * len(rows) / run_s, 2),
        "reporting": " ".join(str(k) for k in reporting),
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
        "late": late,
        "load_before": round(load_before, 2),
        "load_during_mean": round(sum(load) / max(len(load), 1), 2),
        "load_during_max": round(max(load, default=float("nan")), 2),
        "load_after": round(os.getloadavg()[0], 2),
        "log_tail": "" if ok else "".join(tail)[-600:],
    }  # fmt: skip


def run_and_print(
    a: argparse.Namespace,
    report: Report,
    engines: dict[tuple[int, int, str], float],
    prefix: Path,
    n: int,
    mode: str,
    seed: int,
) -> None:
    """One launch of ``n`` robots in ``mode`` with ``seed``: run, record, print a line."""
    r = run_one(prefix, n, mode, a, seed)
    r["load_avg_1min_after"] = r["load_after"]
    for method, key in (("bilayer", "engine_acc_last"), ("local", "local_acc_last")):
        if (n, seed, method) not in engines:
            engines[n, seed, method] = engine_accuracy(Path(a.config), n, a.rounds, seed, method)
        r[key] = engines[n, seed, method]
    report.add(**r)
    print(
        f"{n:4d} {mode:12s} seed {seed} {'ok' if r['ok'] else 'FAILED'} exit {r['exit_code']} "
        f"({r['processes_exit_0']}/{r['processes_started']} processes exit 0, watchdog "
        f"{r['watchdog_fired']}) {r['discovery']} phase_scale {r['phase_scale']:g}  "
        f"up {r['all_up_s']:6.1f} s active "
        f"{r['active_s_mean']:.1f}/{r['active_s_max']:.1f} s  reporting {r['reporting']}  "
        f"late joins {r['joined_late']}  clusters {r['clusters_mean']:.1f}  "
        f"acc {r['acc_first']:.3f}->{r['acc_last']:.3f} (engine {r['engine_acc_last']:.3f}, "
        f"local {r['local_acc_last']:.3f})  RSS {r['rss_mb_mean']:.0f}/{r['rss_mb_max']:.0f} MB "
        f"x {r['processes']}  CPU {r['cpu_s']:.0f} s  late {r['late']}  wall {r['wall_s']:.0f} s"
        f"  load {r['load_before']:.1f}/{r['load_during_mean']:.1f}/{r['load_after']:.1f}",
        flush=True,
    )
    if not r["ok"]:
        print(r["log_tail"], flush=True)


def appended(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new``'s records after ``old``'s, one report: both runs from one commit, the commands
    joined with `` ; ``, the load before the first and after the last (each record keeps its
    own load figures)."""
    if old.get("git_commit") != new["git_commit"]:
        raise SystemExit(
            f"--append: {old.get('git_commit')} in the --json file, this checkout is "
            f"{new['git_commit']}: one report comes from one commit"
        )
    machine = {**new["machine"], "load_avg_before": old["machine"]["load_avg_before"]}
    return {
        **new, "command": f"{old['command']} ; {new['command']}", "date": old["date"],
        "git_dirty": bool(old.get("git_dirty", True) or new["git_dirty"]),
        "machine": machine, "records": [*old["records"], *new["records"]],
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--robots", type=int, nargs="+", default=[10, 30, 60, 100])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="experiment seeds (seed:=)")
    p.add_argument("--modes", nargs="+", default=["per-process", "single"],
                   choices=["per-process", "single"])  # fmt: skip
    p.add_argument("--discovery", default="auto", choices=["auto", "localhost", "wide", "server"])
    p.add_argument(
        "--skip-per-process-above", type=int, default=100,
        help="per-process runs above this many robots are skipped (memory, CPU)",
    )  # fmt: skip
    p.add_argument("--motion", default="time", choices=["time", "round"], help="launch motion:=")
    p.add_argument("--config", default=str(ROOT / "config" / "ros_swarm.yaml"),
                   help="experiment YAML for the launch (config:=) and the engine")  # fmt: skip
    p.add_argument("--busy", type=int, default=0, help="CPU-bound processes beside each launch")
    p.add_argument(
        "--phase-scale", default="auto", help="launch phase_scale:= (auto or a number > 0)"
    )
    p.add_argument("--workspace", help="colcon workspace to build into (default: a temp folder)")
    p.add_argument("--timeout", type=float, default=1200, help="seconds per launch")
    p.add_argument("--domain", type=int, default=96, help="ROS_DOMAIN_ID of the runs")
    p.add_argument("--json", help="write the report here")
    p.add_argument(
        "--append", action="store_true",
        help="add this call's records to the --json file's, which must be from the same commit "
        "(split a long series into calls; the commands are joined with ' ; ')",
    )  # fmt: skip
    allow_dirty_flag(p)
    a = p.parse_args(argv)
    report = Report(
        "ros_swarm",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=a.json,
        allow_dirty=a.allow_dirty,
    )
    commit = report.git["git_commit"]
    print(f"{os.cpu_count()} CPUs, {format_load(report.load_before)} before, commit {commit}")
    ws = Path(a.workspace) if a.workspace else Path(tempfile.mkdtemp(prefix="ros_swarm_ws_"))
    prefix = build_workspace(ws)
    engines: dict[tuple[int, int, str], float] = {}
    for n in a.robots:
        for mode in a.modes:
            if mode == "per-process" and n > a.skip_per_process_above:
                why = f"more than {a.skip_per_process_above} robot processes: see docs/ros.md"
                report.add(mode=mode, robots=n, skipped=why)
                print(f"{n:4d} {mode:12s} skipped")
                continue
            for seed in a.seeds:
                run_and_print(a, report, engines, prefix, n, mode, seed)
    out = {**report.as_dict(), "git_commit": commit}
    if a.append and a.json and Path(a.json).is_file():
        out = appended(json.loads(Path(a.json).read_text(encoding="utf-8")), out)
    if a.json:
        atomic.write_text(a.json, json.dumps(out, indent=2) + "\n")
        print(f"wrote {a.json}")
    print(f"{format_load(out['machine']['load_avg_after'])} after")
    return 0 if all(r.get("ok", True) for r in report.records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
