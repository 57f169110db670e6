"""PNG plots of per-round metrics and swarm snapshots (matplotlib Agg, written atomically).

Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas, never through pyplot: no
display is needed, the process-wide backend is left alone and no figure is kept alive after a call.
Rows are metric dicts as written to the metrics CSV; values may be strings (read back from CSV),
missing or empty, which count as NaN.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from gossip_learning.atomic import atomic_path

__all__ = ["plot_accuracy", "plot_churn_spectral", "plot_compare", "plot_swarm_map", "plot_sweep"]

Row = Mapping[str, Any]
_DPI = 110


def _num(value: Any) -> float:
    """float(value), or NaN for None, '' and anything unparsable."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _save(fig: Figure, out: str | os.PathLike[str]) -> Path:
    target = Path(out)
    FigureCanvasAgg(fig)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
    return target


def _series(rows: Iterable[Row], key: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per method: (rounds, mean over seeds, std over seeds) of ``key``, NaN values ignored."""
    acc: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        r = _num(row.get("round"))
        v = _num(row.get(key))
        if math.isnan(r) or math.isnan(v):
            continue
        acc[str(row.get("method", "") or "run")][int(r)].append(v)
    out = {}
    for method, by_round in acc.items():
        rounds = np.array(sorted(by_round), dtype=float)
        vals = [np.asarray(by_round[int(r)]) for r in rounds]
        out[method] = (
            rounds,
            np.array([v.mean() for v in vals]),
            np.array([v.std() for v in vals]),
        )
    return out


def _num_seeds(rows: Iterable[Row], method: str) -> int:
    return len(
        {str(r.get("seed", "")) for r in rows if str(r.get("method", "") or "run") == method}
    )


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")


def _draw_metric(ax: Axes, rows: Sequence[Row], metric: str, prefix: str, color_start: int) -> int:
    """Draw one line per method of ``rows``; return how many were drawn."""
    colors = colormaps["tab10"]
    drawn = 0
    minmax = metric == "acc_mean"
    lows = _series(rows, "acc_min") if minmax else {}
    highs = _series(rows, "acc_max") if minmax else {}
    for method, (rounds, mean, std) in sorted(_series(rows, metric).items()):
        color = colors((color_start + drawn) % 10)
        seeds = _num_seeds(rows, method)
        label = f"{prefix}{method}" + (f" ({seeds} seeds)" if seeds > 1 else "")
        marker = "." if len(rounds) < 40 else None
        ax.plot(rounds, mean, color=color, lw=1.8, marker=marker, label=label)
        if seeds > 1:
            ax.fill_between(rounds, mean - std, mean + std, color=color, alpha=0.25, lw=0)
        if method in lows and method in highs:
            lo_r, lo, _ = lows[method]
            hi_r, hi, _ = highs[method]
            if len(lo_r) == len(hi_r) and np.array_equal(lo_r, hi_r):
                ax.fill_between(lo_r, lo, hi, color=color, alpha=0.08, lw=0)
        drawn += 1
    return drawn


def _finish_axes(ax: Axes, metric: str, drawn: int) -> None:
    ax.set_xlabel("round")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(fontsize=8, loc="best")
    else:
        _no_data(ax)


def plot_accuracy(
    rows: Sequence[Row],
    out: str | os.PathLike[str],
    metric: str = "acc_mean",
    title: str | None = None,
) -> Path:
    """``metric`` per round, one line per method: mean over seeds, ±std band with several seeds.

    For ``acc_mean`` a light band spans the (seed-averaged) device min..max accuracy.
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    drawn = _draw_metric(ax, rows, metric, "", 0)
    _finish_axes(ax, metric, drawn)
    ax.set_title(title or f"{metric} per round")
    fig.tight_layout()
    return _save(fig, out)


def plot_compare(
    runs: Mapping[str, Sequence[Row]],
    out: str | os.PathLike[str],
    metric: str = "acc_mean",
    title: str | None = None,
) -> Path:
    """Several runs on one axes: a line per ``label:method`` (mean over seeds, ±std band)."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for label, rows in runs.items():
        drawn += _draw_metric(ax, rows, metric, f"{label}:", drawn)
    _finish_axes(ax, metric, drawn)
    ax.set_title(title or f"{metric} per round")
    fig.tight_layout()
    return _save(fig, out)


def _panel(ax: Axes, rows: Sequence[Row], keys: Sequence[str], ylabel: str) -> None:
    colors = colormaps["tab10"]
    methods = sorted({str(r.get("method", "") or "run") for r in rows})
    drawn = 0
    styles = ["-", "--", ":", "-."]
    for k, key in enumerate(keys):
        for m, (method, (rounds, mean, _)) in enumerate(sorted(_series(rows, key).items())):
            label = key if len(methods) < 2 else f"{method}: {key}"
            style = styles[m % len(styles)]
            ax.plot(rounds, mean, color=colors(k % 10), ls=style, lw=1.5, label=label)
            drawn += 1
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, loc="best")
    else:
        _no_data(ax)


def plot_churn_spectral(rows: Sequence[Row], out: str | os.PathLike[str]) -> Path:
    """Stacked panels per round: clusters/heads; churn; spectral gaps and mixing measures
    (when any are not NaN)."""
    has_gaps = any(_series(rows, k) for k in ("spectral_gap_comm", "spectral_gap_mix"))
    n_panels = 3 if has_gaps else 2
    fig = Figure(figsize=(7, 2.6 * n_panels))
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    _panel(axes[0], rows, ("num_clusters", "num_heads", "isolated"), "count")
    axes[0].set_title("clusters and churn per round")
    _panel(axes[1], rows, ("membership_changes", "head_changes"), "changes")
    if has_gaps:
        keys = ("spectral_gap_comm", "spectral_gap_mix", "mix_reach", "gossip_contraction")
        _panel(axes[2], rows, keys, "mixing (0..1)")
    axes[-1].set_xlabel("round")
    fig.tight_layout()
    return _save(fig, out)


def plot_swarm_map(snapshot: Mapping[str, Any], out: str | os.PathLike[str]) -> Path:
    """Robots coloured by cluster, heads as stars, isolated robots hollow, links drawn thin grey.

    ``snapshot`` keys: round, area [W, H], comm_range, positions [[x, y], ...], cluster [ids],
    is_head [bool], links [[i, j], ...], optional head_links [[member, head], ...] and isolated
    [bool] (default: robots with no link).
    """
    pos = np.asarray(snapshot.get("positions", []), dtype=float).reshape(-1, 2)
    n = len(pos)
    cluster = [int(_num(c)) if not math.isnan(_num(c)) else -1 for c in snapshot.get("cluster", [])]
    cluster += [-1] * (n - len(cluster))
    is_head = [bool(h) for h in snapshot.get("is_head", [])] + [False] * n
    links = [(int(i), int(j)) for i, j in snapshot.get("links", [])]
    head_links = [(int(i), int(j)) for i, j in snapshot.get("head_links", None) or []]
    degree = np.zeros(n, dtype=int)
    for i, j in links:
        degree[i] += 1
        degree[j] += 1
    isolated = [bool(v) for v in snapshot.get("isolated", [])] or list(degree == 0)
    isolated += [False] * (n - len(isolated))

    palette = colormaps["tab20"]

    def color(c: int) -> Any:
        return (0.5, 0.5, 0.5, 1.0) if c < 0 else palette(c % 20)

    area = snapshot.get("area") or [
        float(pos[:, 0].max()) if n else 1.0,
        float(pos[:, 1].max()) if n else 1.0,
    ]
    width, height = float(area[0]), float(area[1])
    fig = Figure(figsize=(6.5, 6.5 * height / width if width > 0 else 6.5))
    ax = fig.add_subplot(1, 1, 1)
    if links:
        segs = [[pos[i], pos[j]] for i, j in links]
        ax.add_collection(LineCollection(segs, colors="0.75", linewidths=0.4, zorder=1))
    if head_links:
        segs = [[pos[i], pos[j]] for i, j in head_links]
        cols = [color(cluster[i]) for i, _ in head_links]
        ax.add_collection(LineCollection(segs, colors=cols, linewidths=1.2, alpha=0.8, zorder=2))
    groups: dict[tuple[int, bool, bool], list[int]] = defaultdict(list)
    for idx in range(n):
        groups[(cluster[idx], is_head[idx], isolated[idx])].append(idx)
    for (cid, head, hollow), members in sorted(groups.items()):
        c = color(cid)
        ax.scatter(
            pos[members, 0],
            pos[members, 1],
            s=190 if head else 36,
            marker="*" if head else "o",
            facecolors="none" if hollow else [c],
            edgecolors=[c] if hollow else "black" if head else "none",
            linewidths=1.2 if hollow or head else 0.0,
            zorder=4 if head else 3,
        )
    comm = _num(snapshot.get("comm_range"))
    if not math.isnan(comm) and comm > 0 and width > 0:
        # scale bar of one communication range in the lower left corner
        x0, y0 = 0.03 * width, 0.03 * height
        ax.plot([x0, x0 + comm], [y0, y0], color="black", lw=2, zorder=5)
        ax.text(x0, y0 + 0.015 * height, f"comm range {comm:g}", fontsize=7, zorder=5)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    num_clusters = len({c for c in cluster if c >= 0})
    rnd = snapshot.get("round", "?")
    ax.set_title(f"round {rnd}: {num_clusters} clusters, {sum(is_head[:n])} heads, {n} robots")
    fig.tight_layout()
    return _save(fig, out)


def plot_sweep(
    series: Mapping[str, Sequence[tuple[float, float, float]]],
    out: str | os.PathLike[str],
    xlabel: str,
    ylabel: str = "final accuracy",
    refs: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """A parameter sweep: per label, points ``(x, mean, std)`` joined by a line with error bars;
    ``refs`` draws horizontal reference lines (e.g. CFL's final accuracy)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    cmap = colormaps["tab10"]
    for k, (label, pts) in enumerate(series.items()):
        if not pts:
            continue
        xs, ms, ss = (np.array(v, dtype=float) for v in zip(*sorted(pts), strict=True))
        ax.errorbar(xs, ms, yerr=ss, marker="o", capsize=3, color=cmap(k % 10), label=label)
    for k, (label, value) in enumerate((refs or {}).items()):
        ax.axhline(value, linestyle="--", color=cmap((k + len(series)) % 10), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if series or refs:
        ax.legend(fontsize=8, loc="best")
    else:
        _no_data(ax)
    ax.set_title(title or f"{ylabel} vs {xlabel}")
    fig.tight_layout()
    return _save(fig, out)
