"""Fleet rehearsal benchmark: robots as separate hosts (``gossip-learning fleet``), needs root.

    python benchmarks/fleet.py --sizes 30 60 --rounds 5 --skews 0 10 50 100 250 \
        --skew-robots 30 --json docs/results/fleet.json

On a small machine, measure in parts (one size or the skew curve per call) into files of their
own, then combine them; each part keeps its command, commit, date and load, and parts from
different commits or a checkout with uncommitted changes are refused:

    python benchmarks/fleet.py --sizes 30 --skews --json /tmp/fleet_30.json
    python benchmarks/fleet.py --sizes 60 --skews --json /tmp/fleet_60.json
    python benchmarks/fleet.py --sizes --clock-sync off on --json /tmp/fleet_skew.json
    python benchmarks/fleet.py --combine /tmp/fleet_30.json /tmp/fleet_60.json \
        /tmp/fleet_skew.json --json docs/results/fleet.json

Per size (``--sizes``) and channel (``--channels``: the unit disk, where links are perfect or
cut, and log-distance with shadowing, where in-range links lose frames too): robots reporting
per round, final accuracy beside the in-process engine on the same config and seed, DDS
discovery time seen from the observer, bytes on the veths per robot and round (by kind: RTPS
discovery, RTPS user traffic, IP continuation fragments) against the bytes the package counted
(``bytes_sent``), the bandwidth a robot needs at the config's round length, and the loss the
nftables rules applied against the loss they caused. Per clock skew (``--skews`` in ms, on
``--skew-robots`` robots and the config's own channel): the same, to read what the protocol
tolerates, with the robots' clock anchoring on (``timing.clock_sync_max_s``, the default) and
off (``--clock-sync off on``). The config is ``config/ros_swarm.yaml`` with one-shot matching
(7.2 s rounds); each run is one ``gossip-learning fleet`` command, recorded with its options in
the JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _report import ROOT, Report, command_line

from gossip_learning.provenance import run_info

BASE_SET = ["gossip.matching=single"]
KEYS = (
    "ok", "robots_exit_0", "reporting_min", "acc_last", "engine_acc_last", "discovery_s",
    "epoch_after_s", "wire_bytes_per_robot_round", "computed_bytes_per_robot_round",
    "wire_over_computed", "rtps_discovery_bytes_per_robot_round",
    "rtps_user_bytes_per_robot_round", "ip_fragments_bytes_per_robot_round",
    "other_bytes_per_robot_round", "robot_kbit_s", "bytes_per_packet", "loss_applied",
    "loss_seen", "lossy_frames", "cut_frames", "late", "round_period_s", "channel",
    "merged_per_robot_round", "rounds_all_reported", "discovery_found_max", "discovery_half_s",
    "clock_residual_ms",
)  # fmt: skip


def run_fleet(
    config: Path, robots: int, rounds: int, seed: int, overrides: list[str], skew_ms: float,
    mtu: int, folder: Path, delay_per_host: float = 0.0,
) -> tuple[dict[str, Any], list[str], float]:  # fmt: skip
    """One ``gossip-learning fleet`` run; its fleet.json, the command and the wall time."""
    out = folder / f"n{robots}_skew{skew_ms:g}"
    cmd = [sys.executable, "-m", "gossip_learning.cli", "fleet", str(config),
           "--robots", str(robots), "--rounds", str(rounds), "--seed", str(seed),
           "--skew-ms", f"{skew_ms:g}", "--mtu", str(mtu), "--engine",
           "--out", str(out)]  # fmt: skip
    for o in overrides:
        cmd += ["--set", o]
    if delay_per_host > 0:
        cmd += ["--start-delay", f"{20 + delay_per_host * robots:g}"]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    print(proc.stdout.strip()[-600:], flush=True)
    path = out / "fleet.json"
    if not path.is_file():
        raise SystemExit(f"fleet run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    shown = ["gossip-learning", *cmd[3:]]
    return json.loads(path.read_text(encoding="utf-8")), shown, wall


def record(report: Report, kind: str, r: dict[str, Any], cmd: list[str], wall: float,
           skew_ms: float, mtu: int, clock_sync: bool = True) -> None:  # fmt: skip
    flat = {k: r.get(k) for k in KEYS}
    udp = r.get("udp") or {}
    keys = ("received", "rcvbuf_errors", "in_errors", "sndbuf_errors")
    flat.update({f"udp_{k}": udp.get(k) for k in keys})
    flat["acc_gap_points"] = (
        100 * (r["acc_last"] - r["engine_acc_last"]) if r.get("engine_acc_last") else None
    )
    report.add(
        kind=kind, robots=r["robots"], rounds=r["rounds"], skew_ms=skew_ms, mtu=mtu,
        clock_sync=clock_sync,
        wall_s=round(wall, 1), command=" ".join(cmd),
        reporting_per_round=" ".join(str(row["reporting"]) for row in r["per_round"]),
        exits=" ".join(str(e) for e in r["exits"]),
        **flat,
    )  # fmt: skip


PROVENANCE = ("command", "git_commit", "git_dirty", "date", "machine")


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from reports of separate calls: every record names its part, every part keeps
    its command, commit, date and machine (load). Parts must come from one clean commit."""
    commits = {p.get("git_commit") for p in parts}
    if len(commits) != 1 or any(p.get("git_dirty") for p in parts):
        raise SystemExit(
            f"error: --combine needs parts from one clean commit, got {sorted(map(str, commits))}"
            f" (dirty: {[bool(p.get('git_dirty')) for p in parts]})"
        )
    out = {k: v for k, v in parts[0].items() if k != "records"}
    out["date"] = max(str(p["date"]) for p in parts)
    out["parts"] = [{k: p.get(k) for k in PROVENANCE} for p in parts]
    out["records"] = [{**r, "part": k} for k, p in enumerate(parts) for r in p["records"]]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(ROOT / "config" / "ros_swarm.yaml"))
    ap.add_argument("--sizes", type=int, nargs="*", default=[30, 60])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mtu", type=int, default=1500)
    ap.add_argument(
        "--channels", nargs="*", default=["unit_disk", "log_distance"], help="for --sizes"
    )
    ap.add_argument("--skews", type=float, nargs="*", default=[0, 10, 50, 100, 250])
    ap.add_argument("--skew-robots", type=int, default=30)
    ap.add_argument("--json", help="write the report here")
    ap.add_argument(
        "--delay-per-host",
        type=float,
        default=0.0,
        help="start delay: 20 s + this many s per host (0: the harness's auto delay)",
    )
    ap.add_argument("--keep", help="keep every run's folder (fleet.json, logs) here")
    ap.add_argument(
        "--clock-sync",
        nargs="+",
        choices=["on", "off"],
        default=["on"],
        help="for --skews: the robots follow the most advanced clock heard (on, the default "
        "timing.clock_sync_max_s) or keep their own (off: timing.clock_sync_max_s=0)",
    )
    ap.add_argument("--combine", nargs="+", metavar="PART", help="combine these reports")
    a = ap.parse_args(argv)
    if a.combine:
        combined = combine([json.loads(Path(p).read_text(encoding="utf-8")) for p in a.combine])
        combined["command"] = command_line()
        if a.json:
            Path(a.json).write_text(json.dumps(combined, indent=1) + "\n", encoding="utf-8")
        return 0
    report = Report("fleet")
    with tempfile.TemporaryDirectory(prefix="fleet_bench_") as tmp:
        folder = Path(a.keep or tmp)
        for n in a.sizes:
            for channel in a.channels:
                sets = [*BASE_SET, f"channel.model={channel}"]
                r, cmd, wall = run_fleet(Path(a.config), n, a.rounds, a.seed, sets, 0.0, a.mtu,
                                         folder / channel, a.delay_per_host)  # fmt: skip
                record(report, "size", r, cmd, wall, 0.0, a.mtu)
        for sync in a.clock_sync:
            sets = BASE_SET if sync == "on" else [*BASE_SET, "timing.clock_sync_max_s=0"]
            for skew in a.skews:
                r, cmd, wall = run_fleet(Path(a.config), a.skew_robots, a.rounds, a.seed, sets,
                                         skew, a.mtu, folder / f"sync_{sync}",
                                         a.delay_per_host)  # fmt: skip
                record(report, "skew", r, cmd, wall, skew, a.mtu, sync == "on")
    out = report.as_dict()
    out["git_commit"] = run_info([])["git_commit"]  # the code measured (PYTHONPATH's checkout)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
