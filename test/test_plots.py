"""Tests for gossip_learning.plots: every function writes a real, readable PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg

from gossip_learning import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def _rows(
    methods: tuple[str, ...], seeds: tuple[int, ...], rounds: int = 8
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for m_i, method in enumerate(methods):
        for seed in seeds:
            for r in range(1, rounds + 1):
                acc = 0.1 + 0.8 * (1 - math.exp(-r / (3 + m_i))) + 0.02 * rng.normal()
                rows.append(
                    {
                        "round": r,
                        "method": method,
                        "seed": seed,
                        "acc_mean": acc,
                        "acc_min": acc - 0.1,
                        "acc_max": acc + 0.05,
                        "acc_weighted": acc,
                        "loss_mean": 2.3 * math.exp(-r / 4),
                        "consensus_distance": 1.0 / r,
                        "num_clusters": 5 + r % 3,
                        "num_heads": 5 + r % 3,
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
    _check_png(out)
    _check_png(plots.plot_accuracy(rows, tmp_path / "loss.png", metric="loss_mean"))


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
    _check_png(plots.plot_accuracy([], tmp_path / "empty.png"))
    rows = [{"round": "1", "method": "m", "seed": "0", "acc_mean": ""}]
    _check_png(plots.plot_accuracy(rows, tmp_path / "blank.png"))


def test_plot_compare(tmp_path: Path) -> None:
    runs = {
        "range30": _rows(("bilayer", "cfl"), (0, 1)),
        "range60": _as_csv_strings(_rows(("bilayer",), (0,))),
    }
    _check_png(plots.plot_compare(runs, tmp_path / "cmp.png"))
    _check_png(plots.plot_compare(runs, tmp_path / "cmp_loss.png", metric="loss_mean"))


@pytest.mark.parametrize("nan_gaps", [False, True])
def test_plot_churn_spectral(tmp_path: Path, nan_gaps: bool) -> None:
    rows = _rows(("bilayer", "flat"), (0, 1))
    if nan_gaps:
        for row in rows:
            row["spectral_gap_comm"] = float("nan")
            row["spectral_gap_mix"] = "nan"
    img = _check_png(plots.plot_churn_spectral(rows, tmp_path / "churn.png"))
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


def test_plot_swarm_map(tmp_path: Path) -> None:
    snap = _snapshot(60, seed=1)
    _check_png(plots.plot_swarm_map(snap, tmp_path / "map.png"))
    # without optional head_links, with an explicitly isolated robot and an unassigned one
    snap2 = _snapshot(10, seed=2)
    del snap2["head_links"]
    snap2["links"] = []
    snap2["cluster"][0] = -1
    snap2["isolated"] = [True] * 10
    _check_png(plots.plot_swarm_map(snap2, tmp_path / "sparse.png"))
    _check_png(plots.plot_swarm_map({"round": 0, "positions": []}, tmp_path / "none.png"))


def test_existing_file_replaced(tmp_path: Path) -> None:
    out = tmp_path / "acc.png"
    out.write_bytes(b"old")
    plots.plot_accuracy(_rows(("m",), (0,)), out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
