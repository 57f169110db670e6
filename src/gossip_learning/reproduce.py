"""Regenerate the paper's experiments (arXiv 2501.04817) with one command.

``gossip-learning reproduce --out results/paper`` runs every experiment below on MCUNet-in3
features of CIFAR-10 (computed once and cached), each against CFL with the same head and local
training, over several seeds, then writes ``tables.md``, ``tables.json`` and figures. Each
(experiment, seed) is one task (``gossip_learning.sweep``) on a local pool (``--jobs``) or a Ray
cluster (``--backend ray --address HOST:PORT``); finished tasks are skipped, so an interrupted run
resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gossip_learning import atomic, plots
from gossip_learning.backends import add_backend_args, backend_from_args
from gossip_learning.config import Config, load_config
from gossip_learning.provenance import load_avg, run_info
from gossip_learning.results import check_writable, load_results, summarise
from gossip_learning.sweep import SweepItem, add_set_arg, is_done, run_sweep


def _config_dir() -> Path:
    """config/ of a source checkout, else the copy installed under <prefix>/share."""
    import sys

    for cand in (
        Path(__file__).resolve().parents[2] / "config",
        Path(sys.prefix) / "share" / "gossip_learning" / "config",
    ):
        if (cand / "paper_iid.yaml").is_file():
            return cand
    raise FileNotFoundError("cannot find the paper configs (config/paper_*.yaml)")


@dataclass(frozen=True)
class Experiment:
    """One paper experiment: a config file plus overrides, in a named group."""

    name: str
    group: str
    config: str
    overrides: tuple[str, ...] = ()
    label: str = ""
    value: float = math.nan
    ref: str = ""  # experiment whose CFL run this one is compared with (itself if it has one)


def experiments() -> list[Experiment]:
    """Every experiment of the reproduction, in the order they run."""
    out: list[Experiment] = []
    for n in (30, 60, 100):
        methods = "[bilayer, flat, cfl]" if n == 30 else "[bilayer, cfl]"
        out.append(
            Experiment(
                f"iid_n{n}",
                "iid",
                "paper_iid.yaml",
                (f"swarm.num_robots={n}", f"experiment.methods={methods}"),
                f"{n} robots",
                n,
            )
        )
    for a in (10.0, 1.0, 0.5, 0.1):
        methods = "[bilayer, flat, cfl]" if a == 0.5 else "[bilayer, cfl]"
        out.append(
            Experiment(
                f"dirichlet_a{a:g}",
                "dirichlet",
                "paper_dirichlet.yaml",
                (f"data.alpha={a}", f"experiment.methods={methods}"),
                f"α = {a:g}",
                a,
            )
        )
    for part, extra in (
        ("iid", ("data.partition=iid",)),
        ("a0.5", ("data.partition=dirichlet", "data.alpha=0.5")),
    ):
        for r in (15, 30, 45, 60, 75, 90):
            methods = "[bilayer, cfl]" if r == 60 else "[bilayer]"
            out.append(
                Experiment(
                    f"range{r}_{part}",
                    f"range_{part}",
                    "paper_range.yaml",
                    (f"channel.comm_range={r}", f"experiment.methods={methods}", *extra),
                    f"range {r}",
                    r,
                    ref=f"range60_{part}",
                )
            )
    for crit in ("emd", "mixed"):
        out.append(
            Experiment(
                f"criterion_{crit}",
                "criterion",
                "paper_dirichlet.yaml",
                ("data.alpha=0.5", "experiment.methods=[bilayer]", f"clustering.criterion={crit}"),
                crit,
                ref="dirichlet_a0.5",
            )
        )
    out.append(
        Experiment(
            "head_linear",
            "head",
            "paper_iid.yaml",
            ("learning.head=linear", "experiment.methods=[bilayer, cfl]"),
            "linear head",
        )
    )
    # Beyond the paper: one-to-many broadcast (what a radio does) instead of pairwise push-pull.
    for a in (1.0, 0.5, 0.1):
        out.append(
            Experiment(
                f"broadcast_a{a:g}",
                "broadcast",
                "paper_dirichlet.yaml",
                (f"data.alpha={a}", "experiment.methods=[bilayer, flat]", "gossip.mode=broadcast"),
                f"broadcast, α = {a:g}",
                a,
                ref=f"dirichlet_a{a:g}",
            )
        )
    for r in (15, 30):
        out.append(
            Experiment(
                f"broadcast_range{r}_a0.5",
                "broadcast",
                "paper_range.yaml",
                (
                    f"channel.comm_range={r}",
                    "experiment.methods=[bilayer]",
                    "data.partition=dirichlet",
                    "data.alpha=0.5",
                    "gossip.mode=broadcast",
                ),
                f"broadcast, 60 robots, range {r}, α = 0.5",
                r,
                ref="range60_a0.5",
            )
        )
    out += _reference_experiments()
    out += authors_experiments()
    return out


#: The settings the authors logged gaps to CFL for first (30 robots), then the larger swarms.
AUTHORS_SETTINGS = (
    ("a0.1", ("data.partition=dirichlet", "data.alpha=0.1"), "α = 0.1"),
    ("a0.5", ("data.partition=dirichlet", "data.alpha=0.5"), "α = 0.5"),
    ("a1", ("data.partition=dirichlet", "data.alpha=1.0"), "α = 1"),
    ("a10", ("data.partition=dirichlet", "data.alpha=10.0"), "α = 10"),
    ("iid_n30", ("data.partition=iid",), "IID, 30 robots"),
    ("iid_n60", ("data.partition=iid", "swarm.num_robots=60"), "IID, 60 robots"),
    ("iid_n100", ("data.partition=iid", "swarm.num_robots=100"), "IID, 100 robots"),
)
#: The authors' 200 matchings in a round window hear every in-range cluster-mate
#: (benchmarks/window_coverage.py), which makes them one weighted mean over the cluster
#: neighbourhood: exactly one broadcast step in a round window (test_window.py checks the
#: models are equal), at a fraction of the simulator's time. The reproduction runs that.
AUTHORS_EQUIVALENT = ("gossip.mode=broadcast", "gossip.intra_steps=1")
#: Their initial heads: every device re-draws its classifier (``reset_classifier_weights``:
#: ``kaiming_normal_`` weights, zero biases) from one running torch generator, so no two
#: devices start alike (../shared/DESIGN.md §1 cites their code).
AUTHORS_INIT = ("learning.init=per_robot", "learning.init_scheme=kaiming_normal")
#: One version of their device.py: the cumulative sum starts from the model before training.
AUTHORS_START = ("gossip.window_start=before_training",)
#: The settings where our gap was smaller than theirs: run these first.
AUTHORS_INIT_FIRST = ("a1", "a0.5")


def authors_experiments() -> list[Experiment]:
    """Group ``authors`` (issue 22), in the order they run (what the authors logged a gap for
    first): config/paper_authors.yaml, the authors' gossip, with its own CFL, on Dirichlet
    α = 0.1 / 0.5 / 1 / 10 and IID 30 robots; with their initial heads (``learning.init:
    per_robot``, ``init_scheme: kaiming_normal``: every device of their simulator re-draws its
    classifier with ``kaiming_normal_``) at α = 1 and 0.5; with their head election
    (``clustering.election: paper``); IID 60 and 100 robots; their commit 750893b's inter layer
    between any robots of different clusters (heard in full here: the upper bound of their 10
    inter matchings); their initial heads on the other settings; the round window started from
    the model before local training (``gossip.window_start: before_training``, one version of
    their code), alone and with their initial heads; then our own protocol
    (config/paper_iid.yaml, pairwise G 2 / 1) and its broadcast on every setting, so the whole
    side-by-side table comes from one run. The variants are compared with the CFL of the same
    setting."""

    def exp(prefix: str, key: str, extra: tuple[str, ...], label: str, more: tuple[str, ...],
            methods: str = "[bilayer]", config: str = "paper_authors.yaml",
            ) -> Experiment:  # fmt: skip
        equivalent = AUTHORS_EQUIVALENT if config == "paper_authors.yaml" else ()
        return Experiment(
            f"{prefix}_{key}", "authors", config,
            (*extra, *equivalent, *more, f"experiment.methods={methods}"),
            label, ref="" if "cfl" in methods else f"authors_{key}",
        )  # fmt: skip

    first, large = AUTHORS_SETTINGS[:5], AUTHORS_SETTINGS[5:]
    init = [s for s in first if s[0] in AUTHORS_INIT_FIRST]
    out = [exp("authors", k, x, f"authors' gossip, {lab}", (), "[bilayer, cfl]")
           for k, x, lab in first]  # fmt: skip
    out += [exp("authorsinit", k, x, f"authors' gossip and initial heads, {lab}", AUTHORS_INIT)
            for k, x, lab in init]  # fmt: skip
    out += [exp("authorsel", k, x, f"authors' gossip and head election, {lab}",
                ("clustering.election=paper",)) for k, x, lab in first]  # fmt: skip
    out += [exp("authors", k, x, f"authors' gossip, {lab}", (), "[bilayer, cfl]")
            for k, x, lab in large]  # fmt: skip
    out += [exp("authors750", k, x, f"authors' gossip at 750893b, {lab}",
                ("gossip.inter_steps=1", "gossip.inter_peers=any"))
            for k, x, lab in AUTHORS_SETTINGS]  # fmt: skip
    out += [exp("authorsinit", k, x, f"authors' gossip and initial heads, {lab}", AUTHORS_INIT)
            for k, x, lab in first if (k, x, lab) not in init]  # fmt: skip
    out += [exp("authorspre", k, x, f"authors' gossip from the untrained model, {lab}",
                AUTHORS_START) for k, x, lab in first]  # fmt: skip
    out += [exp("authorsboth", k, x, f"authors' gossip, their heads, untrained start, {lab}",
                (*AUTHORS_INIT, *AUTHORS_START)) for k, x, lab in first]  # fmt: skip
    out += [exp("ours", k, x, f"ours, pairwise G 2 / 1, {lab}", (), config="paper_iid.yaml")
            for k, x, lab in AUTHORS_SETTINGS]  # fmt: skip
    out += [exp("oursbc", k, x, f"ours, broadcast G 2 / 1, {lab}", ("gossip.mode=broadcast",),
                config="paper_iid.yaml") for k, x, lab in AUTHORS_SETTINGS]  # fmt: skip
    return out


def _reference_experiments() -> list[Experiment]:
    """The settings of issue 12's independent reimplementation: 20 rounds, the full 10k test
    set, CFL and flat broadcast with one averaging step (docs/results.md, "Package vs an
    independent reference")."""
    common = ("experiment.rounds=20", "data.eval_subset=0")
    flat1 = ("gossip.mode=broadcast", "gossip.intra_steps=1")
    a05 = ("data.partition=dirichlet", "data.alpha=0.5")
    return [
        Experiment(
            "ref_cfl_n30_iid",
            "reference",
            "paper_iid.yaml",
            ("swarm.num_robots=30", "experiment.methods=[cfl]", *common),
            "CFL, 30 robots, IID",
        ),
        Experiment(
            "ref_flat1_range60_iid",
            "reference",
            "paper_range.yaml",
            ("channel.comm_range=60", "experiment.methods=[flat, cfl]", *flat1, *common),
            "flat broadcast 1 step, range 60, IID",
        ),
        Experiment(
            "ref_flat1_range60_a0.5",
            "reference",
            "paper_range.yaml",
            ("channel.comm_range=60", "experiment.methods=[flat, cfl]", *flat1, *a05, *common),
            "flat broadcast 1 step, range 60, α = 0.5",
        ),
        Experiment(
            "ref_flat1_range30_a0.5",
            "reference",
            "paper_range.yaml",
            ("channel.comm_range=30", "experiment.methods=[flat]", *flat1, *a05, *common),
            "flat broadcast 1 step, range 30, α = 0.5",
            ref="ref_flat1_range60_a0.5",
        ),
    ]


def _config(exp: Experiment, common: Sequence[str]) -> Config:
    return load_config(
        _config_dir() / exp.config, [*exp.overrides, *common, f"experiment.name={exp.name}"]
    )


def _done(folder: Path) -> bool:
    return is_done(folder)


def _reference(rows_by_exp: dict[str, list[dict[str, Any]]], exp: Experiment) -> str | None:
    """The experiment whose CFL run a CFL-less experiment is compared with."""
    if any(r["method"] == "cfl" for r in rows_by_exp.get(exp.name, [])):
        return exp.name
    return exp.ref or None


def _summary_with_cfl(rows: list[dict[str, Any]], ref_rows: list[dict[str, Any]]) -> dict[str, Any]:
    cfl = [r for r in ref_rows if r["method"] == "cfl"]
    return summarise([r for r in rows if r["method"] != "cfl"] + cfl)


def _sweep_figures(out: Path, exps: Sequence[Experiment], data: dict[str, Any]) -> list[str]:
    """Final accuracy against the swept value for the range and Dirichlet groups."""
    lines: list[str] = []
    for name, groups, xlabel in (
        ("range_sweep", ("range_iid", "range_a0.5"), "communication range"),
        ("dirichlet_sweep", ("dirichlet",), "Dirichlet α (log scale: 10, 1, 0.5, 0.1)"),
    ):
        series: dict[str, list[tuple[float, float, float]]] = {}
        refs: dict[str, float] = {}
        for e in exps:
            if e.group not in groups or e.name not in data:
                continue
            for m, s in data[e.name]["methods"].items():
                x = math.log10(e.value) if e.group == "dirichlet" else e.value
                if m == "cfl" and e.group.startswith("range_"):
                    refs[f"cfl ({e.group})"] = s["final_acc_mean"]
                    continue
                series.setdefault(f"{m} ({e.group})", []).append(
                    (x, s["final_acc_mean"], s["final_acc_std"])
                )
        if series:
            plots.plot_sweep(series, out / "figures" / f"{name}.png", xlabel, refs=refs)
            lines += [f"![{name}](figures/{name}.png)", ""]
    return lines


def write_tables(out: Path, exps: Sequence[Experiment]) -> str:
    """Collect every finished experiment into tables.md / tables.json and group figures."""
    rows_by_exp = {e.name: load_results(out / e.name) for e in exps if _done(out / e.name)}
    lines = ["# Reproduction of arXiv 2501.04817 — tables", ""]
    data: dict[str, Any] = {}
    for group in dict.fromkeys(e.group for e in exps):
        members = [e for e in exps if e.group == group and e.name in rows_by_exp]
        if not members:
            continue
        lines += [
            f"## {group}",
            "",
            "| experiment | method | final acc (mean ± std) | lowest robot | CFL final "
            "| gap to CFL (pts) | rounds to 95 % CFL | extra rounds vs CFL | clusters "
            "| churn/round |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        curves: dict[str, list[dict[str, Any]]] = {}
        for e in members:
            ref = _reference(rows_by_exp, e)
            ref_rows = rows_by_exp.get(ref or "", [])
            summ = (
                _summary_with_cfl(rows_by_exp[e.name], ref_rows)
                if ref_rows
                else summarise(rows_by_exp[e.name])
            )
            data[e.name] = summ
            cfl = summ["methods"].get("cfl", {})
            rounds = summ["rounds"]
            for m, s in summ["methods"].items():
                if m == "cfl" and ref != e.name:
                    continue

                def f(v: Any, fmt: str) -> str:
                    return "—" if v is None else format(v, fmt)

                churn = s["total_membership_changes"] / rounds if rounds else 0.0
                acc = f"{s['final_acc_mean']:.3f} ± {s['final_acc_std']:.3f}"
                cells = [
                    e.label or e.name,
                    m,
                    acc,
                    f"{s['final_acc_min_mean']:.3f}",
                    f(cfl.get("final_acc_mean"), ".3f"),
                    f(s.get("gap_to_cfl_points"), "+.1f"),
                    f(s.get("rounds_to_95pct_cfl"), ".0f"),
                    f(s.get("extra_rounds_vs_cfl"), "+.0f"),
                    f"{s['mean_clusters']:.1f}",
                    f"{churn:.1f}",
                ]
                lines.append("| " + " | ".join(cells) + " |")
            curves[e.label or e.name] = rows_by_exp[e.name]
        lines.append("")
        plots.plot_compare(curves, out / "figures" / f"{group}.png")
        lines += [f"![{group}](figures/{group}.png)", ""]
    lines += _sweep_figures(out, exps, data)
    text = "\n".join(lines)
    atomic.write_text(out / "tables.md", text)
    atomic.write_json(out / "tables.json", data)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """``gossip-learning reproduce`` entry point."""
    p = argparse.ArgumentParser(prog="gossip-learning reproduce", description=__doc__)
    p.add_argument(
        "--out", default="results/paper", help="folder for every experiment and the tables"
    )
    p.add_argument(
        "--only", nargs="*", default=None, help="run only these experiments (names or groups)"
    )
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    add_backend_args(p, "experiment seeds")
    add_set_arg(p, "override for every experiment, e.g. experiment.seeds=[0]")
    args = p.parse_args(argv)
    exps = experiments()
    if args.only is not None:
        known = {e.name for e in exps} | {e.group for e in exps}
        unknown = [name for name in args.only if name not in known]
        if unknown or not args.only:
            groups = ", ".join(dict.fromkeys(e.group for e in exps))
            what = (
                f"unknown experiment or group {', '.join(map(repr, unknown))}"
                if unknown
                else "names no experiment"
            )
            print(f"error: --only: {what}; groups: {groups} (--list shows every name)",
                  file=sys.stderr)  # fmt: skip
            return 2
        exps = [e for e in exps if e.name in args.only or e.group in args.only]
    if args.list:
        for e in exps:
            print(f"{e.name:<18} {e.group:<12} {e.config} {' '.join(e.overrides)}")
        return 0
    backend = backend_from_args(args)
    items = [SweepItem(e.name, _config(e, args.overrides)) for e in exps]  # bad config: fail now
    out = check_writable(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = ["gossip-learning", "reproduce", *(argv if argv is not None else sys.argv[2:])]
    # the commit, tree state and load when the run starts (the run takes many minutes)
    info = run_info(command)
    t = time.perf_counter()
    where = run_sweep(items, out, backend, command)
    text = write_tables(out, experiments())
    info.update(wall_seconds=round(time.perf_counter() - t, 1), jobs=args.jobs, sweep=where)
    info["machine"]["load_avg_after"] = load_avg()
    atomic.write_text(out / "run_info.json", json.dumps(info, indent=2) + "\n")
    print(text)
    print(f"wall time {time.perf_counter() - t:.0f} s; tables: {out / 'tables.md'}")
    return 0
