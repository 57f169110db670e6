"""Sweeps: many experiments, each over several seeds, as one task per (experiment, seed).

``gossip-learning sweep CONFIG --grid KEY=V1,V2 ...`` runs every combination of the grid's values
(each a normal results folder under ``--out``); ``gossip-learning reproduce`` runs the paper's
experiments through the same engine. The tasks run on a backend (``gossip_learning.backends``:
a local process pool, or a Ray cluster); each finished task is written to
``<experiment>/seeds/seed<k>.json`` at once, so the results folder is the checkpoint: a sweep
started again skips every finished task, and an experiment is assembled (metrics.csv,
summary.json, plots, summary.md) from its seed files once all of them are there. Because every
backend goes through the same seed files, the same sweep writes the same results on any backend.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import socket
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gossip_learning import atomic
from gossip_learning.backends import (
    Backend,
    Progress,
    add_backend_args,
    backend_from_args,
    backend_info,
    run_tasks,
)
from gossip_learning.config import Config, dump_config, load_config
from gossip_learning.datasets import Dataset
from gossip_learning.errors import ConfigError
from gossip_learning.experiment import run_one
from gossip_learning.plan import initial_head_info, load_data
from gossip_learning.provenance import run_info
from gossip_learning.results import check_writable, finish_results_folder


@dataclass(frozen=True)
class SweepItem:
    """One experiment of a sweep: its folder name under the sweep's output and its config."""

    name: str
    cfg: Config


@dataclass(frozen=True)
class SeedTask:
    """One task: every method of one experiment on one seed."""

    name: str
    cfg: Config
    seed: int


def data_key(cfg: Config) -> str:
    """Experiments with equal keys load the same dataset (shipped once to each node)."""
    d = cfg.data
    return json.dumps([d.dataset, d.params, d.standardize], sort_keys=True, default=str)


def _plain(obj: Any) -> Any:
    """``obj`` as plain JSON types (numpy scalars and arrays converted): what a seed file holds."""

    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"not JSON-able: {type(o).__name__}")

    return json.loads(json.dumps(obj, default=default))


def run_seed(task: SeedTask, datasets: dict[str, Dataset]) -> dict[str, Any]:
    """Run every method of ``task`` on its seed (a backend task; no file written here)."""
    data = datasets[data_key(task.cfg)]
    lines: list[str] = []
    runs = []
    for method in task.cfg.experiment.methods:
        res = run_one(task.cfg, method, task.seed, data, lines.append)
        runs.append(
            {
                "method": method,
                "rows": res.rows,
                "snapshots": res.snapshots,
                "label_histograms": res.label_histograms,
            }
        )
    out: dict[str, Any] = _plain({"seed": task.seed, "runs": runs, "log": lines})
    out["host"] = socket.gethostname()
    return out


def seed_file(folder: Path, seed: int) -> Path:
    return folder / "seeds" / f"seed{seed}.json"


def is_done(folder: Path) -> bool:
    """An experiment folder that is complete (its last file, summary.md, is written)."""
    return (folder / "summary.md").is_file()


def _seed_done(folder: Path, seed: int) -> bool:
    path = seed_file(folder, seed)
    if not path.is_file():
        return False
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # a torn or foreign file: run that task again
    return True


def assemble(item: SweepItem, folder: Path, command: Sequence[str], where: dict[str, Any]) -> None:
    """Write the experiment's results folder from its seed files (every seed must be there)."""
    cfg = item.cfg
    rows: list[dict[str, Any]] = []
    snaps: list[dict[str, Any]] = []
    hosts: dict[str, str] = {}
    log_lines: list[str] = []
    for seed in cfg.experiment.seeds:
        done = json.loads(seed_file(folder, seed).read_text(encoding="utf-8"))
        hosts[str(seed)] = done.get("host", "")
        log_lines += done.get("log", [])
        for k, run in enumerate(done["runs"]):
            if k == 0:
                atomic.write_json(
                    folder / "partitions" / f"seed{seed}.json",
                    {"seed": seed, "label_histograms": run["label_histograms"]},
                )
            rows += run["rows"]
            snaps += run["snapshots"]
    atomic.write_text(folder / "config.yaml", dump_config(cfg))
    atomic.write_text(folder / "log.txt", "".join(f"{line}\n" for line in log_lines))
    head = initial_head_info(cfg)
    info = run_info(command)
    info["initial_head"] = head
    info["sweep"] = {**where, "task_hosts": hosts}
    finish_results_folder(folder, rows, snaps, head, info)


def run_sweep(
    items: Sequence[SweepItem],
    out: Path,
    backend: Backend,
    command: Sequence[str],
    progress: Progress | None = None,
    on_task: Callable[[SeedTask, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every (item, seed) task not already in ``out``; assemble each finished experiment.
    Returns the backend's provenance (backend, nodes, CPUs)."""
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        dup = next(n for n, c in Counter(names).items() if c > 1)
        raise ConfigError("experiment.name", f"two experiments of the sweep are named {dup!r}")
    out.mkdir(parents=True, exist_ok=True)
    by_name = {it.name: it for it in items}
    todo: list[SeedTask] = []
    total = 0
    for it in items:
        seeds = list(it.cfg.experiment.seeds)
        total += len(seeds)
        folder = out / it.name
        if is_done(folder):
            continue
        todo += [SeedTask(it.name, it.cfg, s) for s in seeds if not _seed_done(folder, s)]
    where = backend_info(backend)
    left = Counter(t.name for t in todo)
    for it in items:  # every seed on disk, folder not yet written: an interrupted assembly
        if not is_done(out / it.name) and left[it.name] == 0:
            assemble(it, out / it.name, command, where)
    datasets: dict[str, Dataset] = {}
    for t in todo:  # load (or build the cache of) each dataset once, here
        key = data_key(t.cfg)
        if key not in datasets:
            datasets[key] = load_data(t.cfg)
    bar = progress or Progress(total, done=total - len(todo))
    for task, result in run_tasks(run_seed, todo, datasets, backend):
        folder = out / task.name
        atomic.write_json(seed_file(folder, task.seed), result)
        finals = [run["rows"][-1]["acc_mean"] for run in result["runs"] if run["rows"]]
        accs = " ".join(
            f"{run['method']} {acc:.3f}" for run, acc in zip(result["runs"], finals, strict=False)
        )
        bar.advance(f"{task.name} seed {task.seed}: {accs}")
        if on_task:
            on_task(task, result)
        left[task.name] -= 1
        if left[task.name] == 0:
            assemble(by_name[task.name], folder, command, where)
    return where


def split_values(text: str) -> list[str]:
    """``a,b,[1, 2]`` → ``['a', 'b', '[1, 2]']``: commas inside brackets or braces stay."""
    out: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


def grid_items(
    config: str | Path, grid: Sequence[str], overrides: Sequence[str]
) -> list[tuple[SweepItem, list[str]]]:
    """Every combination of ``grid`` (``KEY=V1,V2``) as a SweepItem with its overrides; a bad
    key or value fails here, naming it, before any work."""
    axes: list[list[str]] = []
    for spec in grid:
        key, sep, values = spec.partition("=")
        vals = [v for v in split_values(values) if v]
        if not sep or not key.strip() or not vals:
            raise ConfigError("--grid", f"{spec!r}: expected KEY=V1,V2,...")
        axes.append([f"{key.strip()}={v}" for v in vals])
    out = []
    for combo in itertools.product(*axes) if axes else [()]:
        name = "__".join(combo) if combo else ""
        cfg = load_config(config, [*overrides, *combo])
        item_name = (name or cfg.experiment.name).replace("/", "_").replace(" ", "")
        out.append((SweepItem(item_name, cfg), list(combo)))
    return out


def _summary_rows(out: Path, points: Sequence[tuple[SweepItem, list[str]]]) -> list[dict[str, Any]]:
    rows = []
    for item, combo in points:
        summary = json.loads((out / item.name / "summary.json").read_text(encoding="utf-8"))
        for method, s in summary["methods"].items():
            rows.append(
                {
                    "point": item.name,
                    "overrides": combo,
                    "method": method,
                    "seeds": s["seeds"],
                    "final_acc_mean": s["final_acc_mean"],
                    "final_acc_std": s["final_acc_std"],
                    "gap_to_cfl_points": s.get("gap_to_cfl_points"),
                    "bytes_sent_per_round": s["bytes_sent_per_round"],
                }
            )
    return rows


#: Fields that differ run to run on any backend: timings, the timed log lines, the task's host.
TIMING = ("time_", "seconds", "wall")
UNCOMPARED = ("host", "log")


def _untimed(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: _untimed(v)
            for k, v in obj.items()
            if not any(k.startswith(t) or k.endswith(t) for t in TIMING) and k not in UNCOMPARED
        }
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def comparable_results(out: Path) -> dict[str, Any]:
    """Every result file of a sweep folder (JSON and metrics.csv) without timing fields, and
    without provenance (run_info.json): equal for the same sweep on any backend."""
    files: dict[str, Any] = {}
    for path in sorted(Path(out).rglob("*")):
        rel = str(path.relative_to(out))
        if path.suffix == ".json" and path.name != "run_info.json":
            files[rel] = _untimed(json.loads(path.read_text(encoding="utf-8")))
        elif path.name == "metrics.csv":
            with path.open(encoding="utf-8", newline="") as f:
                files[rel] = _untimed(list(csv.DictReader(f)))
    return files


def add_set_arg(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: the sweep commands' overrides."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``gossip-learning sweep`` entry point."""
    p = argparse.ArgumentParser(
        prog="gossip-learning sweep",
        description="Run a config over a grid of settings and seeds, one task per "
        "(setting, seed), on a local pool or a Ray cluster. Finished tasks are skipped on restart.",
    )
    p.add_argument("config", help="YAML config (see config/)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config key and the values to sweep (repeatable: every combination runs)",
    )
    add_set_arg(p, "override for every point, e.g. experiment.seeds=[0,1]")
    p.add_argument("--out", required=True, help="folder for every point (the checkpoint)")
    add_backend_args(p, "tasks")
    args = p.parse_args(argv)
    backend = backend_from_args(args)
    points = grid_items(args.config, args.grid, args.overrides)
    out = check_writable(args.out)
    command = ["gossip-learning", "sweep", *(sys.argv[2:] if argv is None else argv)]
    where = run_sweep([it for it, _ in points], out, backend, command)
    rows = _summary_rows(out, points)
    atomic.write_json(out / "sweep.json", {"points": rows})
    info = run_info(command)
    info["sweep"] = where
    atomic.write_json(out / "run_info.json", info)
    for r in rows:
        print(
            f"{r['point']:<40} {r['method']:<8} {r['final_acc_mean']:.3f} ± "
            f"{r['final_acc_std']:.3f}"
        )
    print(f"results: {out / 'sweep.json'}")
    return 0
