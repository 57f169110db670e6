"""The robustness table (docs/robustness.md): the quickstart swarm (bilayer) under faults and
rogues, with and without the defences. Final accuracy, rounds to 95 % of the clean CFL run's
final accuracy, and what the robots and the medium refused, by reason. Prints the table and the
machine's load average; ``--json`` writes the report the docs are rendered from.

Scenarios: (a) no faults, (b) 30 % independent loss, (c) 20 % of robots crashing each round and
rejoining the next with their model, (b+c) both, (d) the arena cut in two halves for rounds
4..10 (heals at round 11), (e) one rogue radio of each kind. Defences: ``none`` (the unchecked
protocol: ``defence.checks=false``, no norm bound), ``checks`` (the defaults: no-key checks and
the norm bound), ``clip`` (checks + clipping at 0.2 of the own model's norm), ``key`` (clip +
a fleet key: authenticated frames).

    python benchmarks/robustness.py --json docs/results/robustness.json
    python benchmarks/robustness.py --config config/paper_iid.yaml \
        --json docs/results/robustness_paper.json   # MCUNet-in3 features of CIFAR-10
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import Counter

from _report import Report, allow_dirty_flag, format_load

from gossip_learning.config import load_config
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.results import rounds_to_reach

CONFIG = "config/quickstart.yaml"
ATTACKS = ("head_hijack", "handover", "fake_head", "dominate", "overflow", "impersonate",
           "propose_flood", "foreign_fleet", "head_forge", "handover_forge", "dominate_cap",
           "near_bound", "accept_forge")  # fmt: skip
SCENARIOS: dict[str, list[str]] = {
    "a: no faults": [],
    "b: 30 % loss": ["channel.loss_prob=0.3"],
    "c: 20 % crash + rejoin": ["faults.crash_prob=0.2", "faults.crash_rounds=1"],
    "b+c": ["channel.loss_prob=0.3", "faults.crash_prob=0.2", "faults.crash_rounds=1"],
    "d: partition 4..10": ["faults.partition_rounds=[4, 10]"],
    **{f"e: rogue {a}": ["faults.rogues=1", f"faults.rogue_attack={a}"] for a in ATTACKS},
}
DEFENCES: dict[str, list[str]] = {
    "none": [
        "defence.checks=false",
        "defence.max_rms=0",
        "defence.norm_ratio=0",
        "defence.samples_ratio=0",
    ],
    "fixed": ["defence.norm_ratio=0", "defence.samples_ratio=0"],  # checks before issue 20
    "checks": [],
    "cap1": ["defence.samples_ratio=1"],  # checks, merge weight at most the median declared
    "clip": ["defence.clip_ratio=0.2"],
    "key": ["defence.clip_ratio=0.2", "defence.fleet_key=env:GL_BENCH_FLEET_KEY"],
}


# the benchmark's (public) fleet secret, from the environment like any fleet secret
os.environ.setdefault("GL_BENCH_FLEET_KEY", "robustness benchmark key")


def run(
    config: str, overrides: list[str], method: str, seed: int
) -> tuple[list[dict], Counter[str]]:
    cfg = load_config(config, [*overrides, f"experiment.seeds=[{seed}]"])
    sw = Swarm(cfg, method, seed, load_data(cfg))
    rows = [sw.step()[0] for _ in range(cfg.experiment.rounds)]
    refused: Counter[str] = Counter(sw.network.stats.reasons)
    for a in sw.agents:
        refused.update(a.inbox.rejected)
    return rows, refused


def _table(
    report: Report,
    config: str,
    seed: int,
    scenarios: dict[str, list[str]],
    defences: dict[str, list[str]],
) -> None:
    """One seed's rows: every scenario under every defence."""
    cfl_rows, _ = run(config, [], "cfl", seed)
    cfl = cfl_rows[-1]["acc_mean"]
    target = 0.95 * cfl
    print(f"{config}, seed {seed}: clean CFL final {cfl:.3f}, 95 % = {target:.3f}")
    for scenario, s_over in scenarios.items():
        for defence, d_over in defences.items():
            rows, refused = run(config, [*s_over, *d_over], "bilayer", seed)
            reached = rounds_to_reach(rows, "bilayer", target)
            rec = report.add(
                config=config, seed=seed, scenario=scenario, defence=defence,
                acc_final=rows[-1]["acc_mean"], cfl_final=cfl,
                rounds_to_95_cfl=None if math.isnan(reached) else int(reached),
                rejected=", ".join(f"{k} {v}" for k, v in sorted(refused.items())) or "none",
                rogue_frames=sum(r["rogue_frames"] for r in rows),
            )  # fmt: skip
            print(f"{scenario:<24} {defence:<7} acc {rec['acc_final']:.3f} "
                  f"r95 {rec['rounds_to_95_cfl']} refused: {rec['rejected']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="several seeds (overrides --seed)"
    )
    p.add_argument("--config", default=CONFIG, help="experiment YAML (e.g. config/paper_iid.yaml)")
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument(
        "--scenario",
        action="append",
        default=None,
        metavar="PREFIX",
        help="run only scenarios whose name starts with PREFIX (repeatable; e.g. 'b')",
    )
    p.add_argument(
        "--defence",
        action="append",
        default=None,
        choices=list(DEFENCES),
        help="run only this defence setting (repeatable)",
    )
    allow_dirty_flag(p)
    args = p.parse_args(argv)
    whole = ("robustness.json", "robustness_paper.json")  # the docs' full tables
    if args.json and (args.scenario or args.defence) and os.path.basename(args.json) in whole:
        p.error("that file holds the whole table: drop --scenario/--defence")
    scenarios = {
        k: v
        for k, v in SCENARIOS.items()
        if not args.scenario or any(k.startswith(s) for s in args.scenario)
    }
    defences = {k: v for k, v in DEFENCES.items() if not args.defence or k in args.defence}
    if not scenarios:
        p.error(f"--scenario matches none of: {', '.join(SCENARIOS)}")
    report = Report(
        "robustness",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=args.json,
        allow_dirty=args.allow_dirty,
    )
    config = args.config
    for seed in args.seeds or [args.seed]:
        _table(report, config, seed, scenarios, defences)
    out = report.write(args.json)
    print(format_load(out["machine"]["load_avg_before"]), "->",
          format_load(out["machine"]["load_avg_after"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
