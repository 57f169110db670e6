"""The robustness tables (docs/robustness.md): the quickstart swarm (bilayer) under faults and
rogues, with and without the defences, over several seeds (mean ± std in the docs). Final
accuracy, rounds to 95 % of the clean CFL run's final accuracy (per seed), and what the robots
and the medium refused, by reason. Prints the table and the machine's load average; ``--json``
writes the report the docs are rendered from, with the threat model of each attack (who holds
what; ``THREATS``) for the docs' threat-model table.

Scenarios: (a) no faults, (b) 30 % independent loss, (c) 20 % of robots crashing each round and
rejoining the next with their model, (b+c) both, (d) the arena cut in two halves for rounds
4..10 (heals at round 11), (e) one rogue radio of each kind. Defences: ``none`` (the unchecked
protocol: ``defence.checks=false``, no norm bound), ``fixed`` (the checks before issue 20: no
relative bounds), ``checks`` (the defaults: no-key checks, the fixed and the relative bounds),
``key`` (checks + a fleet key: authenticated frames), ``keys`` (checks + per-robot Ed25519
keys, made afresh for each run in a temporary folder: an ``insider*`` rogue holds its own key,
every other rogue none); ``clip``, ``clip_half``, ``cap1``, ``median15`` (``keys`` with
``defence.dist_median`` 1.5: every defence on, in the default table), ``median1`` and
``bounded`` (``keys`` with ``dist_median`` 1 or 1.5 and ``samples_ratio`` 1), ``median3``
(``keys`` with ``dist_median`` 3) and ``nofix`` (checks without the fault fixes:
``clustering.beacon_memory=0``, ``clustering.unclustered_gossip=false``,
``gossip.repeat_loss=1``) on request.
The default table runs ``none`` and ``checks`` on every scenario, ``key`` on the clean run and the
rogues, ``fixed`` on the clean run and issue 20's rogues, ``keys`` on the clean run and the
insiders, ``median15`` (``EVERY``) on the clean run, (b+c) and the insiders (``TABLE``). Under
``key`` an insider holds the fleet key, as every robot of the fleet does.

    python benchmarks/robustness.py --jobs 2 --json docs/results/robustness.json
    python benchmarks/robustness.py --config config/paper_iid.yaml --jobs 2 \
        --scenario a --scenario b+c --scenario "e: rogue dominate_cap" \
        --scenario "e: rogue near_bound" --scenario "e: rogue accept_forge" \
        --defence fixed --defence checks --json docs/results/robustness_paper.json
    python benchmarks/robustness.py --scenario a --scenario "e: rogue insider" \
        --defence checks --defence keys --json docs/results/robustness_insider.json
    python benchmarks/robustness.py --scenario a --scenario "e: rogue insider_near" \
        --defence checks --defence clip --defence clip_half \
        --json docs/results/robustness_insider_clip.json
    python benchmarks/robustness.py --scenario a --scenario "e: rogue insider_near" \
        --defence bounded --json docs/results/robustness_insider_bounded.json
    python benchmarks/robustness.py --scenario a --scenario "e: rogue insider_near" \
        --defence median15 --defence median1 --defence median3 \
        --json docs/results/robustness_insider_median.json
    python benchmarks/robustness.py --config config/paper_iid.yaml --seeds 0 --scenario a \
        --scenario "e: rogue insider_near" --defence keys --defence median15 \
        --json docs/results/robustness_paper_insider.json
    python benchmarks/robustness.py --scenario a --scenario b --defence none \
        --defence checks --defence nofix --seeds 0 1 2 3 --json docs/results/robustness_faults.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

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
from gossip_learning.keyring import KEYRING_FILE, create_fleet
from gossip_learning.results import rounds_to_reach
from gossip_learning.sweep import data_key

CONFIG = "config/quickstart.yaml"
ROBOT_KEYS = "defence.identity=robot_keys"
ATTACKS = ("head_hijack", "handover", "fake_head", "dominate", "overflow", "impersonate",
           "propose_flood", "foreign_fleet", "head_forge", "handover_forge", "dominate_cap",
           "near_bound", "accept_forge", "insider", "insider_near", "insider_forge")  # fmt: skip
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
        "defence.dist_ratio=0",
    ],
    # the checks before issue 20 (no relative bounds)
    "fixed": ["defence.norm_ratio=0", "defence.samples_ratio=0", "defence.dist_ratio=0"],
    "checks": [],
    "key": ["defence.fleet_key=env:GL_BENCH_FLEET_KEY"],
    "keys": [ROBOT_KEYS],  # run_task makes the keys (see _robot_keys)
    "clip": ["defence.clip_ratio=0.2"],  # on request: checks + clipping at 0.2 of the own norm
    "clip_half": ["defence.clip_ratio=0.5"],  # on request: checks + clipping at 0.5
    "cap1": ["defence.samples_ratio=1"],  # on request: merge weight at most the median declared
    # on request (issue 20): per-robot keys, merged and adopted models pulled to 1.5 x the
    # robot's own median training move (every defence on); also with the merge weight at most
    # the median declared, and with that and a radius of 1 x
    "median15": [ROBOT_KEYS, "defence.dist_median=1.5"],
    "bounded": [ROBOT_KEYS, "defence.dist_median=1.5", "defence.samples_ratio=1"],
    "median1": [ROBOT_KEYS, "defence.dist_median=1", "defence.samples_ratio=1"],
    # on request: a radius of 3 x, wide enough that a clean run clips (almost) nothing
    "median3": [ROBOT_KEYS, "defence.dist_median=3"],
    # on request: checks, with DK-means deciding on each pass's beacons alone and robots in no
    # cluster not gossiping, no frame sent twice (the protocol before issue 20's fault fixes)
    "nofix": [
        "clustering.beacon_memory=0",
        "clustering.unclustered_gossip=false",
        "gossip.repeat_loss=1",
    ],
}
EVERY = "median15"  # every defence on: its honest cost and what an insider costs with it
ISSUE20 = ("head_forge", "handover_forge", "dominate_cap", "near_bound", "accept_forge")
CLEAN = "a: no faults"
ROGUES = [s for s in SCENARIOS if s.startswith("e:")]
INSIDERS = [s for s in ROGUES if s.startswith("e: rogue insider")]
# the default table: which scenarios each defence runs on
TABLE: dict[str, list[str]] = {
    "none": list(SCENARIOS),
    "fixed": [CLEAN, *(f"e: rogue {a}" for a in ISSUE20)],
    "checks": list(SCENARIOS),
    "key": [CLEAN, *ROGUES],
    "keys": [CLEAN, *INSIDERS],
    EVERY: [CLEAN, "b+c", *INSIDERS],
}
# who holds what and what each attack does (the docs' threat-model table)
RADIO, NOTHING = "radio in range", "nothing"
FLEET, OWN_KEY = "fleet robot", "its own per-robot key"
THREATS: dict[str, tuple[str, str, str]] = {
    "head_hijack": (RADIO, NOTHING, "head-layer models naming each cluster, in its own id"),
    "handover": (RADIO, NOTHING, "HANDOVERs to every member, in its own id"),
    "fake_head": (RADIO, NOTHING, "heads a cluster that does not exist"),
    "dominate": (RADIO, NOTHING, "a member declaring 2^32-1 samples"),
    "overflow": (RADIO, NOTHING, "a member whose models are 3e38 in every weight"),
    "impersonate": (RADIO, NOTHING, "ACCEPTs in neighbours' names, first on the air"),
    "propose_flood": (RADIO, NOTHING, "20 proposals per robot and step, then poisoned REPLYs"),
    "foreign_fleet": (RADIO, "another fleet's key", "a robot of another fleet, same head"),
    "head_forge": (RADIO, NOTHING, "head models in each heard head's own id, honest norm"),
    "handover_forge": (RADIO, NOTHING, "HANDOVERs in each member's own head's id"),
    "dominate_cap": (RADIO, NOTHING, "10^6 samples (the fixed cap), honest-norm random models"),
    "near_bound": (RADIO, NOTHING, "models just under the fixed 1000 RMS bound"),
    "accept_forge": (RADIO, NOTHING, "ACCEPTs in neighbours' names with what they declared, "
                     "honest-norm random models"),
    # a fleet robot (with ``keys``: its own per-robot key; with ``key``: the fleet key)
    "insider": (FLEET, OWN_KEY,
                "lies as itself: honest-norm random models, 10^6 samples, in its own id only"),
    "insider_near": (FLEET, OWN_KEY, "insider whose model for each robot is that robot's last "
                     "model plus an orthogonal 2.7 norms: inside the default relative bounds"),
    "insider_forge": (FLEET, OWN_KEY, "insider, plus accept_forge and handover_forge in other "
                      "robots' ids, signed with its own key"),
}  # fmt: skip


# the benchmark's (public) fleet secret, from the environment like any fleet secret
BENCH_KEY_VAR, BENCH_KEY = "GL_BENCH_FLEET_KEY", "robustness benchmark key"
os.environ.setdefault(BENCH_KEY_VAR, BENCH_KEY)


Task = tuple[str, tuple[str, ...], str, int]  # config, overrides, method, seed


def _robot_keys(config: str, overrides: tuple[str, ...], folder: Path) -> list[str]:
    """A fresh fleet of per-robot keys in ``folder`` for the run's robots (and its rogues, if
    they are insiders: each then holds its own key) and the overrides that point at it."""
    cfg = load_config(config, [o for o in overrides if o != ROBOT_KEYS])
    n, fc = cfg.swarm.num_robots, cfg.faults
    insiders = fc.rogues if fc.rogue_attack.startswith("insider") else 0
    create_fleet(folder, list(range(n + insiders)), cfg.defence.fleet_id)
    return [f"defence.keyring=file:{folder / KEYRING_FILE}", f"defence.robot_keys=file:{folder}"]


def run_task(
    task: Task, datasets: dict[str, Dataset] | None = None
) -> tuple[list[dict], dict[str, int]]:
    """One run of the table (a sweep task): its metric rows and what was refused, by reason.
    The data comes from ``datasets`` (shipped once per node), else from the config."""
    config, overrides, method, seed = task
    os.environ.setdefault(BENCH_KEY_VAR, BENCH_KEY)  # a Ray worker has not imported this file
    with tempfile.TemporaryDirectory(prefix="gl-bench-keys-") as tmp:
        keys = _robot_keys(config, overrides, Path(tmp)) if ROBOT_KEYS in overrides else []
        cfg = load_config(config, [*overrides, *keys, f"experiment.seeds=[{seed}]"])
        sw = Swarm(cfg, method, seed, datasets[data_key(cfg)] if datasets else load_data(cfg))
        rows = [sw.step()[0] for _ in range(cfg.experiment.rounds)]
        rows[-1]["merges_per_robot"] = sum(a.window.merged_total for a in sw.agents) / len(
            sw.agents
        )
        rows[-1]["clipped"] = sum(a.bounds.clipped for a in sw.agents)  # dist_median pulls
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
    """Each defence on its scenarios (``defences``: defence -> scenario names), per seed: one
    task per run on ``backend``, the rows written in the table's order whatever order the tasks
    finish in."""
    pairs = [(s, d) for s in scenarios for d in defences if s in defences[d]]
    tasks: list[Task] = []
    for seed in seeds:
        tasks.append((config, (), "cfl", seed))
        tasks += [(config, (*scenarios[s], *DEFENCES[d]), "bilayer", seed) for s, d in pairs]
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
        for scenario, defence in pairs:
            rows, refused = results[
                (config, (*scenarios[scenario], *DEFENCES[defence]), "bilayer", seed)
            ]
            reached = rounds_to_reach(rows, "bilayer", target)
            rec = report.add(
                config=config, seed=seed, scenario=scenario, defence=defence,
                acc_final=rows[-1]["acc_mean"], cfl_final=cfl,
                rounds_to_95_cfl=None if math.isnan(reached) else int(reached),
                rejected=", ".join(f"{k} {v}" for k, v in sorted(refused.items())) or "none",
                rogue_frames=sum(r["rogue_frames"] for r in rows),
                # how the clusters held (rounds 2.. : round 1 forms them), and gossip that happened
                alone_per_round=statistics.mean(r["singletons"] for r in rows[1:]),
                moved_per_round=statistics.mean(r["membership_changes"] for r in rows[1:]),
                merges_per_robot=rows[-1].get("merges_per_robot"),
                clipped=rows[-1].get("clipped"),  # models the robots pulled (dist_median)
            )  # fmt: skip
            print(f"{scenario:<24} {defence:<7} acc {rec['acc_final']:.3f} "
                  f"r95 {rec['rounds_to_95_cfl']} refused: {rec['rejected']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
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
    if args.json and (args.scenario or args.defence) and args.json.endswith("/robustness.json"):
        p.error("that file holds the whole table: drop --scenario/--defence")
    scenarios = {
        k: v
        for k, v in SCENARIOS.items()
        if not args.scenario or any(k.startswith(s) for s in args.scenario)
    }
    defences = (
        {d: list(scenarios) for d in args.defence}
        if args.defence
        else {d: [s for s in TABLE[d] if s in scenarios] for d in TABLE}
    )
    if not scenarios:
        p.error(f"--scenario matches none of: {', '.join(SCENARIOS)}")
    report = Report(
        "robustness",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=args.json,
        allow_dirty=args.allow_dirty,
    )
    config = args.config
    _table(report, config, args.seeds, scenarios, defences, backend)
    out = report.as_dict()
    out["threats"] = {a: dict(zip(("attacker", "holds", "attack"), t, strict=True))
                      for a, t in THREATS.items()}  # fmt: skip
    out["sweep"] = backend_info(backend)
    if args.json:
        atomic.write_text(args.json, json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    print(format_load(out["machine"]["load_avg_before"]), "->",
          format_load(out["machine"]["load_avg_after"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
