"""The initial head: which scheme draws it, and which seed (the experiment seed by default, one
head shared by every robot of a swarm, the same in the simulator and on ROS robots)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gossip_learning.config import config_from_dict, load_config
from gossip_learning.errors import ConfigError
from gossip_learning.experiment import Swarm
from gossip_learning.learner import HeadSpec, init_params, unpack
from gossip_learning.nodes.common import robot_parts
from gossip_learning.plan import SwarmPlan, load_data
from gossip_learning.results import run_experiment

ROOT = Path(__file__).resolve().parents[1]
WIDE = HeadSpec("mlp", 160, 10, (512,))  # fan_in 160 then 512: enough draws for statistics


def _weights_and_biases(scheme: str) -> list[tuple[np.ndarray, np.ndarray]]:
    return unpack(WIDE, init_params(WIDE, 3, scheme))


def test_torch_default_is_what_torch_draws() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    for (w, b), (fan_in, fan_out) in zip(
        _weights_and_biases("torch_default"), WIDE.layer_sizes(), strict=True
    ):
        ref = torch.nn.Linear(fan_in, fan_out)
        ref_w, ref_b = ref.weight.detach().numpy(), ref.bias.detach().numpy()
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(w).max() <= bound and np.abs(ref_w).max() <= bound
        assert np.abs(b).max() <= bound and np.abs(ref_b).max() <= bound
        assert w.std() == pytest.approx(ref_w.std(), rel=0.05)
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # U(-a, a): a/sqrt(3)


def test_kaiming_normal_is_what_torch_draws() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    for (w, b), (fan_in, fan_out) in zip(
        _weights_and_biases("kaiming_normal"), WIDE.layer_sizes(), strict=True
    ):
        ref = torch.empty(fan_out, fan_in)
        torch.nn.init.kaiming_normal_(ref)  # fan_in, ReLU gain: N(0, 2/fan_in)
        assert w.std() == pytest.approx(float(ref.std()), rel=0.05)
        assert w.std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
        assert abs(w.mean()) < 0.1 * w.std()
        assert np.abs(w).max() > 2.5 * w.std()  # normal tails, not a uniform box
        np.testing.assert_array_equal(b, 0.0)
    torch_default = _weights_and_biases("torch_default")[0][0]
    assert _weights_and_biases("kaiming_normal")[0][0].std() > 2 * torch_default.std()


def test_unknown_scheme_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        init_params(WIDE, 0, "xavier")
    assert err.value.key == "learning.init_scheme"


def _cfg(*overrides: str):  # type: ignore[no-untyped-def]
    return load_config(ROOT / "config" / "quickstart.yaml", ["swarm.num_robots=6", *overrides])


def test_the_head_follows_the_experiment_seed_and_is_shared_by_the_swarm() -> None:
    cfg = _cfg()
    assert cfg.learning.init_seed == "auto"
    data = load_data(cfg)
    plans = [SwarmPlan(cfg, seed, data) for seed in (0, 1)]
    heads = [[p.initial_params(i) for i in range(6)] for p in plans]
    for per_robot in heads:  # one head for the whole swarm
        assert all(np.array_equal(h, per_robot[0]) for h in per_robot)
    assert not np.array_equal(heads[0][0], heads[1][0])  # a new head for another seed
    assert [p.init_seed for p in plans] == [0, 1]
    np.testing.assert_array_equal(heads[1][0], init_params(plans[1].spec, 1))
    # the simulator's robots and a ROS robot of the same (config, seed) start from it
    swarm = Swarm(cfg, "bilayer", 1, data)
    assert all(np.array_equal(a.model, heads[1][0]) for a in swarm.agents)
    np.testing.assert_array_equal(robot_parts(cfg, "bilayer", 1, 4)[0].params, heads[1][0])


def test_an_integer_init_seed_fixes_the_head_for_every_seed() -> None:
    cfg = _cfg("learning.init_seed=7", "learning.init_scheme=kaiming_normal")
    data = load_data(cfg)
    a, b = (SwarmPlan(cfg, seed, data).initial_params(0) for seed in (0, 5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, init_params(SwarmPlan(cfg, 0, data).spec, 7, "kaiming_normal"))


def test_per_robot_heads_still_differ_by_robot_and_seed() -> None:
    cfg = _cfg("learning.init=per_robot")
    data = load_data(cfg)
    p0, p1 = SwarmPlan(cfg, 0, data), SwarmPlan(cfg, 1, data)
    assert not np.array_equal(p0.initial_params(0), p0.initial_params(1))
    assert not np.array_equal(p0.initial_params(0), p1.initial_params(0))


def test_results_say_which_scheme_and_head_seed_each_run_used(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {
            "experiment": {"rounds": 1, "seeds": [0, 3], "methods": ["local"], "map_rounds": []},
            "swarm": {"num_robots": 4},
            "learning": {"head": "linear", "epochs": 0, "init_scheme": "kaiming_normal"},
        }
    )
    folder = run_experiment(cfg, tmp_path / "out", log=None)
    for name in ("summary.json", "run_info.json"):
        head = json.loads((folder / name).read_text())["initial_head"]
        assert head == {"init_scheme": "kaiming_normal", "init": "shared", "init_seed": "auto",
                        "init_seed_by_seed": {"0": 0, "3": 3}}  # fmt: skip
    assert "kaiming_normal" in (folder / "summary.md").read_text()
