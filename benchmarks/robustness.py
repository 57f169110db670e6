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
import json
import math
import os
import sys
from collections import Counter

from _report import Report, allow_dirty_flag, format_load

from gossip_learning import atomic
from gossip_learning.backends import (
    Backend,
    Progress,
    add_backend_args,
    backend_from_args,
    backend_info,
    run_tasks,
)
from gossip_learning.config import load_config
from gossip_learning.datasets import Dataset
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.results import rounds_to_reach
from gossip_learning.sweep import data_key

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
BENCH_KEY_VAR, BENCH_KEY = "GL_BENCH_FLEET_KEY", "robustness benchmark key"
os.environ.setdefault(BENCH_KEY_VAR, BENCH_KEY)


Task = tuple[str, tuple[str, ...], str, int]  # config, overrides, method, seed


def run_task(
    task: Task, datasets: dict[str, Dataset] | None = None
) -> tuple[list[dict], dict[str, int]]:
    """One run of the table (a sweep task): its metric rows and what was refused, by reason.
    The data comes from ``datasets`` (shipped once per node), else from the config."""
    config, overrides, method, seed = task
    os.environ.setdefault(BENCH_KEY_VAR, BENCH_KEY)  # a Ray worker has not imported this file
    cfg = load_config(config, [*overrides, f"experiment.seeds=[{seed}]"])
    sw = Swarm(cfg, method, seed, datasets[data_key(cfg)] if datasets else load_data(cfg))
    rows = [sw.step()[0] for _ in range(cfg.experiment.rounds)]
    refused: Counter[str] = Counter(sw.network.stats.reasons)
    for a in sw.agents:
        refused.update(a.inbox.rejected)
    return rows, dict(refused)


def run(
    config: str, overrides: list[str], method: str, seed: int
) -> tuple[list[dict], Counter[str]]:
    rows, refused = run_task((config, tuple(overrides), method, seed))
    return rows, Counter(refused)


def _table(
    report: Report,
    config: str,
    seeds: list[int],
    scenarios: dict[str, list[str]],
    defences: dict[str, list[str]],
    backend: Backend,
) -> None:
    """Every scenario under every defence, per seed: one task per run on ``backend``, the rows
    written in the table's order whatever order the tasks finish in."""
    tasks: list[Task] = []
    for seed in seeds:
        tasks.append((config, (), "cfl", seed))
        tasks += [
            (config, (*s_over, *d_over), "bilayer", seed)
            for s_over in scenarios.values()
            for d_over in defences.values()
        ]
    cfg = load_config(config)
    datasets = {data_key(cfg): load_data(cfg)}
    bar = Progress(len(tasks))
    results: dict[Task, tuple[list[dict], dict[str, int]]] = {}
    for task, result in run_tasks(run_task, tasks, datasets, backend):
        results[task] = result
        bar.advance(f"seed {task[3]} {task[2]} {' '.join(task[1]) or 'clean'}")
    for seed in seeds:
        cfl = results[(config, (), "cfl", seed)][0][-1]["acc_mean"]
        target = 0.95 * cfl
        print(f"{config}, seed {seed}: clean CFL final {cfl:.3f}, 95 % = {target:.3f}")
        for scenario, s_over in scenarios.items():
            for defence, d_over in defences.items():
                rows, refused = results[(config, (*s_over, *d_over), "bilayer", seed)]
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
    add_backend_args(p, "runs")
    allow_dirty_flag(p)
    args = p.parse_args(argv)
    backend = backend_from_args(args)
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
    _table(report, config, args.seeds or [args.seed], scenarios, defences, backend)
    out = report.as_dict()
    out["sweep"] = backend_info(backend)
    if args.json:
        atomic.write_text(args.json, json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    print(format_load(out["machine"]["load_avg_before"]), "->",
          format_load(out["machine"]["load_avg_after"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
