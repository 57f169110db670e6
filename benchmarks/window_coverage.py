"""How many distinct cluster-mates a robot hears in one round window (``gossip.window: round``),
per matching and number of intra-cluster steps: the authors' 200 one-shot matchings against the
``retry`` matching by messages, to find the cheapest ``retry`` setting that reaches 95 % of the
distinct neighbours 200 ``single`` shots reach.

Per robot with an in-range cluster-mate and per round: ``distinct`` = other robots in its intra
window's mixing row, ``coverage`` = ``distinct`` / in-range cluster-mates. Bilayer swarms of the
paper configs, intra layer only (``inter_steps: 0``, ``handoff: none``), no training (matching
does not depend on the models) and synthetic 160-d, 10-class data (so models and bytes are the
paper's MLP head's size; positions, clusters and matchings do not depend on the data). Prints
figures with the machine's load average; not a test.

    python benchmarks/window_coverage.py
    python benchmarks/window_coverage.py --robots 30 60 100 --rounds 5 --seeds 2 \\
        --json docs/results/window_coverage.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _report import Report, format_load

from gossip_learning.config import load_config
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.messages import Layer
from gossip_learning.provenance import run_info
from gossip_learning.schedule import Phase, PhaseKind

DATA = ["data.dataset=synthetic", "data.params={dim: 160, num_classes: 10, num_train: 3000}"]


def _track_mates(swarm: Swarm) -> dict[int, int]:
    """In-range cluster-mates of every robot, refreshed after each round's training (when the
    robots' neighbour tables are settled)."""
    mates: dict[int, int] = {}
    after_training = swarm.driver.after[PhaseKind.TRAIN]

    def count(phase: Phase) -> None:
        after_training(phase)
        mates.clear()
        mates.update({a.id: len(a.membership.partners(Layer.INTRA)) for a in swarm.agents})

    swarm.driver.after[PhaseKind.TRAIN] = count
    return mates


def measure(
    config: str, robots: int, matching: str, steps: int, rounds: int, seeds: int
) -> dict[str, float]:
    """Mean distinct neighbours merged per robot and round, coverage, bytes and time
    (``matching`` broadcast: ``gossip.mode: broadcast``)."""
    how = "gossip.mode=broadcast" if matching == "broadcast" else f"gossip.matching={matching}"
    cfg = load_config(config, [
        f"swarm.num_robots={robots}", how, f"gossip.intra_steps={steps}",
        "gossip.window=round", "gossip.inter_steps=0", "gossip.handoff=none", "learning.epochs=0",
        "data.eval_subset=100", "data.partition=iid", *DATA,
    ])  # fmt: skip
    data = load_data(cfg)
    distinct: list[int] = []
    coverage: list[float] = []
    sent: list[float] = []
    t = time.perf_counter()
    for seed in range(seeds):
        swarm = Swarm(cfg, "bilayer", seed, data)
        mates = _track_mates(swarm)
        for _ in range(rounds):
            row = swarm.step()[0]
            sent.append(row["bytes_sent"])
            for a in swarm.agents:
                if not mates.get(a.id):
                    continue
                rows = [r for _, r in a.window.mix_log]
                heard = len(rows[-1]) - 1 if rows else 0
                distinct.append(heard)
                coverage.append(heard / mates[a.id])
    shots = steps * (cfg.gossip.match_attempts if matching == "retry" else 1)
    return {
        "distinct_mean": float(np.mean(distinct)) if distinct else 0.0,
        "coverage_mean": float(np.mean(coverage)) if coverage else 0.0,
        "shots": shots,
        "gossip_phases": shots * 3 + steps if matching != "broadcast" else 2 * steps,
        "mb_sent_per_round": float(np.mean(sent)) / 1e6,
        "seconds_per_round": (time.perf_counter() - t) / (rounds * seeds),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/paper_iid.yaml")
    p.add_argument("--robots", type=int, nargs="+", default=[30])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1")
    p.add_argument("--retry-steps", type=int, nargs="+",
                   default=[5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100])  # fmt: skip
    p.add_argument("--target", type=float, default=0.95, help="share of the reference")
    p.add_argument(
        "--others",
        nargs="*",
        default=["oracle", "broadcast"],
        choices=["oracle", "broadcast"],
        help="also measure these (oracle: as many steps as the reference, broadcast: 1)",
    )
    p.add_argument("--reference-steps", type=int, default=200, help="one-shot matchings")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    report = Report(
        "window_coverage", None if argv is None else ["benchmarks/window_coverage.py", *argv]
    )
    commit = run_info([])["git_commit"]
    print(f"{'robots':>6} {'matching':<9} {'steps':>5} {'shots':>5} {'distinct':>8} "
          f"{'coverage':>8} {'MB/round':>8} {'s/round':>7}")  # fmt: skip
    for robots in args.robots:
        ref_steps = args.reference_steps
        runs = [("single", ref_steps)]
        runs += [(m, ref_steps if m == "oracle" else 1) for m in args.others]
        runs += [("retry", s) for s in args.retry_steps]
        ref = None
        cheapest = None
        for matching, steps in runs:
            rec = measure(args.config, robots, matching, steps, args.rounds, args.seeds)
            if (matching, steps) == ("single", ref_steps):
                ref = rec["distinct_mean"]
            assert ref is not None
            reaches = rec["distinct_mean"] >= args.target * ref
            if matching == "retry" and reaches and cheapest is None:
                cheapest = steps
            report.add(
                config=args.config, robots=robots, matching=matching, intra_steps=steps,
                rounds=args.rounds, seeds=args.seeds, share_of_reference=rec["distinct_mean"] / ref,
                git_commit=commit, **rec,
            )  # fmt: skip
            print(f"{robots:>6} {matching:<9} {steps:>5} {rec['shots']:>5} "
                  f"{rec['distinct_mean']:>8.2f} {rec['coverage_mean']:>8.3f} "
                  f"{rec['mb_sent_per_round']:>8.2f} {rec['seconds_per_round']:>7.2f}")  # fmt: skip
        report.add(
            config=args.config, robots=robots, matching="retry", summary="cheapest",
            reference=f"single x {ref_steps}", target=args.target,
            intra_steps=cheapest, git_commit=commit,
        )  # fmt: skip
        print(f"{robots} robots: retry reaches {args.target:.0%} of single x {ref_steps} at "
              f"{cheapest} steps")  # fmt: skip
    machine = report.write(args.json)["machine"]
    loads = [format_load(machine[f"load_avg_{k}"]) for k in ("before", "after")]
    print(" / ".join(loads), "(before / after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
