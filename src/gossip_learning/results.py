"""Results folders: config snapshot, per-round metrics (CSV), summary (JSON), plots and maps.

Every file is written atomically, and metrics.csv/summary.json are rewritten after each run, so an
interrupted experiment leaves complete files for the runs that finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gossip_learning import atomic, plots
from gossip_learning.budget import check_swarm_memory
from gossip_learning.config import Config, dump_config
from gossip_learning.errors import GossipLearningError, OutputError
from gossip_learning.experiment import METRIC_COLUMNS, RunResult, run_one
from gossip_learning.plan import SwarmPlan, initial_head_info, load_data
from gossip_learning.provenance import load_avg, run_info

Row = dict[str, Any]


def check_writable(folder: str | Path, what: str = "--out") -> Path:
    """Raise :class:`OutputError` unless ``folder`` is, or can be made, a writable folder."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a file, not a folder: name a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{what} {str(path)!r}: {str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {str(path)!r}: folder {str(probe)!r} is not writable")
    return path


def make_results_dir(cfg: Config, out: str | Path | None) -> Path:
    """``out`` if given, else ``<out_dir>/<name>-<timestamp>`` (never an existing folder)."""
    if out is not None:
        path = Path(out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(cfg.experiment.out_dir) / f"{cfg.experiment.name}-{stamp}"
        k = 1
        while path.exists():
            path = Path(cfg.experiment.out_dir) / f"{cfg.experiment.name}-{stamp}-{k}"
            k += 1
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_metrics_csv(path: Path, rows: Iterable[Row]) -> None:
    """All rows, columns in :data:`METRIC_COLUMNS` order."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic.write_text(path, buf.getvalue())


TEXT_COLUMNS = ("method", "rejected_by", "transport_rejected_by")


def read_metrics_csv(path: Path) -> list[Row]:
    """Rows of a metrics.csv, numbers parsed."""
    if not path.is_file():
        raise GossipLearningError(f"{path} not found: is this a results folder?")
    out: list[Row] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            row: Row = {}
            for k, v in raw.items():
                if k in TEXT_COLUMNS:
                    row[k] = v or ""
                elif k in ("seed", "round"):
                    row[k] = int(v)
                else:
                    row[k] = float(v) if v not in ("", None) else math.nan
            out.append(row)
    return out


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def _nanmean_of(rows: Sequence[Row], key: str) -> float:
    """Mean of a column over rows, ignoring NaN (and rows without the column); NaN if none."""
    vals = [float(r[key]) for r in rows if key in r and math.isfinite(float(r[key]))]
    return float(np.mean(vals)) if vals else math.nan


def _nanmax_of(rows: Sequence[Row], key: str) -> float:
    """Largest finite value of a column (NaN if none: a run that never measured it)."""
    vals = [float(r[key]) for r in rows if key in r and math.isfinite(float(r[key]))]
    return max(vals) if vals else math.nan


def _curve(rows: Sequence[Row], method: str, key: str = "acc_mean") -> dict[int, list[float]]:
    by_round: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        if r["method"] == method:
            by_round[int(r["round"])].append(float(r[key]))
    return by_round


def rounds_to_reach(rows: Sequence[Row], method: str, target: float) -> float:
    """First round at which the seed-averaged mean accuracy reaches ``target`` (nan if never)."""
    curve = _curve(rows, method)
    for rnd in sorted(curve):
        if np.mean(curve[rnd]) >= target:
            return float(rnd)
    return math.nan


def summarise(rows: Sequence[Row]) -> dict[str, Any]:
    """Per-method final accuracy (mean ± std over seeds), gaps and rounds to 95 % of CFL."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    last = max(int(r["round"]) for r in rows) if rows else 0
    out: dict[str, Any] = {"rounds": last, "methods": {}}
    cfl_final = None
    if "cfl" in methods:
        cfl_final = float(
            np.mean([r["acc_mean"] for r in rows if r["method"] == "cfl" and r["round"] == last])
        )
    cfl_rounds = (
        rounds_to_reach(rows, "cfl", 0.95 * cfl_final) if cfl_final is not None else math.nan
    )
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        final = [r for r in mine if r["round"] == last]
        acc_m, acc_s = _mean_std([r["acc_mean"] for r in final])
        w_m, w_s = _mean_std([r["acc_weighted"] for r in final])
        entry: dict[str, Any] = {
            "seeds": sorted({int(r["seed"]) for r in mine}),
            "final_acc_mean": acc_m,
            "final_acc_std": acc_s,
            "final_acc_weighted_mean": w_m,
            "final_acc_weighted_std": w_s,
            "final_acc_min_mean": float(np.mean([r["acc_min"] for r in final])),
            "final_consensus_distance": float(np.mean([r["consensus_distance"] for r in final])),
            "mean_clusters": float(np.mean([r["num_clusters"] for r in mine])),
            "total_membership_changes": float(
                np.sum([r["membership_changes"] for r in mine]) / len(final)
            ),
            "total_head_changes": float(np.sum([r["head_changes"] for r in mine]) / len(final)),
            "bytes_sent_per_round": float(np.mean([r["bytes_sent"] for r in mine])),
            "msgs_dropped_per_round": float(np.mean([r["msgs_dropped"] for r in mine])),
            "msgs_rejected_total": float(np.sum([r["msgs_rejected"] for r in mine])),
            "pairs_matched": _nanmean_of(mine, "pairs_matched"),
            "pairs_matched_inter": _nanmean_of(mine, "pairs_matched_inter"),
            "agent_buffer_bytes": _nanmax_of(mine, "agent_buffer_bytes"),
            "agent_buffers": _nanmax_of(mine, "agent_buffers"),
            "seconds_per_round": float(np.mean([r["time_round"] for r in mine])),
        }
        if cfl_final is not None:
            reach = rounds_to_reach(rows, m, 0.95 * cfl_final)
            entry["gap_to_cfl_points"] = 100.0 * (cfl_final - acc_m)
            entry["rounds_to_95pct_cfl"] = reach
            entry["extra_rounds_vs_cfl"] = reach - cfl_rounds
        out["methods"][m] = entry
    return _finite(out)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def summary_table(summary: dict[str, Any]) -> str:
    """Markdown table of a summary."""
    lines = [
        "| method | final acc (mean ± std) | min robot acc | gap to CFL (pts) "
        "| rounds to 95 % CFL | s/round |",
        "|---|---|---|---|---|---|",
    ]
    for m, e in summary["methods"].items():
        gap = e.get("gap_to_cfl_points")
        reach = e.get("rounds_to_95pct_cfl")
        gap_s = "—" if gap is None else f"{gap:+.1f}"
        reach_s = "—" if reach is None else f"{reach:.0f}"
        acc = f"{e['final_acc_mean']:.3f} ± {e['final_acc_std']:.3f}"
        per_round = e["seconds_per_round"]  # None where no time was measured (ROS monitor)
        secs = "—" if per_round is None else f"{per_round:.2f}"
        lines.append(
            f"| {m} | {acc} | {e['final_acc_min_mean']:.3f} | {gap_s} | {reach_s} | {secs} |"
        )
    head = summary.get("initial_head")
    if head:
        seeds = ", ".join(f"{k} -> {v}" for k, v in head["init_seed_by_seed"].items())
        lines += [
            "",
            f"Initial head: {head['init_scheme']}, {head['init']}, init_seed {head['init_seed']} "
            f"(experiment seed -> head seed: {seeds}).",
        ]
    return "\n".join(lines)


def write_plots(folder: Path, rows: Sequence[Row], snapshots: Sequence[dict[str, Any]]) -> None:
    """accuracy.png, churn_spectral_<method>.png and one map per snapshot."""
    pdir = folder / "plots"
    plots.plot_accuracy(rows, pdir / "accuracy.png")
    for m in dict.fromkeys(r["method"] for r in rows):
        if m in ("bilayer", "flat"):
            plots.plot_churn_spectral(
                [r for r in rows if r["method"] == m], pdir / f"churn_spectral_{m}.png"
            )
    for snap in snapshots:
        if snap["seed"] == rows[0]["seed"] and snap["method"] != "cfl":
            name = f"map_{snap['method']}_round{snap['round']:03d}"
            atomic.write_json(folder / "maps" / f"{name}.json", snap)
            plots.plot_swarm_map(snap, pdir / f"{name}.png")


def run_experiment(
    cfg: Config,
    out: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    command: Sequence[str] | None = None,
) -> Path:
    """Run every (method, seed) of ``cfg`` and write the results folder; return its path.
    ``command`` (the command line that asked for the run) goes into ``run_info.json``."""
    if out is not None:
        check_writable(out)
    else:
        check_writable(cfg.experiment.out_dir, "experiment.out_dir")
    check_swarm_memory(cfg.swarm.num_robots + cfg.faults.rogues)  # before loading anything
    data = load_data(cfg)
    for seed in cfg.experiment.seeds:  # fail on an impossible swarm before writing anything
        plan = SwarmPlan(cfg, seed, data)
        check_swarm_memory(cfg.swarm.num_robots + cfg.faults.rogues, plan.spec.num_params())
    folder = make_results_dir(cfg, out)
    atomic.write_text(folder / "config.yaml", dump_config(cfg))
    t0 = time.perf_counter()
    info = run_info(command or ["gossip_learning.results.run_experiment"])
    info["initial_head"] = head = initial_head_info(cfg)
    if log:
        log(f"results -> {folder}")
        log(
            f"data '{data.name}': {len(data.y_train)} train / {len(data.y_test)} test, "
            f"dim {data.dim}"
        )
    rows: list[Row] = []
    snaps: list[dict[str, Any]] = []
    for seed in cfg.experiment.seeds:
        for method in cfg.experiment.methods:
            res: RunResult = run_one(cfg, method, seed, data, log)
            if method == cfg.experiment.methods[0]:
                atomic.write_json(
                    folder / "partitions" / f"seed{seed}.json",
                    {"seed": seed, "label_histograms": res.label_histograms},
                )
            rows += res.rows
            snaps += res.snapshots
            write_metrics_csv(folder / "metrics.csv", rows)
            atomic.write_json(folder / "summary.json", {**summarise(rows), "initial_head": head})
    info["wall_seconds"] = round(time.perf_counter() - t0, 1)
    info["machine"]["load_avg_after"] = load_avg()
    summary = finish_results_folder(folder, rows, snaps, head, info)
    if log:
        log(summary_table(summary))
    return folder


def finish_results_folder(
    folder: Path,
    rows: Sequence[Row],
    snaps: Sequence[dict[str, Any]],
    head: dict[str, Any],
    info: dict[str, Any],
) -> dict[str, Any]:
    """Write a results folder's metrics.csv, summary.json, plots and run_info.json, then its
    last file, summary.md (a folder with summary.md is complete); return the summary."""
    summary = {**summarise(rows), "initial_head": head}
    write_metrics_csv(folder / "metrics.csv", rows)
    atomic.write_json(folder / "summary.json", summary)
    write_plots(folder, rows, snaps)
    atomic.write_json(folder / "run_info.json", info)
    atomic.write_text(folder / "summary.md", summary_table(summary) + "\n")
    return summary


def load_results(folder: str | Path) -> list[Row]:
    """Rows of a results folder's metrics.csv."""
    return read_metrics_csv(Path(folder) / "metrics.csv")


def compare(folders: Sequence[str | Path], out: str | Path, metric: str = "acc_mean") -> str:
    """Put several results folders on one plot and one table; return the table."""
    runs = {Path(f).name: load_results(f) for f in folders}
    out_path = Path(out)
    plots.plot_compare(runs, out_path / "compare.png", metric=metric)
    lines = []
    for label, rows in runs.items():
        table = summary_table(summarise(rows)).splitlines()
        lines += [f"### {label}", *table, ""]
    text = "\n".join(lines)
    atomic.write_text(out_path / "compare.md", text)
    atomic.write_json(out_path / "compare.json", {k: summarise(v) for k, v in runs.items()})
    return text


def dumps(obj: Any) -> str:
    """JSON text (for printing summaries)."""
    return json.dumps(_finite(obj), indent=2)
