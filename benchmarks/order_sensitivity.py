"""How much a swarm's end point depends on the order its frames arrive in and on a few lost
frames: the in-process engine on one (config, seed), once in the order frames were sent and
``--orders`` times with every flush delivered in a shuffled order (``InProcessNetwork.order_rng``),
as one process per robot hears them under ``ros2 launch``. Pairwise gossip picks among the
proposals a robot heard, so another order gives other matchings; broadcast gossip merges them
all. Each ``--variant NAME [KEY=VALUE ...]`` overrides the config (``channel.loss_prob`` adds
random loss, whose draws the shuffles also move). One record per (variant, seed): the final mean
accuracy in the sent order, the lowest and highest over it and the shuffled runs, their spread
in points, and local-only's (method ``local``: no communication). Not a test.

    python benchmarks/order_sensitivity.py --config config/ros_acceptance.yaml --robots 60 \\
        --rounds 20 --seeds 0 1 2 --orders 4 --jobs 3 \\
        --variant pairwise gossip.mode=pairwise gossip.inter_peers=heads --variant config \\
        --variant config_loss channel.loss_prob=0.0002 --json docs/results/order_sensitivity.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from _report import Report, allow_dirty_flag, format_load

from gossip_learning.config import load_config
from gossip_learning.experiment import Swarm, load_data


def run(
    config: str, overrides: list[str], method: str, seed: int, order: int | None
) -> dict[str, float]:
    """One engine run; ``order``: None for the sent order, else the shuffle's seed. Returns the
    final mean accuracy, consensus distance and frames lost."""
    cfg = load_config(config, overrides)
    swarm = Swarm(cfg, method, seed, load_data(cfg))
    if order is not None:
        swarm.network.order_rng = np.random.default_rng([seed, order, 0x0DE5])
    row: dict[str, Any] = {}
    for _ in range(cfg.experiment.rounds):
        row = swarm.step()[0]
    return {
        "acc": float(row["acc_mean"]),
        "consensus": float(row["consensus_distance"]),
        "dropped": float(swarm.network.stats.dropped),
        "delivered": float(swarm.network.stats.delivered),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/ros_acceptance.yaml")
    p.add_argument("--robots", type=int, default=60)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--orders", type=int, default=4, help="shuffled runs per seed and variant")
    p.add_argument("--variant", nargs="+", action="append", metavar="NAME [KEY=VALUE]",
                   help="a name and config overrides (default: the config as it is)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=1, help="engine runs at once")
    p.add_argument("--json", default=None)
    allow_dirty_flag(p)
    a = p.parse_args(argv)
    size = [f"swarm.num_robots={a.robots}", f"experiment.rounds={a.rounds}"]
    variants = {v[0]: [*size, *v[1:]] for v in (a.variant or [["config"]])}
    for overrides in variants.values():
        load_config(a.config, overrides)  # a bad key or value fails here, before any run
    report = Report("order_sensitivity", argv, out=a.json, allow_dirty=a.allow_dirty)
    jobs = [
        (name, "bilayer", s, o)
        for name in variants for s in a.seeds for o in [None, *range(a.orders)]
    ]  # fmt: skip
    jobs += [("", "local", s, None) for s in a.seeds]
    t0 = time.time()
    with ProcessPoolExecutor(a.jobs) as pool:
        futures = {
            job: pool.submit(run, a.config, variants.get(job[0], size), *job[1:]) for job in jobs
        }
        out = {job: f.result() for job, f in futures.items()}
    for name, overrides in variants.items():
        for s in a.seeds:
            runs = [out[name, "bilayer", s, o] for o in [None, *range(a.orders)]]
            accs = [r["acc"] for r in runs]
            rec = report.add(
                variant=name, overrides=" ".join(overrides[2:]), robots=a.robots,
                rounds=a.rounds, seed=s, orders=a.orders, acc_sent=round(accs[0], 4),
                acc_min=round(min(accs), 4), acc_max=round(max(accs), 4),
                spread_points=round(100 * (max(accs) - min(accs)), 2),
                local_acc=round(out["", "local", s, None]["acc"], 4),
                consensus_mean=round(statistics.fmean(r["consensus"] for r in runs), 3),
                dropped_mean=round(statistics.fmean(r["dropped"] for r in runs), 1),
                delivered_mean=round(statistics.fmean(r["delivered"] for r in runs), 1),
            )  # fmt: skip
            print(
                f"{name:>12} seed {s}: sent {accs[0]:.3f}, shuffled "
                + " ".join(f"{x:.3f}" for x in accs[1:])
                + f"; spread {rec['spread_points']:.1f} points; local-only {rec['local_acc']:.3f}"
                f"; lost {rec['dropped_mean']:.0f} of {rec['delivered_mean']:.0f} frames"
            )
    print(f"{len(jobs)} runs in {time.time() - t0:.0f} s, {format_load(list(os.getloadavg()))}")
    report.write(a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
