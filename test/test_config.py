"""Config loading: every bad input fails before work starts, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip_learning.config import (
    Config,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
)
from gossip_learning.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(dump_config(Config()))
    assert load_config(p) == Config()


@pytest.mark.parametrize(
    ("raw", "key", "needle"),
    [
        ({"gossip": {"mod": "pairwise"}}, "gossip.mod", "did you mean 'mode'"),
        ({"gosip": {}}, "gosip", "did you mean 'gossip'"),
        ({"channel": {"comm_range": -5}}, "channel.comm_range", "must be > 0"),
        ({"channel": {"comm_range": "far"}}, "channel.comm_range", "expected a number"),
        ({"data": {"alpha": 0}}, "data.alpha", "must be > 0"),
        ({"data": {"alpha": -1.0}}, "data.alpha", "must be > 0"),
        ({"swarm": {"num_robots": 2.5}}, "swarm.num_robots", "expected an integer"),
        ({"swarm": {"num_robots": True}}, "swarm.num_robots", "expected an integer"),
        ({"swarm": {"area": [100]}}, "swarm.area", "expected 2 items"),
        ({"gossip": {"mode": "shout"}}, "gossip.mode", "allowed: pairwise, broadcast"),
        ({"experiment": {"methods": ["bilayer", "magic"]}}, "experiment.methods[1]", "allowed"),
        ({"experiment": {"rounds": 5, "map_rounds": [9]}}, "experiment.map_rounds[0]", "outside"),
        ({"mobility": {"speed_min": 3, "speed_max": 1}}, "mobility.speed_min", "speed_max"),
        ({"data": {"dataset": "npz"}}, "data.params.path", "needs a path"),
        ({"swarm": 5}, "swarm", "mapping"),
        ({"gossip": {"matching": "greedy"}}, "gossip.matching", "allowed: single, retry, oracle"),
        ({"gossip": {"match_attempts": 0}}, "gossip.match_attempts", "must be >= 1"),
        ({"gossip": {"match_attempts": 9}}, "gossip.match_attempts", "must be <= 8"),
        ({"learning": {"init_seed": "random"}}, "learning.init_seed", "an integer or 'auto'"),
        ({"learning": {"init_seed": 1.5}}, "learning.init_seed", "an integer or 'auto'"),
        ({"learning": {"init_seed": True}}, "learning.init_seed", "an integer or 'auto'"),
        ({"learning": {"init_seed": -1}}, "learning.init_seed", "must be >= 0"),
        ({"learning": {"init_scheme": "xavier"}}, "learning.init_scheme", "kaiming_normal"),
    ],
)
def test_bad_values_name_the_key(raw: dict, key: str, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert err.value.key == key
    assert needle in str(err.value)
    assert key in str(err.value)


def test_overrides_parse_yaml_values() -> None:
    raw = apply_overrides(
        {"swarm": {"num_robots": 5}}, ["channel.comm_range=30", "experiment.seeds=[1, 2]"]
    )
    cfg = config_from_dict(raw)
    assert (
        cfg.channel.comm_range == 30.0
        and cfg.experiment.seeds == [1, 2]
        and cfg.swarm.num_robots == 5
    )


@pytest.mark.parametrize("text", ["comm_range=3", "channel.comm_range", "channel.comm_range=[1"])
def test_bad_overrides(text: str) -> None:
    with pytest.raises(ConfigError):
        apply_overrides({}, [text])


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("swarm: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    "path", sorted(p for p in CONFIG_DIR.glob("*.yaml") if not p.name.startswith("ros"))
)
def test_shipped_configs_are_valid_and_explicit(path: Path) -> None:
    import yaml

    loaded = load_config(path).to_dict()
    written = yaml.safe_load(path.read_text())
    assert set(written) == set(loaded), f"{path.name}: sections differ"
    for section, values in loaded.items():
        # every key of every section is written in that section (no silent defaults)
        assert set(written[section] or {}) == set(values), f"{path.name}: {section}"
