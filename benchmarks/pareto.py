"""Accuracy per byte: final accuracy and rounds to 95 % of CFL against the bytes a robot sends per
round, for the exchange settings of the package (docs/results.md, "Accuracy per byte").

Three grids on MCUNet-in3 features of CIFAR-10 (dataset ``cifar10-mcunet``, from the cache):

* ``pareto`` — config/paper_dirichlet.yaml (30 robots, range 60, Dirichlet α = 0.5): bilayer and
  flat gossip, pairwise and broadcast, G_intra 1, 2, 3, 5 (fp32); and fp16, int8 (one scale) and
  int8_block (one scale per 64 values) at G_intra 2.
* ``sparse`` — config/paper_range.yaml at range 30, α = 0.5 (60 robots): settings that may close
  the gap one averaging step leaves there (more steps, border members in the inter layer).
* ``quickstart`` (not run by default) — config/quickstart.yaml (20 robots, digits): bilayer
  pairwise and broadcast with each model encoding, its own JSON (pareto_quickstart.json).
* ``skew60`` / ``skew01`` (not run by default; their own JSON, pareto_targets.json) — issue 12's
  label-skew targets: 60 robots at range 60 with α = 0.5, and 30 robots with α = 0.1: the paper's
  bilayer pairwise 2/1 beside more steps with border members, broadcast, and flat broadcast.
* ``range`` — the same 60 robots at ranges 15 … 90, bilayer pairwise (the paper's protocol), with
  what the runs record about clusters and matching, for the range-sweep question.

Each point runs every seed, and CFL runs once per grid and seed; "rounds to 95 % CFL" is the first
round at which the seed-averaged robot mean reaches 95 % of CFL's final accuracy. Bytes are every
frame a robot transmits (envelope included; one broadcast counted once), averaged over rounds and
seeds, divided by the number of robots.

    python benchmarks/pareto.py --jobs 2 --json docs/results/pareto.json \
        --figure docs/figures/pareto.png
    python benchmarks/pareto.py --grid quickstart --json docs/results/pareto_quickstart.json
    python benchmarks/pareto.py --backend ray --address HEAD:6379 ...   # on a Ray cluster
    python benchmarks/pareto.py --grid skew60 skew01 --jobs 2 \
        --json docs/results/pareto_targets.json
    python tools/render_docs.py      # the tables in docs/results.md
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _report import ROOT, Report, allow_dirty_flag, format_load

from gossip_learning import atomic
from gossip_learning.backends import add_backend_args, backend_from_args, backend_info, run_tasks
from gossip_learning.config import load_config
from gossip_learning.datasets import Dataset
from gossip_learning.experiment import run_one
from gossip_learning.plan import load_data
from gossip_learning.results import summarise
from gossip_learning.sweep import data_key

Point = tuple[str, str, str, tuple[str, ...]]  # grid, name, method, overrides

GRIDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pareto": ("config/paper_dirichlet.yaml", ("data.alpha=0.5",)),
    "sparse": (
        "config/paper_range.yaml",
        ("channel.comm_range=30", "data.partition=dirichlet", "data.alpha=0.5"),
    ),
    "range": ("config/paper_range.yaml", ("data.partition=dirichlet", "data.alpha=0.5")),
    "quickstart": ("config/quickstart.yaml", ()),
    "skew60": (
        "config/paper_range.yaml",
        ("channel.comm_range=60", "data.partition=dirichlet", "data.alpha=0.5"),
    ),
    "skew01": ("config/paper_dirichlet.yaml", ("data.alpha=0.1",)),
}
DEFAULT_GRIDS = ("pareto", "sparse", "range")
STEPS = (1, 2, 3, 5)
DTYPES = ("f16", "int8", "int8_block")
SPARSE: dict[str, tuple[str, tuple[str, ...]]] = {
    "flat broadcast G=1": ("flat", ("gossip.mode=broadcast", "gossip.intra_steps=1")),
    "flat broadcast G=2": ("flat", ("gossip.mode=broadcast", "gossip.intra_steps=2")),
    "flat broadcast G=3": ("flat", ("gossip.mode=broadcast", "gossip.intra_steps=3")),
    "flat broadcast G=5": ("flat", ("gossip.mode=broadcast", "gossip.intra_steps=5")),
    "bilayer broadcast 2/1 heads": ("bilayer", ("gossip.mode=broadcast",)),
    "bilayer broadcast 2/1 border": (
        "bilayer",
        ("gossip.mode=broadcast", "gossip.inter_peers=border"),
    ),
    "bilayer broadcast 3/2 border": (
        "bilayer",
        (
            "gossip.mode=broadcast",
            "gossip.inter_peers=border",
            "gossip.intra_steps=3",
            "gossip.inter_steps=2",
        ),
    ),
    "bilayer broadcast 5/3 border": (
        "bilayer",
        (
            "gossip.mode=broadcast",
            "gossip.inter_peers=border",
            "gossip.intra_steps=5",
            "gossip.inter_steps=3",
        ),
    ),
}
RANGES = (15, 30, 45, 60, 75, 90)
#: Issue 12's label-skew targets: the paper's exchange (bilayer pairwise 2/1) beside the
#: settings that close the gap, on the 60-robot α = 0.5 swarm and the 30-robot α = 0.1 one.
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bilayer pairwise 2/1 heads": ("bilayer", ()),
    "bilayer pairwise 4/3 border": (
        "bilayer",
        ("gossip.intra_steps=4", "gossip.inter_steps=3", "gossip.inter_peers=border"),
    ),
    "bilayer broadcast 2/1 heads": ("bilayer", ("gossip.mode=broadcast",)),
    "bilayer broadcast 3/3 border": (
        "bilayer",
        (
            "gossip.mode=broadcast",
            "gossip.intra_steps=3",
            "gossip.inter_steps=3",
            "gossip.inter_peers=border",
        ),
    ),
    "flat broadcast G=3": ("flat", ("gossip.mode=broadcast", "gossip.intra_steps=3")),
}


def points(grids: Sequence[str]) -> list[Point]:
    """Every (grid, name, method, overrides) to run, CFL first in each grid."""
    out: list[Point] = []
    if "pareto" in grids:
        out.append(("pareto", "cfl", "cfl", ()))
        for method in ("bilayer", "flat"):
            for mode in ("pairwise", "broadcast"):
                for g in STEPS:
                    over = (f"gossip.mode={mode}", f"gossip.intra_steps={g}")
                    out.append(("pareto", f"{method} {mode} G={g} f32", method, over))
        pairs = (("bilayer", "pairwise"), ("bilayer", "broadcast"), ("flat", "broadcast"))
        for method, mode in pairs:
            for dt in DTYPES:
                over = (f"gossip.mode={mode}", "gossip.intra_steps=2", f"gossip.dtype={dt}")
                out.append(("pareto", f"{method} {mode} G=2 {dt}", method, over))
    if "sparse" in grids:
        out.append(("sparse", "cfl", "cfl", ()))
        out += [("sparse", name, m, over) for name, (m, over) in SPARSE.items()]
    if "quickstart" in grids:  # the model encodings on the quickstart swarm (digits)
        out.append(("quickstart", "cfl", "cfl", ()))
        for dt in ("f32", *DTYPES):
            for mode in ("pairwise", "broadcast"):
                over = (f"gossip.mode={mode}", f"gossip.dtype={dt}")
                out.append(("quickstart", f"bilayer {mode} {dt}", "bilayer", over))
    for grid in ("skew60", "skew01"):
        if grid in grids:
            out.append((grid, "cfl", "cfl", ()))
            out += [(grid, name, m, over) for name, (m, over) in TARGETS.items()]
    if "range" in grids:
        out.append(("range", "cfl", "cfl", ()))
        for r in RANGES:
            out.append(("range", f"range {r}", "bilayer", (f"channel.comm_range={r}",)))
    return out


def _overrides(point: Point, rounds: int, seed: int) -> list[str]:
    grid, _, method, over = point
    return [
        *GRIDS[grid][1],
        *over,
        f"experiment.rounds={rounds}",
        f"experiment.seeds=[{seed}]",
        f"experiment.methods=[{method}]",
    ]


def run_point(
    args: tuple[Point, int, int], datasets: dict[str, Dataset] | None = None
) -> tuple[Point, int, list[dict[str, Any]], float]:
    """One (point, seed): its per-round metric rows, relabelled with the point's name. The data
    comes from ``datasets`` (by ``data_key``: shipped once per node), else from the cache."""
    point, rounds, seed = args
    cfg = load_config(ROOT / GRIDS[point[0]][0], _overrides(point, rounds, seed))
    t = time.perf_counter()
    data = datasets[data_key(cfg)] if datasets else load_data(cfg)
    rows = run_one(cfg, point[2], seed, data).rows
    for row in rows:
        row["method"] = point[1]
    return point, seed, rows, time.perf_counter() - t


def _cluster_stats(rows: Sequence[dict[str, Any]], robots: int) -> dict[str, float]:
    """What the rows say about clusters and mixing (means over rounds and seeds)."""

    def mean(key: str) -> float | None:
        vals = [float(r[key]) for r in rows if key in r and math.isfinite(float(r[key]))]
        return float(np.mean(vals)) if vals else None

    clusters = mean("num_clusters")
    single = mean("singletons")
    out: dict[str, Any] = {
        "clusters": clusters,
        "singletons": single,
        "isolated": mean("isolated"),
        "headless_clusters": mean("headless_clusters"),
        "membership_changes": mean("membership_changes"),
        "spectral_gap_comm": mean("spectral_gap_comm"),
        "spectral_gap_mix": mean("spectral_gap_mix"),
        "mix_reach": mean("mix_reach"),
        "gossip_contraction": mean("gossip_contraction"),
        "consensus_distance": mean("consensus_distance"),
    }
    if clusters and single is not None:
        out["robots_per_cluster"] = (robots - single) / clusters
    return out


def summarise_grid(
    grid: str, results: dict[tuple[str, int], list[dict[str, Any]]], pts: Sequence[Point]
) -> list[dict[str, Any]]:
    """One record per point of ``grid``: accuracy, rounds to 95 % CFL, bytes per robot per round."""
    cfg = load_config(ROOT / GRIDS[grid][0], list(GRIDS[grid][1]))
    robots = cfg.swarm.num_robots
    cfl_rows = [r for (name, _), rows in results.items() if name == "cfl" for r in rows]
    records = []
    for _, name, method, over in pts:
        mine = [r for (n, _), rows in results.items() if n == name for r in rows]
        if not mine:
            continue
        summ = summarise(mine + (cfl_rows if name != "cfl" else []))["methods"]
        s = summ[name]
        cfl = summ.get("cfl", s)
        settings = dict(o.split("=", 1) for o in (*GRIDS[grid][1], *over))
        rec: dict[str, Any] = {
            "grid": grid,
            "name": name,
            "method": method,
            "mode": settings.get("gossip.mode", cfg.gossip.mode) if method != "cfl" else "",
            "intra_steps": int(settings.get("gossip.intra_steps", cfg.gossip.intra_steps)),
            "inter_steps": int(settings.get("gossip.inter_steps", cfg.gossip.inter_steps)),
            "inter_peers": settings.get("gossip.inter_peers", cfg.gossip.inter_peers),
            "dtype": settings.get("gossip.dtype", cfg.gossip.dtype),
            "comm_range": float(settings.get("channel.comm_range", cfg.channel.comm_range)),
            "robots": robots,
            "seeds": len(s["seeds"]),
            "final_acc_mean": s["final_acc_mean"],
            "final_acc_std": s["final_acc_std"],
            "final_acc_min_mean": s["final_acc_min_mean"],
            "cfl_final_acc": cfl["final_acc_mean"],
            "gap_to_cfl_points": s.get("gap_to_cfl_points"),
            "lowest_gap_points": 100.0 * (cfl["final_acc_mean"] - s["final_acc_min_mean"]),
            "rounds_to_95pct_cfl": s.get("rounds_to_95pct_cfl"),
            "extra_rounds_vs_cfl": s.get("extra_rounds_vs_cfl"),
            "bytes_per_robot_round": s["bytes_sent_per_round"] / robots,
            "pairs_matched": s.get("pairs_matched"),
            "pairs_matched_inter": s.get("pairs_matched_inter"),
        }
        if grid == "range":
            rec.update(_cluster_stats(mine, robots))
        records.append({k: v for k, v in rec.items() if v is not None})
    return records


def plot(records: Sequence[dict[str, Any]], out: Path) -> None:
    """Final accuracy and rounds to 95 % CFL against kB per robot per round (pareto grid)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    pts = [r for r in records if r["grid"] == "pareto" and r["method"] != "cfl"]
    cfl = next((r for r in records if r["grid"] == "pareto" and r["method"] == "cfl"), None)
    colours = {
        ("bilayer", "pairwise"): "C0",
        ("bilayer", "broadcast"): "C1",
        ("flat", "pairwise"): "C2",
        ("flat", "broadcast"): "C3",
    }
    markers = {"f32": "o", "f16": "s", "int8": "v", "int8_block": "^"}
    for ax, key, label in (
        (axes[0], "final_acc_mean", "final accuracy (robot mean)"),
        (axes[1], "rounds_to_95pct_cfl", "rounds to 95 % of CFL (never: top)"),
    ):
        top = max((r.get(key) or 0) for r in pts) + 2 if key != "final_acc_mean" else 0
        for (method, mode), colour in colours.items():
            line = sorted(
                (r for r in pts if (r["method"], r["mode"], r["dtype"]) == (method, mode, "f32")),
                key=lambda r: r["intra_steps"],
            )
            xs = [r["bytes_per_robot_round"] / 1e3 for r in line]
            ys = [r.get(key) if r.get(key) is not None else top for r in line]
            ax.plot(xs, ys, "-o", color=colour, label=f"{method} {mode} (G=1,2,3,5; fp32)")
            for r, x, y in zip(line, xs, ys, strict=True):
                ax.annotate(str(r["intra_steps"]), (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")  # fmt: skip
            for r in pts:
                if (r["method"], r["mode"]) == (method, mode) and r["dtype"] != "f32":
                    y = r.get(key) if r.get(key) is not None else top
                    ax.plot(r["bytes_per_robot_round"] / 1e3, y, markers[r["dtype"]], color=colour,
                            mfc="none", ms=8)  # fmt: skip
        if key == "final_acc_mean" and cfl is not None:
            ax.axhline(cfl["final_acc_mean"], color="k", ls="--", lw=1, label="CFL")
        ax.set_xscale("log")
        ax.set_xlabel("kB sent per robot per round (log)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for dt, mk in markers.items():
        if dt != "f32":
            axes[1].plot([], [], mk, color="grey", mfc="none", label=f"{dt} (G=2)")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.suptitle("Accuracy per byte: 30 robots, Dirichlet α = 0.5, MCUNet-in3 CIFAR-10 features")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", nargs="*", default=list(DEFAULT_GRIDS), choices=list(GRIDS))
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    add_backend_args(p, "runs")
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument("--figure", default=None, help="write the accuracy-per-byte figure here")
    p.add_argument("--list", action="store_true", help="list the points and exit")
    p.add_argument("--plot-only", metavar="JSON", help="only draw --figure from a report")
    allow_dirty_flag(p)
    args = p.parse_args(argv)
    if args.plot_only:
        plot(json.loads(Path(args.plot_only).read_text(encoding="utf-8"))["records"],
             Path(args.figure or "pareto.png"))  # fmt: skip
        return 0
    pts = points(args.grid)
    if args.list:
        for pt in pts:
            print(f"{pt[0]:<7} {pt[1]:<32} {' '.join(_overrides(pt, args.rounds, 0))}")
        return 0
    report = Report("pareto", out=args.json, allow_dirty=args.allow_dirty)  # reads the commit
    tasks = [(pt, args.rounds, s) for s in args.seeds for pt in pts]
    for pt in pts:  # fail on a bad config before any work
        load_config(ROOT / GRIDS[pt[0]][0], _overrides(pt, args.rounds, 0))
    backend = backend_from_args(args)
    datasets: dict[str, Dataset] = {}
    for grid in args.grid:  # load (or build the feature cache of) each dataset once, up front
        cfg = load_config(ROOT / GRIDS[grid][0])
        datasets.setdefault(data_key(cfg), load_data(cfg))
    t0 = time.perf_counter()
    results: dict[str, dict[tuple[str, int], list[dict[str, Any]]]] = {g: {} for g in args.grid}

    def collect(done: tuple[Point, int, list[dict[str, Any]], float]) -> None:
        pt, seed, rows, secs = done
        results[pt[0]][(pt[1], seed)] = rows
        print(f"[{sum(map(len, results.values()))}/{len(tasks)}] {pt[0]:<7} {pt[1]:<32} "
              f"seed {seed}: {rows[-1]['acc_mean']:.3f} ({secs:.0f} s)", flush=True)  # fmt: skip

    for _task, done in run_tasks(run_point, tasks, datasets, backend):
        collect(done)
    for grid in args.grid:
        for rec in summarise_grid(grid, results[grid], [pt for pt in pts if pt[0] == grid]):
            report.add(**rec, rounds=args.rounds)
            print(
                f"{grid:<7} {rec['name']:<32} acc {rec['final_acc_mean']:.3f} "
                f"min {rec['final_acc_min_mean']:.3f} gap {rec.get('gap_to_cfl_points', 0):+.1f} "
                f"r95 {rec.get('rounds_to_95pct_cfl')} kB/robot/round "
                f"{rec['bytes_per_robot_round'] / 1e3:.0f}"
            )
    wall = time.perf_counter() - t0
    out = report.as_dict()
    out["wall_seconds"] = round(wall, 1)
    out["jobs"] = args.jobs
    out["sweep"] = backend_info(backend)
    out["seeds"] = list(args.seeds)
    out["rounds"] = args.rounds
    if args.json:
        atomic.write_text(args.json, json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.figure and "pareto" in args.grid:
        plot(report.records, Path(args.figure))
    print(f"wall time {wall:.0f} s, jobs {args.jobs};",
          format_load(out["machine"]["load_avg_before"]), "->",
          format_load(out["machine"]["load_avg_after"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
