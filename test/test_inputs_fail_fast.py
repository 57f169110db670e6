"""Inputs that fail fast (issue 11): each bad input is refused with a message naming what to fix,
before any data is loaded or any file is written."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest

from gossip_learning import cli, reproduce
from gossip_learning.config import Config, config_from_dict, load_config
from gossip_learning.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _float_keys() -> list[tuple[str, str]]:
    out = []
    hints = typing.get_type_hints(Config)
    for sec in dataclasses.fields(Config):
        cls = hints[sec.name]
        for f in dataclasses.fields(cls):
            if typing.get_type_hints(cls)[f.name] is float:
                out.append((sec.name, f.name))
    return out


@pytest.mark.parametrize(("section", "key"), _float_keys())
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_every_float_key_refuses_nan_and_inf(section: str, key: str, bad: float) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({section: {key: bad}})
    assert err.value.key == f"{section}.{key}" and "finite" in str(err.value)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"swarm": {"num_robots": 10**9}}, "swarm.num_robots"),
        ({"experiment": {"rounds": 10**7}}, "experiment.rounds"),
        ({"clustering": {"passes": 10**6}}, "clustering.passes"),
        ({"gossip": {"intra_steps": 10**6}}, "gossip.intra_steps"),
        ({"gossip": {"inter_steps": 10**6}}, "gossip.inter_steps"),
        ({"learning": {"epochs": 10**8}}, "learning.epochs"),
        ({"learning": {"hidden": [10**9]}}, "learning.hidden[0]"),
        ({"experiment": {"seeds": [0, -1]}}, "experiment.seeds[1]"),
        ({"learning": {"init_seed": -3}}, "learning.init_seed"),
        ({"data": {"dataset": "cifar100"}}, "data.dataset"),
        ({"data": {"dataset": "synthetic", "params": {"num_train": 10**12}}},
         "data.params.num_train"),
        ({"data": {"dataset": "synthetic", "params": {"separation": float("nan")}}},
         "data.params.separation"),
        ({"faults": {"partition_rounds": [5, 2]}}, "faults.partition_rounds"),
        ({"faults": {"rogues": 1}}, "faults.rogue_attack"),
        ({"defence": {"fleet_key": "short"}}, "defence.fleet_key"),
    ],
)  # fmt: skip
def test_values_that_would_exhaust_memory_or_time_are_refused(
    raw: dict[str, typing.Any], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert err.value.key == key, str(err.value)


def test_synthetic_data_too_large_for_memory_is_refused_before_allocating() -> None:
    from gossip_learning.datasets import make_synthetic

    with pytest.raises(ConfigError, match="numbers"):
        make_synthetic(num_train=5_000_000, dim=5_000)


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "dup.yaml"
    p.write_text("swarm:\n  num_robots: 5\n  num_robots: 50\n")
    with pytest.raises(ConfigError, match="written twice") as err:
        load_config(p)
    assert err.value.key == "num_robots" and "line 3" in str(err.value)


def test_validate_refuses_an_unknown_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", str(ROOT / "config/quickstart.yaml"), "--set",
                     "data.dataset=mnist"]) == 2  # fmt: skip
    assert "data.dataset" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["file", "file_parent", "readonly"])
def test_out_that_cannot_be_a_results_folder_fails_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "readonly" and os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    out = {"file": a_file, "file_parent": a_file / "sub", "readonly": ro / "sub"}[kind]
    loaded: list[str] = []
    monkeypatch.setattr("gossip_learning.results.load_data", lambda cfg: loaded.append("x"))
    code = cli.main(["run", str(ROOT / "config/quickstart.yaml"), "-q", "--out", str(out)])
    assert code == 2 and not loaded
    err = capsys.readouterr().err
    assert "--out" in err and ("not a folder" in err or "not writable" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "ro"]


def test_no_results_folder_before_the_swarm_is_checked(tmp_path: Path) -> None:
    out = tmp_path / "res"
    code = cli.main(["run", str(ROOT / "config/quickstart.yaml"), "-q", "--out", str(out),
                     "--set", "swarm.num_robots=5000"])  # fmt: skip
    assert code == 2 and not out.exists()


def test_ctrl_c_in_reproduce_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_sweep", interrupted)
    code = cli.main(["reproduce", "--only", "iid_n30", "--out", str(tmp_path / "r")])
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_a_bad_config_answers_fast_without_importing_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("swarm:\n  num_robots: .nan\n")
    code = (
        "import sys, time; t = time.perf_counter(); from gossip_learning.cli import main; "
        f"rc = main(['run', {str(bad)!r}]); "
        "print(rc, 'torch' in sys.modules, time.perf_counter() - t)"
    )
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rc, torch_loaded, _ = res.stdout.split()
    assert rc == "2" and torch_loaded == "False", res.stdout
    assert "swarm.num_robots" in res.stderr
    assert time.perf_counter() - t < 30  # generous: the point is that torch is never imported


def _bomb(levels: int = 9) -> str:
    """A YAML alias bomb: 9 aliases per level, 9^levels leaves from a few hundred bytes."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "data:\n  dataset: synthetic\n  params:\n" + "".join(f"    {x}\n" for x in lines)


@pytest.mark.parametrize("where", ["file", "set"])
def test_a_yaml_alias_bomb_is_refused_not_expanded(tmp_path: Path, where: str) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_bomb() if where == "file" else "swarm: {num_robots: 5}\n")
    extra = [] if where == "file" else ["--set", "data.params={a: &a [1, 1], b: [*a, *a]}"]
    res = subprocess.run(
        [sys.executable, "-m", "gossip_learning.cli", "validate", str(bomb), *extra],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 2 and "alias" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("where", ["file", "set"])
def test_deep_nesting_is_a_clear_error_not_a_recursion_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    deep = "[" * 20_000 + "]" * 20_000
    cfg = tmp_path / "deep.yaml"
    cfg.write_text(f"data:\n  params:\n    x: {deep}\n" if where == "file" else "")
    extra = [] if where == "file" else ["--set", f"data.params={deep}"]
    assert cli.main(["validate", str(cfg), *extra]) == 2
    err = capsys.readouterr().err
    assert "nested deeper than" in err
    assert ("'<file>'" if where == "file" else "'data.params'") in err


@pytest.mark.parametrize(
    ("dataset", "key"),
    [("digits", "nosuch"), ("synthetic", "num_trian"), ("cifar10-mcunet", "limit")],
)
def test_unknown_dataset_params_are_refused_by_validate(
    dataset: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["validate", str(ROOT / "config/quickstart.yaml"), "--set",
                     f"data.dataset={dataset}", "--set", f"data.params={{{key}: 1}}"])  # fmt: skip
    assert code == 2 and f"data.params.{key}" in capsys.readouterr().err


def test_the_cifar_params_list_is_the_loaders_signature() -> None:
    pytest.importorskip("torch")
    import inspect

    from gossip_learning.config import CIFAR_PARAMS
    from gossip_learning.vision import load_cifar10_mcunet

    assert tuple(inspect.signature(load_cifar10_mcunet).parameters) == CIFAR_PARAMS


def test_a_swarm_too_large_for_memory_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gossip_learning import budget

    loaded: list[str] = []
    monkeypatch.setattr("gossip_learning.results.load_data", lambda cfg: loaded.append("x"))
    monkeypatch.setattr(budget, "available_bytes", lambda: 8 * budget.GIB)
    out = tmp_path / "res"
    code = cli.main(["run", str(ROOT / "config/quickstart.yaml"), "-q", "--out", str(out),
                     "--set", "swarm.num_robots=100000"])  # fmt: skip
    assert code == 2 and not loaded and not out.exists()
    err = capsys.readouterr().err
    assert "swarm.num_robots" in err and "GiB" in err
    assert budget.swarm_bytes(100_000) > 500 * budget.GIB
    budget.check_swarm_memory(20, 17_226)  # the quickstart fits


@pytest.mark.parametrize("only", [["nosuch"], ["iid", "nosuch"], []])
def test_reproduce_only_with_an_unknown_name_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], only: list[str]
) -> None:
    out = tmp_path / "r"
    assert cli.main(["reproduce", "--only", *only, "--out", str(out)]) == 2
    assert "--only" in capsys.readouterr().err and not out.exists()
