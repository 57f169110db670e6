"""How many robots the pairwise gossip pairs: ``pairs_matched`` (share of the robots with an
in-range partner that completed an exchange, per gossip step) for each ``gossip.matching``, with
the bytes each sends per round. Runs bilayer swarms without training (matching does not depend
on the models). Prints figures with the machine's load average; not a test.

    python benchmarks/matching_rate.py
    python benchmarks/matching_rate.py --config config/paper_iid.yaml --robots 30 60 \\
        --rounds 10 --seeds 2 --json matching.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _report import Report, allow_dirty_flag, format_load

from gossip_learning.config import MATCHINGS, load_config
from gossip_learning.experiment import Swarm, load_data


def _mean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", nargs="+", default=["config/quickstart.yaml"])
    p.add_argument("--robots", type=int, nargs="+", default=[0], help="0: the config's")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    p.add_argument("--matching", nargs="+", default=list(MATCHINGS), choices=MATCHINGS)
    p.add_argument("--attempts", type=int, default=0, help="retry shots (0: the config's)")
    p.add_argument("--json", default=None)
    allow_dirty_flag(p)
    args = p.parse_args(argv)
    report = Report(
        "matching_rate",
        None if argv is None else ["benchmarks/matching_rate.py", *argv],
        out=args.json,
        allow_dirty=args.allow_dirty,
    )
    print(f"{'config':<22} {'robots':>6} {'matching':<8} {'shots':>5} {'matched':>8} "
          f"{'p10':>6} {'inter':>6} {'kB/round':>9} {'s':>6}")  # fmt: skip
    for path in args.config:
        for robots in args.robots:
            data = None
            for matching in args.matching:
                extra = [f"gossip.match_attempts={args.attempts}"] if args.attempts else []
                if robots:
                    extra.append(f"swarm.num_robots={robots}")
                cfg = load_config(path, [f"gossip.matching={matching}", "learning.epochs=0",
                                         "data.eval_subset=100", *extra])  # fmt: skip
                data = data or load_data(cfg)
                t = time.perf_counter()
                intra: list[float] = []
                inter: list[float] = []
                sent: list[float] = []
                for seed in range(args.seeds):
                    swarm = Swarm(cfg, "bilayer", seed, data)
                    for _ in range(args.rounds):
                        row = swarm.step()[0]
                        intra.append(row["pairs_matched"])
                        inter.append(row["pairs_matched_inter"])
                        sent.append(row["bytes_sent"])
                shots = cfg.gossip.match_attempts if matching == "retry" else 1
                finite = np.asarray(intra)[np.isfinite(intra)]
                rec = report.add(
                    config=Path(path).name, robots=cfg.swarm.num_robots, matching=matching,
                    shots=shots, rounds=args.rounds, seeds=args.seeds,
                    pairs_matched=_mean(intra),
                    pairs_matched_p10=float(np.percentile(finite, 10)) if finite.size else 0.0,
                    pairs_matched_inter=_mean(inter), kb_sent_per_round=float(np.mean(sent)) / 1e3,
                    seconds=time.perf_counter() - t,
                )  # fmt: skip
                print(f"{rec['config']:<22} {rec['robots']:>6} {matching:<8} {shots:>5} "
                      f"{rec['pairs_matched']:>8.3f} {rec['pairs_matched_p10']:>6.3f} "
                      f"{rec['pairs_matched_inter']:>6.3f} {rec['kb_sent_per_round']:>9.0f} "
                      f"{rec['seconds']:>6.1f}")  # fmt: skip
    machine = report.write(args.json)["machine"]
    print(format_load(machine["load_avg_before"]), "before;",
          format_load(machine["load_avg_after"]), "after")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
