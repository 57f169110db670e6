"""How much a swarm's end point depends on the order its frames arrive in: the in-process engine
on one (config, seed), once in the order frames were sent and ``--orders`` times with every
flush delivered in a shuffled order (``InProcessNetwork.order_rng``), as one process per robot
hears them under ``ros2 launch``. Pairwise gossip picks among the proposals a robot heard, so
another order gives other matchings. Prints, per seed, the final mean accuracy of each run, its
spread (max - min over the unshuffled run and the shuffled ones) and local-only's accuracy; not
a test.

    python benchmarks/order_sensitivity.py --config config/ros_acceptance.yaml --robots 60 \\
        --rounds 20 --seeds 0 1 2 --orders 4 --jobs 2
    python benchmarks/order_sensitivity.py ... --set gossip.mode=broadcast --set learning.lr=0.05
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
from _report import format_load

from gossip_learning.config import load_config
from gossip_learning.experiment import Swarm, load_data


def run(
    config: str, overrides: list[str], method: str, seed: int, order: int | None
) -> dict[str, Any]:
    """One engine run; ``order``: None for the sent order, else the shuffle's seed."""
    cfg = load_config(config, overrides)
    swarm = Swarm(cfg, method, seed, load_data(cfg))
    if order is not None:
        swarm.network.order_rng = np.random.default_rng([seed, order, 0x0DE5])
    rows = [swarm.step()[0] for _ in range(cfg.experiment.rounds)]
    return {
        "method": method,
        "seed": seed,
        "order": order,
        "acc": [round(float(r["acc_mean"]), 4) for r in rows],
        "consensus": [round(float(r["consensus_distance"]), 4) for r in rows],
        "clusters": [int(r["num_clusters"]) for r in rows],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/ros_acceptance.yaml")
    p.add_argument("--robots", type=int, default=60)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--orders", type=int, default=4, help="shuffled runs per seed")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--no-local", action="store_true", help="skip the local-only runs")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--json", default=None, help="write every run's curve here")
    a = p.parse_args(argv)
    overrides = [f"swarm.num_robots={a.robots}", f"experiment.rounds={a.rounds}", *a.set]
    load_config(a.config, overrides)  # a bad key fails here, before any run
    jobs: list[tuple[str, int, int | None]] = [
        ("bilayer", s, o) for s in a.seeds for o in [None, *range(a.orders)]
    ]
    if not a.no_local:
        jobs += [("local", s, None) for s in a.seeds]
    t0 = time.time()
    with ProcessPoolExecutor(a.jobs) as pool:
        futures = [pool.submit(run, a.config, overrides, m, s, o) for m, s, o in jobs]
        results = []
        for f in as_completed(futures):
            r = f.result()
            results.append(r)
            print(f"  {r['method']} seed {r['seed']} order {r['order']}: {r['acc'][-1]:.3f}",
                  flush=True)  # fmt: skip
    results.sort(key=lambda r: (r["method"], r["seed"], -1 if r["order"] is None else r["order"]))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump({"config": a.config, "overrides": overrides, "runs": results}, fh)
    print(f"{a.config} {' '.join(a.set)}: {a.robots} robots, {a.rounds} rounds, "
          f"{time.time() - t0:.0f} s, {format_load(list(os.getloadavg()))}")  # fmt: skip
    for s in a.seeds:
        mine = [r for r in results if r["seed"] == s and r["method"] == "bilayer"]
        finals = [r["acc"][-1] for r in mine]
        local = [r["acc"][-1] for r in results if r["seed"] == s and r["method"] == "local"]
        base = mine[0]
        print(
            f"  seed {s}: sent order {finals[0]:.3f}, shuffled "
            + " ".join(f"{x:.3f}" for x in finals[1:])
            + f"; spread {100 * (max(finals) - min(finals)):.1f} points"
            + (f"; local-only {local[0]:.3f}" if local else "")
            + f"; acc r10/15 {base['acc'][min(9, a.rounds - 1)]:.3f}/"
            f"{base['acc'][min(14, a.rounds - 1)]:.3f}; consensus last "
            + " ".join(f"{r['consensus'][-1]:.2f}" for r in mine)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
