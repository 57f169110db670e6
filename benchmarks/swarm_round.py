"""Seconds per round and peak memory of the in-process swarm (prints figures; not a test).

Paper defaults (100 x 100 area, range 60, random direction, DK-means 5 passes, MLP head
160->128->64->10, Adam 2 epochs batch 128) on synthetic 160-d features, 50,000 training samples
split IID (like CIFAR-10), evaluation on a fixed random subset of the test set. Each swarm size runs
in its own process so peak RSS is that run's alone.

    python benchmarks/swarm_round.py                 # 60, 100, 1000 robots
    python benchmarks/swarm_round.py --robots 60 --rounds 3 --mode broadcast
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(
    robots: int, rounds: int, mode: str, eval_subset: int, area_scale: bool
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
                "params": {"num_train": 50_000, "num_test": 10_000, "dim": 160, "num_classes": 10},
                "eval_subset": eval_subset,
            },
        }
    )
    data = load_data(cfg)
    t = time.perf_counter()
    swarm = Swarm(cfg, "bilayer", 0, data)
    build = time.perf_counter() - t
    rows = [swarm.step()[0] for _ in range(rounds)]
    keys = ["time_round", "time_cluster", "time_train", "time_gossip", "time_eval"]
    out = {k: sum(r[k] for r in rows[1:] or rows) / len(rows[1:] or rows) for k in keys}
    out.update(
        robots=robots,
        area=side,
        build_s=build,
        clusters=rows[-1]["num_clusters"],
        msgs=rows[-1]["msgs_sent"],
        mbytes=rows[-1]["bytes_sent"] / 1e6,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--robots", type=int, nargs="*", default=[60, 100, 1000])
    p.add_argument("--rounds", type=int, default=3, help="rounds per size (first excluded if > 1)")
    p.add_argument("--mode", default="pairwise", choices=["pairwise", "broadcast"])
    p.add_argument("--eval-subset", type=int, default=2000)
    p.add_argument("--scale-area", action="store_true", help="keep the 100-robot density above 100")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(one(a.robots[0], a.rounds, a.mode, a.eval_subset, a.scale_area)))
        return
    print(
        f"{'robots':>6} {'area':>6} {'s/round':>8} {'cluster':>8} {'train':>7} {'gossip':>7} "
        f"{'eval':>6} {'MB sent':>8} {'peak RSS MB':>11}"
    )
    for n in a.robots:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--robots",
            str(n),
            "--rounds",
            str(a.rounds),
            "--mode",
            a.mode,
            "--eval-subset",
            str(a.eval_subset),
        ] + (["--scale-area"] * a.scale_area)
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"{n:>6} {r['area']:>6.0f} {r['time_round']:>8.2f} {r['time_cluster']:>8.2f} "
            f"{r['time_train']:>7.2f} {r['time_gossip']:>7.2f} {r['time_eval']:>6.2f} "
            f"{r['mbytes']:>8.1f} {r['peak_rss_mb']:>11.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
