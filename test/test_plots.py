"""Tests for gossip_learning.plots: every function writes a real PNG showing the data it was given.

Content is checked on the pixels: each series is drawn in a known palette colour (tab10 for
lines, tab20 for clusters), so counting the pixels of exactly that colour tells which series were
drawn; a legend swatch alone stays far below the line threshold.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib import image as mpimg

from gossip_learning import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LINE_PIXELS = 200  # a drawn series covers > 800 pixels of its colour, a legend swatch < 80


def _check_png(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    img = mpimg.imread(path, format="png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    # not a blank canvas
    assert float(img[..., :3].std()) > 0.01
    # no temp files left beside it
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    return img


def _color_pixels(img: np.ndarray, rgb: tuple[float, ...], tol: float = 0.02) -> int:
    """Pixels of ``img`` whose RGB is within ``tol`` of ``rgb``."""
    return int(np.all(np.abs(img[..., :3] - np.asarray(rgb[:3])) < tol, axis=-1).sum())


def _series(img: np.ndarray, min_pixels: int = LINE_PIXELS) -> set[int]:
    """Indices of the tab10 colours drawn as a series (more than ``min_pixels`` pixels); grey
    (7) is left out: "no data" text and antialiased axes are grey too."""
    tab10 = colormaps["tab10"]
    return {i for i in range(10) if i != 7 and _color_pixels(img, tab10(i)) > min_pixels}


def _rows(
    methods: tuple[str, ...], seeds: tuple[int, ...], rounds: int = 8, shift: float = 0.0
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for m_i, method in enumerate(methods):
        for seed in seeds:
            for r in range(1, rounds + 1):
                acc = 0.1 + 0.8 * (1 - math.exp(-r / (3 + m_i))) + 0.02 * rng.normal() + shift
                rows.append(
                    {
                        "round": r,
                        "method": method,
                        "seed": seed,
                        "acc_mean": acc,
                        "acc_min": acc - 0.1,
                        "acc_max": acc + 0.05,
                        "acc_weighted": acc,
                        "loss_mean": 2.3 * math.exp(-r / (4 + m_i)) + shift,
                        "consensus_distance": 1.0 / r,
                        "num_clusters": 5 + r % 3,
                        "num_heads": 3 + r % 2,
                        "isolated": r % 2,
                        "membership_changes": 10 - r,
                        "head_changes": r % 4,
                        "msgs_sent": 100 * r,
                        "bytes_sent": 1e5 * r,
                        "msgs_dropped": 0,
                        "spectral_gap_comm": 0.2 + 0.01 * r,
                        "spectral_gap_mix": 0.1,
                    }
                )
    return rows


def _as_csv_strings(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: str(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_plot_accuracy(tmp_path: Path, seeds: tuple[int, ...]) -> None:
    rows = _rows(("bilayer", "cfl"), seeds)
    out = plots.plot_accuracy(rows, tmp_path / "sub" / "acc.png", title="t")
    assert out == tmp_path / "sub" / "acc.png"
    acc = _check_png(out)
    assert _series(acc) == {0, 1}  # one line per method
    loss = _check_png(plots.plot_accuracy(rows, tmp_path / "loss.png", metric="loss_mean"))
    assert _series(loss) == {0, 1}
    assert not np.array_equal(acc, loss)
    one = _check_png(plots.plot_accuracy(_rows(("bilayer",), seeds), tmp_path / "one.png"))
    assert _series(one) == {0}


def test_plot_accuracy_string_rows_match_numeric(tmp_path: Path) -> None:
    rows = _rows(("bilayer",), (0, 1))
    a = _check_png(plots.plot_accuracy(rows, tmp_path / "num.png"))
    b = _check_png(plots.plot_accuracy(_as_csv_strings(rows), tmp_path / "str.png"))
    np.testing.assert_array_equal(a, b)
    # the data actually changes the picture
    other = _rows(("bilayer",), (0, 1), rounds=4)
    c = _check_png(plots.plot_accuracy(other, tmp_path / "other.png"))
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_plot_accuracy_empty_and_missing(tmp_path: Path) -> None:
    empty = _check_png(plots.plot_accuracy([], tmp_path / "empty.png"))
    assert _series(empty, min_pixels=0) == set()
    rows = [{"round": "1", "method": "m", "seed": "0", "acc_mean": ""}]
    blank = _check_png(plots.plot_accuracy(rows, tmp_path / "blank.png"))
    assert _series(blank, min_pixels=0) == set()
    # the data plot differs from the no-data plot
    data = _check_png(plots.plot_accuracy(_rows(("m",), (0,)), tmp_path / "data.png"))
    assert data.shape == empty.shape and not np.array_equal(data, empty)


def test_plot_compare(tmp_path: Path) -> None:
    runs = {
        "range30": _rows(("bilayer", "cfl"), (0, 1)),
        "range60": _as_csv_strings(_rows(("bilayer",), (0,), shift=-0.3)),
    }
    # three lines: range30:bilayer, range30:cfl, range60:bilayer, each in its own colour
    assert _series(_check_png(plots.plot_compare(runs, tmp_path / "cmp.png"))) == {0, 1, 2}
    loss = _check_png(plots.plot_compare(runs, tmp_path / "cmp_loss.png", metric="loss_mean"))
    assert _series(loss) == {0, 1, 2}
    none = _check_png(plots.plot_compare({}, tmp_path / "none.png"))
    assert _series(none, min_pixels=0) == set()


@pytest.mark.parametrize("nan_gaps", [False, True])
def test_plot_churn_spectral(tmp_path: Path, nan_gaps: bool) -> None:
    rows = _rows(("bilayer", "flat"), (0, 1))
    if nan_gaps:
        for row in rows:
            row["spectral_gap_comm"] = float("nan")
            row["spectral_gap_mix"] = "nan"
    img = _check_png(plots.plot_churn_spectral(rows, tmp_path / "churn.png"))
    # one horizontal band per panel, each with its series: colour k is the panel's k-th metric
    panels = [{0, 1, 2}, {0, 1}] + ([] if nan_gaps else [{0, 1}])
    height = img.shape[0]
    for k, expected in enumerate(panels):
        band = img[k * height // len(panels) : (k + 1) * height // len(panels)]
        assert _series(band, min_pixels=100) == expected, k
    strings = _check_png(plots.plot_churn_spectral(_as_csv_strings(rows), tmp_path / "s.png"))
    np.testing.assert_array_equal(img, strings)
    # the spectral panel is dropped when every gap is NaN: the figure is shorter
    full = _check_png(plots.plot_churn_spectral(_rows(("bilayer",), (0,)), tmp_path / "f.png"))
    if nan_gaps:
        assert img.shape[0] < full.shape[0]
    else:
        assert img.shape[0] == full.shape[0]


def _snapshot(n: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 100, size=(n, 2))
    cluster = [int(c) for c in rng.integers(0, 25, n)]
    heads: dict[int, int] = {}
    for i, c in enumerate(cluster):
        heads.setdefault(c, i)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    links = [[i, j] for i in range(n) for j in range(i + 1, n) if d[i, j] <= 20]
    return {
        "round": 3,
        "area": [100, 100],
        "comm_range": 20,
        "positions": pos.tolist(),
        "cluster": cluster,
        "is_head": [heads[c] == i for i, c in enumerate(cluster)],
        "links": links,
        "head_links": [[i, heads[c]] for i, c in enumerate(cluster) if heads[c] != i],
    }


def _cluster_colors(img: np.ndarray, min_pixels: int = 15) -> set[int]:
    """tab20 indices drawn as robots (greys 14 and 15 left out: axes and links are grey)."""
    tab20 = colormaps["tab20"]
    return {c for c in range(20) if c not in (14, 15) and _color_pixels(img, tab20(c)) > min_pixels}


def test_plot_swarm_map(tmp_path: Path) -> None:
    snap = _snapshot(60, seed=1)
    img = _check_png(plots.plot_swarm_map(snap, tmp_path / "map.png"))
    # every cluster's colour shows, and no other cluster colour does
    assert _cluster_colors(img) == {c % 20 for c in snap["cluster"]} - {14, 15}
    # without optional head_links, with an explicitly isolated robot and an unassigned one
    snap2 = _snapshot(10, seed=2)
    del snap2["head_links"]
    snap2["links"] = []
    snap2["cluster"][0] = -1
    snap2["isolated"] = [True] * 10
    sparse = _check_png(plots.plot_swarm_map(snap2, tmp_path / "sparse.png"))
    assert _cluster_colors(sparse) == {c % 20 for c in snap2["cluster"] if c >= 0} - {14, 15}
    none = _check_png(plots.plot_swarm_map({"round": 0, "positions": []}, tmp_path / "none.png"))
    assert _cluster_colors(none, min_pixels=0) == set()


def test_plot_sweep(tmp_path: Path) -> None:
    series = {"bilayer": [(30.0, 0.5, 0.1), (60.0, 0.6, 0.1)], "flat": [(30.0, 0.4, 0.05)]}
    img = _check_png(plots.plot_sweep(series, tmp_path / "sweep.png", "range", refs={"cfl": 0.8}))
    assert _series(img, min_pixels=100) == {0, 1, 2}  # two sweeps and the reference line
    empty = _check_png(plots.plot_sweep({}, tmp_path / "empty.png", "range"))
    assert _series(empty, min_pixels=0) == set()


def test_existing_file_replaced(tmp_path: Path) -> None:
    out = tmp_path / "acc.png"
    out.write_bytes(b"old")
    plots.plot_accuracy(_rows(("m",), (0,)), out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
