"""Seconds per round and peak memory of the in-process swarm (prints figures; not a test).

Paper defaults (100 x 100 area, range 60, random direction, DK-means 5 passes, MLP head
160->128->64->10, Adam 2 epochs batch 128) on synthetic 160-d features, 50,000 training samples
split IID (like CIFAR-10), evaluation on a fixed random subset of the test set. Each swarm size runs
in its own process so peak RSS is that run's alone.

    python benchmarks/swarm_round.py                 # 60, 100, 1000 robots
    python benchmarks/swarm_round.py --robots 60 --rounds 3 --mode broadcast
    python benchmarks/swarm_round.py --robots 60 100 --mode pairwise broadcast --json out.json

Timings and MB sent are means over the measured rounds (every round after the first, or the only
one); the load average is printed and recorded beside each line (other processes slow it down).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from _report import Report, allow_dirty_flag, format_load, load_avg


def one(
    robots: int, rounds: int, mode: str, eval_subset: int, area_scale: bool, samples: int
) -> dict[str, float]:
    from gossip_learning.config import config_from_dict
    from gossip_learning.experiment import Swarm, load_data

    side = 100.0 * (robots / 100) ** 0.5 if area_scale and robots > 100 else 100.0
    cfg = config_from_dict(
        {
            "experiment": {"rounds": rounds, "spectral": "auto"},
            "swarm": {"num_robots": robots, "area": [side, side]},
            "gossip": {"mode": mode},
            "data": {
                "dataset": "synthetic",
                "params": {
                    "num_train": samples,
                    "num_test": 10_000,
                    "dim": 160,
                    "num_classes": 10,
                },
                "eval_subset": eval_subset,
            },
        }
    )
    data = load_data(cfg)
    t = time.perf_counter()
    swarm = Swarm(cfg, "bilayer", 0, data)
    build = time.perf_counter() - t
    rows = [swarm.step()[0] for _ in range(rounds)]
    measured = rows[1:] or rows
    keys = ["time_round", "time_cluster", "time_train", "time_gossip", "time_eval", "bytes_sent"]
    out = {k: sum(r[k] for r in measured) / len(measured) for k in keys}
    out.update(
        robots=robots,
        area=side,
        build_s=build,
        measured_rounds=len(measured),
        clusters=rows[-1]["num_clusters"],
        msgs=rows[-1]["msgs_sent"],
        mbytes=out.pop("bytes_sent") / 1e6,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--robots", type=int, nargs="*", default=[60, 100, 1000])
    p.add_argument("--rounds", type=int, default=3, help="rounds per size (first excluded if > 1)")
    p.add_argument("--mode", nargs="+", default=["pairwise"], choices=["pairwise", "broadcast"])
    p.add_argument("--eval-subset", type=int, default=2000)
    p.add_argument("--train-samples", type=int, default=50_000, help="split across the robots")
    p.add_argument("--scale-area", action="store_true", help="keep the 100-robot density above 100")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    allow_dirty_flag(p)
    a = p.parse_args(argv)
    if a.child:
        r = one(a.robots[0], a.rounds, a.mode[0], a.eval_subset, a.scale_area, a.train_samples)
        print(json.dumps(r))
        return 0
    report = Report(
        "swarm_round",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=a.json,
        allow_dirty=a.allow_dirty,
    )
    print(f"{os.cpu_count()} CPUs, {format_load(report.load_before)} before")
    print(
        f"{'robots':>6} {'mode':>9} {'area':>6} {'s/round':>8} {'cluster':>8} {'train':>7} "
        f"{'gossip':>7} {'eval':>6} {'MB sent':>8} {'peak RSS MB':>11}  load average"
    )
    for mode in a.mode:
        for n in a.robots:
            r = child(n, a.rounds, mode, a.eval_subset, a.scale_area, a.train_samples)
            load = load_avg()
            report.add(
                robots=n,
                mode=mode,
                area=r["area"],
                rounds=a.rounds,
                measured_rounds=r["measured_rounds"],
                eval_subset=a.eval_subset,
                train_samples=a.train_samples,
                s_per_round=round(r["time_round"], 6),
                dkmeans_s=round(r["time_cluster"], 6),
                training_s=round(r["time_train"], 6),
                gossip_s=round(r["time_gossip"], 6),
                evaluation_s=round(r["time_eval"], 6),
                mb_sent_per_round=round(r["mbytes"], 3),
                msgs_last_round=r["msgs"],
                clusters_last_round=r["clusters"],
                build_s=round(r["build_s"], 6),
                peak_rss_mb=round(r["peak_rss_mb"], 1),
                load_avg_1min_after=load[0],
            )
            print(
                f"{n:>6} {mode:>9} {r['area']:>6.0f} {r['time_round']:>8.2f} "
                f"{r['time_cluster']:>8.2f} {r['time_train']:>7.2f} {r['time_gossip']:>7.2f} "
                f"{r['time_eval']:>6.2f} {r['mbytes']:>8.1f} {r['peak_rss_mb']:>11.0f}  "
                f"{load[0]:.2f}",
                flush=True,
            )
    out = report.write(a.json)
    print(f"{format_load(out['machine']['load_avg_after'])} after")
    return 0


def child(
    robots: int, rounds: int, mode: str, eval_subset: int, scale_area: bool, samples: int
) -> Any:
    """Run one size in a fresh process, so its peak RSS is that run's alone."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--robots",
        str(robots),
        "--rounds",
        str(rounds),
        "--mode",
        mode,
        "--eval-subset",
        str(eval_subset),
        "--train-samples",
        str(samples),
    ] + (["--scale-area"] * scale_area)
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


if __name__ == "__main__":
    sys.exit(main())
