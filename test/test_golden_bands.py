"""Golden bands: small deterministic swarm runs whose published-style numbers must not move.

The second half (``CLUSTER_OVERRIDES``, ``data/golden_bands_clusters.json``) is the one with
power: three clusters, inter-cluster gossip, hand-offs, unequal sample counts and bands narrower
than the gaps between methods. The first:

The run is the quickstart config cut to 10 robots and 8 rounds (digits, MLP head, bilayer, flat and
CFL). Its final accuracy, traffic, churn and matching are compared with ``data/golden_bands.json``;
so are bilayer's and flat's with ``gossip.matching: single`` (the paper's one-shot matching, kept
as an option: its numbers are those recorded before ``retry`` became the default).
Traffic, churn and matching do not depend on floating-point details of training, so they must match
exactly; accuracy may move by ``acc_tolerance``. A change that moves them on purpose re-records
the file (``GOSSIP_LEARNING_RECORD_GOLDEN=1 python -m pytest test/test_golden_bands.py``) and says
why in CHANGELOG.md.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from gossip_learning.config import load_config
from gossip_learning.experiment import load_data, run_one

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "data" / "golden_bands.json"
OVERRIDES = [
    "swarm.num_robots=10",
    "experiment.rounds=8",
    "experiment.seeds=[0]",
    "experiment.methods=[bilayer, flat, cfl]",
]
EXACT = ("bytes_sent", "msgs_sent", "membership_changes", "head_changes", "num_clusters")


SINGLE = ["gossip.matching=single", "experiment.methods=[bilayer, flat]"]


def _measure(extra: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    cfg = load_config(ROOT / "config" / "quickstart.yaml", [*OVERRIDES, *extra])
    data = load_data(cfg)
    out: dict[str, dict[str, Any]] = {}
    for method in cfg.experiment.methods:
        rows = run_one(cfg, method, 0, data).rows
        matched = [r["pairs_matched"] for r in rows if math.isfinite(r["pairs_matched"])]
        out[method] = {
            "acc_final": rows[-1]["acc_mean"],
            "acc_min_final": rows[-1]["acc_min"],
            **{k: int(sum(r[k] for r in rows)) for k in EXACT},
            "pairs_matched_mean": round(sum(matched) / len(matched), 6) if matched else None,
        }
    return out


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, Any]]:
    got = _measure()
    got_single = _measure(tuple(SINGLE))
    if os.environ.get("GOSSIP_LEARNING_RECORD_GOLDEN") == "1":
        record = {"overrides": OVERRIDES, "acc_tolerance": 0.02, "methods": got,
                  "single_overrides": SINGLE, "single_matching": got_single}  # fmt: skip
        GOLDEN.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {**got, **{f"{m}/single": v for m, v in got_single.items()}}


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert data["overrides"] == OVERRIDES, "golden file recorded for other settings: re-record"
    return data


@pytest.mark.parametrize("method", ["bilayer", "flat", "cfl"])
def test_accuracy_stays_in_band(
    method: str, measured: dict[str, Any], golden: dict[str, Any]
) -> None:
    want, got, tol = golden["methods"][method], measured[method], golden["acc_tolerance"]
    assert abs(got["acc_final"] - want["acc_final"]) <= tol, (got, want)
    assert abs(got["acc_min_final"] - want["acc_min_final"]) <= 2 * tol, (got, want)


@pytest.mark.parametrize("method", ["bilayer", "flat", "cfl"])
def test_traffic_churn_and_matching_are_unchanged(
    method: str, measured: dict[str, Any], golden: dict[str, Any]
) -> None:
    want, got = golden["methods"][method], measured[method]
    for key in (*EXACT, "pairs_matched_mean"):
        assert got[key] == want[key], (key, got[key], want[key])


@pytest.mark.parametrize("method", ["bilayer", "flat"])
def test_single_matching_keeps_todays_numbers(
    method: str, measured: dict[str, Any], golden: dict[str, Any]
) -> None:
    assert golden["single_overrides"] == SINGLE, "golden file recorded for other settings"
    want, got = golden["single_matching"][method], measured[f"{method}/single"]
    for key in (*EXACT, "pairs_matched_mean"):
        assert got[key] == want[key], (key, got[key], want[key])
    assert abs(got["acc_final"] - want["acc_final"]) <= golden["acc_tolerance"], (got, want)


# ------------------------------------------------------------------ a swarm with clusters
# Three clusters every round (static robots at range 30), gossip between clusters through
# border members, heads handing the result to their members, and Dirichlet label skew, so
# robots hold unequal sample counts and sample weighting matters. The bands are narrower than
# the gaps between the methods (checked below), so a change that turns one method into another,
# weights every robot alike (unweighted FedAvg, in gossip or in CFL) or drops the hand-off
# moves a number out of its band (each was seen to).
CLUSTERS = Path(__file__).parent / "data" / "golden_bands_clusters.json"
CLUSTER_OVERRIDES = [
    "swarm.num_robots=24", "experiment.rounds=5", "experiment.seeds=[0]",
    "experiment.methods=[bilayer, flat, cfl, local]", "mobility.model=static",
    "channel.comm_range=30", "gossip.inter_peers=border", "data.partition=dirichlet",
    "data.alpha=0.5", "learning.epochs=2",
]  # fmt: skip
BANDS = {"acc_final": 0.005, "acc_min_final": 0.01}  # absolute
REL_BANDS = {"loss_final": 0.01, "consensus_final": 0.01}  # relative


def _measure_clusters() -> tuple[dict[str, dict[str, Any]], list[int]]:
    cfg = load_config(ROOT / "config" / "quickstart.yaml", CLUSTER_OVERRIDES)
    data = load_data(cfg)
    out: dict[str, dict[str, Any]] = {}
    sizes: list[int] = []
    for method in cfg.experiment.methods:
        res = run_one(cfg, method, 0, data)
        rows, last = res.rows, res.rows[-1]
        sizes = [sum(h) for h in res.label_histograms]
        inter = [r["pairs_matched_inter"] for r in rows if math.isfinite(r["pairs_matched_inter"])]
        out[method] = {
            "acc_final": last["acc_mean"],
            "acc_min_final": last["acc_min"],
            "loss_final": last["loss_mean"],
            "consensus_final": last["consensus_distance"],
            "mix_reach_final": round(last["mix_reach"], 6),
            "min_clusters": min(r["num_clusters"] for r in rows),
            "inter_matched_mean": round(sum(inter) / len(inter), 6) if inter else None,
            **{k: int(sum(r[k] for r in rows)) for k in EXACT},
        }
    return out, sizes


@pytest.fixture(scope="module")
def clusters() -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[int]]:
    got, sizes = _measure_clusters()
    if os.environ.get("GOSSIP_LEARNING_RECORD_GOLDEN") == "1":
        record = {"overrides": CLUSTER_OVERRIDES, "methods": got}
        CLUSTERS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    golden: dict[str, Any] = json.loads(CLUSTERS.read_text(encoding="utf-8"))
    assert golden["overrides"] == CLUSTER_OVERRIDES, "recorded for other settings: re-record"
    return got, golden["methods"], sizes


def test_cluster_swarm_exercises_what_the_bands_guard(
    clusters: tuple[dict[str, dict[str, Any]], dict[str, Any], list[int]],
) -> None:
    _, golden, sizes = clusters
    assert min(sizes) * 1.5 < max(sizes), sizes  # unequal sample counts
    b = golden["bilayer"]
    assert b["min_clusters"] >= 3 and b["inter_matched_mean"] > 0  # inter-cluster gossip ran
    assert b["mix_reach_final"] > golden["local"]["mix_reach_final"]
    # every band is narrower than a third of the smallest gap between two methods it tells apart
    for key, band in BANDS.items():
        values = sorted(m[key] for m in golden.values())
        assert 3 * band < min(hi - lo for lo, hi in itertools.pairwise(values)), (key, values)


@pytest.mark.parametrize("method", ["bilayer", "flat", "cfl", "local"])
def test_cluster_swarm_stays_in_its_bands(
    method: str, clusters: tuple[dict[str, dict[str, Any]], dict[str, Any], list[int]]
) -> None:
    got, want = clusters[0][method], clusters[1][method]
    for key, band in BANDS.items():
        assert abs(got[key] - want[key]) <= band, (key, got[key], want[key])
    for key, rel in REL_BANDS.items():
        assert got[key] == pytest.approx(want[key], rel=rel, abs=1e-9), key
    for key in (*EXACT, "mix_reach_final", "min_clusters", "inter_matched_mean"):
        assert got[key] == want[key], (key, got[key], want[key])
