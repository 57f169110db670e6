"""Golden bands: a small deterministic swarm run whose published-style numbers must not move.

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
