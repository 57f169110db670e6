"""The paper reproduction: experiment list, configs, and tables from finished runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gossip_learning import reproduce
from gossip_learning.config import config_from_dict
from gossip_learning.datasets import Dataset, register_dataset
from gossip_learning.results import run_experiment


def test_every_experiment_has_a_valid_config() -> None:
    exps = reproduce.experiments()
    names = [e.name for e in exps]
    assert len(names) == len(set(names))
    groups = {e.group for e in exps}
    assert {"iid", "dirichlet", "range_iid", "range_a0.5", "criterion", "head"} <= groups
    for e in exps:
        cfg = reproduce._config(e, ["experiment.seeds=[0]"])
        assert cfg.experiment.name == e.name
        assert cfg.data.dataset == "cifar10-mcunet"
    alphas = sorted(reproduce._config(e, []).data.alpha for e in exps if e.group == "dirichlet")
    assert alphas == [0.1, 0.5, 1.0, 10.0]
    ranges = sorted(
        reproduce._config(e, []).channel.comm_range for e in exps if e.group == "range_iid"
    )
    assert ranges == [15, 30, 45, 60, 75, 90]


def test_tables_compare_cfl_less_runs_with_their_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    register_dataset(
        "tiny-two", lambda: Dataset("tiny-two", x, y, x[:100], y[:100], 2, ["a", "b"]), replace=True
    )
    base = {
        "experiment": {"rounds": 2, "methods": ["bilayer", "cfl"], "map_rounds": [-1]},
        "swarm": {"num_robots": 6},
        "data": {"dataset": "tiny-two"},
        "learning": {"head": "linear", "batch_size": 16},
    }
    exps = [
        reproduce.Experiment("range60_iid", "range_iid", "x", label="range 60"),
        reproduce.Experiment("range15_iid", "range_iid", "x", label="range 15", ref="range60_iid"),
    ]
    run_experiment(config_from_dict(base), tmp_path / "range60_iid", log=None)
    base["experiment"]["methods"] = ["bilayer"]
    base["channel"] = {"comm_range": 15.0}
    run_experiment(config_from_dict(base), tmp_path / "range15_iid", log=None)
    text = reproduce.write_tables(tmp_path, exps)
    line15 = next(ln for ln in text.splitlines() if ln.startswith("| range 15 | bilayer"))
    cfl_final = next(ln for ln in text.splitlines() if ln.startswith("| range 60 | cfl")).split(
        "|"
    )[3]
    assert cfl_final.split("±")[0].strip() in line15  # CFL final of the reference run
    assert "—" not in line15.split("|")[6]  # a gap to CFL was computed
    assert (tmp_path / "figures" / "range_iid.png").is_file()
    assert (tmp_path / "tables.json").is_file()


def test_list_and_bad_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert reproduce.main(["--list", "--only", "iid"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    from gossip_learning.errors import ConfigError

    with pytest.raises(ConfigError):
        reproduce.main(
            ["--only", "iid_n30", "--set", "channel.comm_range=-3", "--out", "/nonexistent"]
        )
