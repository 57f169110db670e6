"""The benchmark scripts on tiny real inputs: each writes a report of the shared shape
(benchmarks/_report.py) whose figures are positive and add up. Speed itself is not checked here."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import shlex
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
MACHINE_KEYS = {
    "cpus",
    "platform",
    "processor",
    "python",
    "numpy",
    "load_avg_before",
    "load_avg_after",
}


def script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as the scripts see themselves (``_report`` importable)."""
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its functions pickle (pool tasks)
    spec.loader.exec_module(module)
    return module


def check_report(path: Path, name: str, argv: list[str]) -> list[dict[str, Any]]:
    report = json.loads(path.read_text(encoding="utf-8"))
    keys = {"benchmark", "command", "git_commit", "git_dirty", "date", "machine", "records"}
    assert keys <= set(report) <= keys | {"git_changed", "allow_dirty"}
    assert len(report["git_commit"]) == 40 and isinstance(report["git_dirty"], bool)
    assert report["benchmark"] == name
    assert shlex.split(report["command"]) == ["python", f"benchmarks/{name}.py", *argv]
    assert dt.datetime.fromisoformat(report["date"]).tzinfo is not None
    machine = report["machine"]
    assert set(machine) >= MACHINE_KEYS and machine["cpus"] >= 1
    for key in ("load_avg_before", "load_avg_after"):
        assert len(machine[key]) == 3 and all(v >= 0 for v in machine[key])
    records = report["records"]
    assert records and all(isinstance(r, dict) for r in records)
    for r in records:  # flat: numbers, strings and flags only
        assert all(isinstance(v, str | int | float | bool) for v in r.values()), r
    return list(records)


def positive(record: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = record[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)


def _tiny_jpeg_tarball(tmp_path: Path, per_class: int) -> Path:
    image = pytest.importorskip("PIL.Image", reason="Pillow is needed to write JPEGs")
    from gossip_learning.vision.cifar import CLASS_NAMES

    rng = np.random.default_rng(0)
    root = tmp_path / "cifar10-jpeg"
    for split in ("train", "test"):
        for cls in CLASS_NAMES:
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                image.fromarray(pixels).save(root / split / cls / f"{i:04d}.jpg", format="JPEG")
    tgz = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(root, arcname="cifar10-jpeg")
    return tgz


def test_feature_extraction_reports_decode_preprocess_and_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch", reason="torch is needed for the backbone")
    pytest.importorskip(
        "mcunet.tinynas.nn.networks.proxyless_nets", reason="pip install --no-deps mcunet"
    )
    tgz = _tiny_jpeg_tarball(tmp_path, per_class=2)
    out = tmp_path / "fe.json"
    argv = ["--source", str(tgz), "--images", "16", "--threads", "1", "--batch-sizes", "4", "8"]
    argv += ["--layouts", "both", "--random-weights", "--json", str(out)]
    assert script("feature_extraction", monkeypatch).main(argv) == 0
    records = check_report(out, "feature_extraction", argv)
    assert [(r["channels_last"], r["batch_size"]) for r in records] == [
        (True, 4),
        (True, 8),
        (False, 4),
        (False, 8),
    ]
    for r in records:
        assert r["images"] == 16 and r["split"] == "test" and r["threads"] == 1
        assert r["weights"] == "random" and r["source"] == tgz.name
        positive(r, "archive_read_s", "decode_s", "preprocess_s", "backbone_s", "total_s")
        positive(r, "images_per_s", "images_per_s_incl_archive_read", "backbone_images_per_s")
        parts = r["decode_s"] + r["preprocess_s"] + r["backbone_s"]
        assert r["total_s"] == pytest.approx(parts, abs=1e-5)
        assert r["images_per_s"] == pytest.approx(16 / r["total_s"], rel=0.02)
        assert r["images_per_s_incl_archive_read"] < r["images_per_s"]


def test_feature_extraction_needs_encoded_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch", reason="torch is needed for the backbone")
    empty = tmp_path / "nothing"
    empty.mkdir()
    argv = ["--source", str(empty), "--random-weights", "--json", str(tmp_path / "x.json")]
    assert script("feature_extraction", monkeypatch).main(argv) == 2
    assert "unknown CIFAR-10 layout" in capsys.readouterr().out
    assert not (tmp_path / "x.json").exists()


def test_feature_probe_on_a_small_npz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn", reason="scikit-learn is needed for the probes")
    from gossip_learning.datasets import make_synthetic

    ds = make_synthetic(num_train=400, num_test=100, dim=8, num_classes=4, separation=4.0)
    feats = tmp_path / "feats.npz"
    np.savez(feats, X_train=ds.X_train, y_train=ds.y_train, X_test=ds.X_test, y_test=ds.y_test)
    out = tmp_path / "probe.json"
    argv = ["--features", str(feats), "--json", str(out)]
    assert script("feature_probe", monkeypatch).main(argv) == 0
    records = check_report(out, "feature_probe", argv)
    assert [r["classifier"] for r in records] == ["logistic_regression", "nearest_centroid"]
    logreg = records[0]
    assert (logreg["solver"], logreg["C"], logreg["max_iter"]) == ("lbfgs", 1.0, 1000)
    assert logreg["converged"] is True and 0 < logreg["iterations"] < 1000
    for r in records:
        assert (r["train_samples"], r["test_samples"], r["dim"]) == (400, 100, 8)
        assert r["features"] == "feats.npz"
        positive(r, "fit_s", "predict_s", "test_accuracy", "train_accuracy")
        assert 0.8 < r["test_accuracy"] <= 1.0  # separable blobs: both probes must find them


def test_swarm_round_records_every_printed_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch", reason="torch trains the robots' heads")
    out = tmp_path / "swarm.json"
    argv = ["--robots", "5", "--rounds", "1", "--train-samples", "500", "--eval-subset", "100"]
    argv += ["--json", str(out)]
    assert script("swarm_round", monkeypatch).main(argv) == 0
    (r,) = check_report(out, "swarm_round", argv)
    assert (r["robots"], r["mode"], r["rounds"], r["measured_rounds"]) == (5, "pairwise", 1, 1)
    positive(r, "s_per_round", "dkmeans_s", "training_s", "gossip_s", "evaluation_s")
    positive(r, "mb_sent_per_round", "peak_rss_mb", "build_s", "area")
    parts = r["dkmeans_s"] + r["training_s"] + r["gossip_s"] + r["evaluation_s"]
    assert parts <= r["s_per_round"] * 1.01 + 1e-3
    printed = capsys.readouterr().out.splitlines()
    line = next(s for s in printed if s.split()[:2] == ["5", "pairwise"])
    assert f"{r['s_per_round']:.2f}" in line and f"{r['mb_sent_per_round']:.1f}" in line


def test_matching_rate_reports_each_matching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "matching.json"
    argv = ["--robots", "8", "--rounds", "2", "--seeds", "1", "--json", str(out)]
    assert script("matching_rate", monkeypatch).main(argv) == 0
    records = check_report(out, "matching_rate", argv)
    assert [(r["matching"], r["shots"], r["robots"]) for r in records] == [
        ("single", 1, 8), ("retry", 4, 8), ("oracle", 1, 8)
    ]  # fmt: skip
    for r in records:
        positive(r, "pairs_matched", "kb_sent_per_round", "seconds")
        assert r["pairs_matched"] <= 1.0
    printed = capsys.readouterr().out
    assert all(f"{r['pairs_matched']:.3f}" in printed for r in records)


def test_report_refuses_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    report = script("_report", monkeypatch).Report("x", [str(BENCH / "x.py")])
    with pytest.raises(TypeError, match="not a scalar"):
        report.add(bad=[1, 2])
    assert report.as_dict()["command"] == "python benchmarks/x.py"
    assert "torch" not in sys.modules or "torch" in report.as_dict()["machine"]


def test_pareto_grid_writes_bytes_accuracy_and_a_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/pareto.py on a tiny swarm (quickstart's digits, 8 robots, 2 rounds)."""
    pareto = script("pareto", monkeypatch)
    monkeypatch.setitem(pareto.GRIDS, "pareto", ("config/quickstart.yaml", ("swarm.num_robots=8",)))
    monkeypatch.setattr(pareto, "STEPS", (1, 2, 3))
    monkeypatch.setattr(pareto, "DTYPES", ("int8", "int8_block"))
    out, fig = tmp_path / "pareto.json", tmp_path / "pareto.png"
    argv = ["--grid", "pareto", "--rounds", "2", "--seeds", "0", "--json", str(out)]
    assert pareto.main([*argv, "--figure", str(fig)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["rounds"] == 2 and report["seeds"] == [0] and report["git_commit"]
    recs = {r["name"]: r for r in report["records"]}
    assert len(recs) == 1 + 2 * 2 * 3 + 3 * 2
    assert recs["cfl"]["bytes_per_robot_round"] == 0 and recs["cfl"]["gap_to_cfl_points"] == 0
    for r in recs.values():
        assert r["robots"] == 8 and 0 < r["final_acc_mean"] <= 1 and r["seeds"] == 1
    b = {k: recs[k]["bytes_per_robot_round"] for k in recs}
    # flat broadcast: one model per robot per step, so every extra step costs the same
    g1, g2, g3 = (b[f"flat broadcast G={g} f32"] for g in (1, 2, 3))
    assert g3 - g2 == pytest.approx(g2 - g1, rel=0.02) and g2 - g1 > 0
    f32, i8, i8b = (b[f"bilayer broadcast G=2 {d}"] for d in ("f32", "int8", "int8_block"))
    assert i8 < i8b < f32 / 3
    assert fig.stat().st_size > 10_000
    assert pareto.main(["--plot-only", str(out), "--figure", str(tmp_path / "again.png")]) == 0


def test_robustness_runs_a_chosen_scenario_and_defence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """benchmarks/robustness.py --scenario/--defence on a small swarm (quickstart, 8 robots,
    3 rounds): only the chosen rows run; the whole table alone may be written as the report."""
    robustness = script("robustness", monkeypatch)
    small = tmp_path / "small.yaml"
    cfg = Path(__file__).resolve().parents[1] / "config" / "quickstart.yaml"
    text = cfg.read_text(encoding="utf-8").replace("num_robots: 20", "num_robots: 8")
    small.write_text(text.replace("rounds: 15", "rounds: 3"), encoding="utf-8")
    argv = ["--config", str(small), "--seeds", "0", "--scenario", "b", "--defence", "checks"]
    assert robustness.main(argv) == 0
    out = capsys.readouterr().out.splitlines()[1:-1]
    rows = [s.split()[:3] for s in out]
    assert rows == [["b:", "30", "%"], ["b+c", "checks", "acc"]]
    assert robustness.main([*argv, "--jobs", "2"]) == 0  # a pool: the same rows, in table order
    assert capsys.readouterr().out.splitlines()[1:-1] == out
    for bad, message in (([*argv, "--json", str(tmp_path / "robustness.json")], "whole table"),
                         (["--scenario", "z"], "matches none")):  # fmt: skip
        with pytest.raises(SystemExit):
            robustness.main(bad)
        assert message in capsys.readouterr().err
    assert not (tmp_path / "robustness.json").exists()


def test_window_coverage_finds_the_cheapest_retry_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/window_coverage.py on 10 robots: one broadcast step hears every in-range
    cluster-mate; the summary names the fewest retry steps that reach 95 % of the reference."""
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the command line is written without it
    out = tmp_path / "coverage.json"
    argv = ["--robots", "10", "--rounds", "1", "--seeds", "1", "--reference-steps", "30",
            "--retry-steps", "1", "30", "--others", "broadcast", "--json", str(out)]  # fmt: skip
    assert script("window_coverage", monkeypatch).main(argv) == 0
    records = check_report(out, "window_coverage", argv)
    *runs, summary = records
    assert [(r["matching"], r["intra_steps"]) for r in runs] == [
        ("single", 30), ("broadcast", 1), ("retry", 1), ("retry", 30)
    ]  # fmt: skip
    ref = runs[0]["distinct_mean"]
    assert ref > 0 and runs[1]["coverage_mean"] == 1.0
    for r in runs:
        assert 0 <= r["coverage_mean"] <= 1 and r["share_of_reference"] == r["distinct_mean"] / ref
    reaching = [r["intra_steps"] for r in runs[2:] if r["distinct_mean"] >= 0.95 * ref]
    assert summary["intra_steps"] == (reaching[0] if reaching else None)


def test_fleet_parts_combine_only_from_one_clean_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = script("fleet", monkeypatch)

    def part(commit: str, date: str, kind: str, dirty: bool = False) -> dict[str, Any]:
        return {"benchmark": "fleet", "command": f"python benchmarks/fleet.py {kind}",
                "git_commit": commit, "git_dirty": dirty, "date": date,
                "machine": {"load_avg_before": [1.0]}, "records": [{"kind": kind}]}  # fmt: skip

    out = fleet.combine([part("a" * 40, "2026-12-07T08", "size"), part("a" * 40, "2026-12-07T09",
                                                                        "skew")])  # fmt: skip
    assert [r["part"] for r in out["records"]] == [0, 1]
    assert [p["command"] for p in out["parts"]] == [
        "python benchmarks/fleet.py size",
        "python benchmarks/fleet.py skew",
    ]
    assert out["date"] == "2026-12-07T09" and out["git_commit"] == "a" * 40
    with pytest.raises(SystemExit, match="one clean commit"):
        fleet.combine([part("a" * 40, "d", "size"), part("b" * 40, "d", "skew")])
    with pytest.raises(SystemExit, match="one clean commit"):
        fleet.combine([part("a" * 40, "d", "size", dirty=True)])
