"""The fleet harness's pure parts: link losses, nftables text, counters, the run's summary,
options and keys (no root, no ROS)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gossip_learning.channel import GilbertElliott, LogDistance, UnitDisk
from gossip_learning.errors import ConfigError
from gossip_learning.fleet.harness import FleetOptions, check_options, clock_offsets
from gossip_learning.fleet.keys import config_with_key, read_key_file
from gossip_learning.fleet.links import CUT, LinkModel, classes, loss_seen, ruleset, update
from gossip_learning.fleet.report import loss_totals, summarise

ROOT = Path(__file__).resolve().parents[1]


def test_unit_disk_cuts_out_of_range_pairs_only() -> None:
    pos = np.array([[0.0, 0.0], [50.0, 0.0], [200.0, 0.0]])
    loss = LinkModel(UnitDisk(60.0)).loss_percent(pos)
    assert loss.tolist() == [[0, 0, CUT], [0, 0, CUT], [CUT, CUT, 0]]


def test_log_distance_loss_follows_distance() -> None:
    ch = LogDistance(50.0, exponent=3.0, shadowing_db=4.0)
    pos = np.array([[0.0, 0.0], [25.0, 0.0], [50.0, 0.0], [75.0, 0.0], [101.0, 0.0]])
    row = LinkModel(ch).loss_percent(pos)[0]
    assert row[0] == 0
    assert 0 <= row[1] < row[2] < row[3] < CUT  # more loss further away, still in range
    assert row[2] == 50  # p(R) = 0.5
    assert row[4] == CUT  # beyond max_range (2R)


def test_bursts_raise_the_loss_of_bad_links() -> None:
    pos = np.array([[0.0, 0.0], [10.0, 0.0]])
    ge = GilbertElliott(2, enter=1.0, leave=0.5, loss=0.8)
    ge.step(np.random.default_rng(0))  # enter = 1: every link goes bad
    loss = LinkModel(UnitDisk(60.0), ge).loss_percent(pos)
    assert loss[0, 1] == loss[1, 0] == 80


def test_update_is_one_transaction_with_every_lossy_pair() -> None:
    loss = np.array([[0, 30, CUT], [30, 0, 0], [CUT, 0, 0]])
    text = update(loss, ["fp0", "fp1", "fp2"])
    lines = text.splitlines()
    assert lines[0] == "flush map bridge fleet links"
    body = " ".join(lines[1:])
    assert '"fp0" . "fp1" : jump l30' in body and '"fp1" . "fp0" : jump l30' in body
    assert '"fp0" . "fp2" : jump cut' in body and '"fp2" . "fp0" : jump cut' in body
    assert 'fp1" . "fp2' not in body  # a perfect link is not in the map
    rules = ruleset()
    assert "numgen random mod 100 < 30 counter drop" in rules
    assert "iifname . oifname vmap @links" in rules


def test_loss_seen_reads_the_chain_counters() -> None:
    def rule(chain: str, packets: int, drop: bool) -> dict:
        expr: list[dict] = [{"counter": {"packets": packets, "bytes": 0}}]
        if drop:
            expr.append({"drop": None})
        return {"rule": {"family": "bridge", "table": "fleet", "chain": chain, "expr": expr}}

    listing = {
        "nftables": [
            {"metainfo": {}},
            rule("cut", 7, True),
            rule("l30", 1000, False),
            rule("l30", 290, True),
            rule("l5", 0, False),
            rule("l5", 0, True),
        ]
    }
    seen = loss_seen(json.dumps(listing))
    assert seen == {30: (1000, 290), CUT: (7, 7)}
    totals = loss_totals(seen)
    assert totals["loss_applied"] == pytest.approx(0.30)
    assert totals["loss_seen"] == pytest.approx(0.29)
    assert totals["cut_frames"] == 7


def test_summary_counts_reporters_bytes_and_exits() -> None:
    def st(i: int, r: int, sent: int) -> dict:
        return {"t": 0.0, "status": {"id": i, "round": r, "acc": 0.5 + 0.1 * r,
                                     "cluster": 0, "transport": {"bytes_sent": sent}}}  # fmt: skip

    statuses = [{"t": 3.0, "discovered": 2}]
    statuses += [st(i, r, 100 * r) for r in range(3) for i in range(2)]
    counters0 = [(0, 0, 0, 0)] * 3
    counters1 = [(1000, 10, 2000, 20)] * 3
    counters2 = [(3000, 30, 6000, 60)] * 3
    samples = [
        {"round": 0, "t": 0.0, "counters": counters0},
        {"round": 1, "t": 10.0, "counters": counters0},
        {"round": 2, "t": 20.0, "counters": counters1},
        {"round": 3, "t": 30.0, "counters": counters2},
    ]
    out = summarise(
        options={"robots": 2, "rounds": 2}, statuses=statuses, samples=samples, loss={},
        applied=[0.0], exits=[0, 0], observer_exit=0, started=1.0, epoch=10.0, period=10.0,
        clocks=[(0.0, 0.0)] * 2, channel="UnitDisk",
    )  # fmt: skip
    assert out["ok"] and out["reporting_min"] == 2
    assert out["discovery_s"] == 2.0
    assert [r["computed_bytes"] for r in out["per_round"]] == [200, 200]
    # two robots' veths (the observer's is the third): 2 x 1000 then 2 x 2000 bytes sent
    assert [r["wire_sent_bytes"] for r in out["per_round"]] == [2000, 4000]
    assert out["wire_bytes_per_robot_round"] == 1500
    assert out["acc_last"] == pytest.approx(0.7)
    bad = summarise(
        options={"robots": 2, "rounds": 2}, statuses=statuses[:-1], samples=samples, loss={},
        applied=[], exits=[0, 1], observer_exit=0, started=1.0, epoch=10.0, period=10.0,
        clocks=[(0.0, 0.0)] * 2, channel="UnitDisk",
    )  # fmt: skip
    assert not bad["ok"] and bad["reporting_min"] == 1


def test_summary_reports_discovery_progress_udp_drops_and_clock_residual() -> None:
    statuses: list[dict] = [{"t": 5.0, "found": 1}, {"t": 7.0, "found": 2}]
    statuses += [
        {"t": 0.0, "status": {"id": i, "round": 1, "clock_correction_s": c}}
        for i, c in enumerate([0.0, 0.3, 0.15])
    ]  # robot 0 ran 0.3 s ahead of robot 1, which followed it to within 0 ms
    udp0 = [[100, 0, 0, 0], [100, 0, 0, 1], None]
    udp1 = [[400, 50, 50, 0], [300, 0, 0, 9], [70, 7, 7, 7]]
    samples = [{"round": r, "t": 0.0, "counters": [(0, 0, 0, 0)] * 4, "udp": u}
               for r, u in ((0, udp0), (1, udp1), (2, udp1))]  # fmt: skip
    out = summarise(
        options={"robots": 3, "rounds": 1}, statuses=statuses, samples=samples, loss={},
        applied=[], exits=[0, 0, 0], observer_exit=0, started=1.0, epoch=10.0, period=10.0,
        clocks=[(0.15, 0.0), (-0.15, 0.0), (0.0, 0.0)], channel="UnitDisk",
    )  # fmt: skip
    assert out["discovery_found_max"] == 2 and out["discovery_half_s"] == 6.0
    assert math.isnan(out["discovery_s"])  # never all three
    assert out["udp"] == {
        "received": 500, "rcvbuf_errors": 50, "in_errors": 50, "sndbuf_errors": 8
    }  # fmt: skip
    assert out["clock_corrections_s"] == [0.0, 0.3, 0.15]
    assert out["clock_residual_ms"] == pytest.approx(0.0)


def test_clock_offsets_span_the_skew() -> None:
    offs = clock_offsets(8, 100.0, 20.0, seed=1)
    values = sorted(o for o, _ in offs)
    assert values[0] == pytest.approx(-0.05) and values[-1] == pytest.approx(0.05)
    assert {d for _, d in offs} == {20.0, -20.0}
    assert clock_offsets(8, 0.0, 0.0, 1) == [(0.0, 0.0)] * 8


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"robots": 1}, "--robots"),
        ({"rounds": 0}, "--rounds"),
        ({"mtu": 100}, "--mtu"),
        ({"rate": "fast"}, "--rate"),
        ({"skew_ms": -1.0}, "--skew-ms"),
        ({"overrides": ["channel.comm_range=-3"]}, "channel.comm_range"),
    ],
)
def test_bad_options_name_their_key(change: dict, key: str) -> None:
    o = FleetOptions(config=str(ROOT / "config" / "ros_swarm.yaml"), robots=4, rounds=2, out="x")
    for k, v in change.items():
        setattr(o, k, v)
    with pytest.raises(ConfigError, match=key):
        check_options(o)


def test_key_file_is_read_privately(tmp_path: Path) -> None:
    key = tmp_path / "fleet.key"
    key.write_text("a fleet key of 32 characters....\n", encoding="utf-8")
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        read_key_file(key)
    key.chmod(0o600)
    assert read_key_file(key) == "a fleet key of 32 characters...."
    cfg_path = config_with_key(str(ROOT / "config" / "ros_swarm.yaml"), str(key))
    assert os.stat(cfg_path).st_mode & 0o077 == 0
    text = cfg_path.read_text(encoding="utf-8")
    assert "a fleet key of 32 characters" not in text and f"file:{key.resolve()}" in text
    shutil.rmtree(cfg_path.parent)
    short = tmp_path / "short.key"
    short.write_text("too short", encoding="utf-8")
    short.chmod(0o600)
    with pytest.raises(ConfigError, match="fleet_key_file"):
        read_key_file(short)


def test_classes_reads_the_named_counters() -> None:
    listing = {"nftables": [
        {"metainfo": {}},
        {"counter": {"family": "bridge", "name": "rtps_user", "table": "fleet", "packets": 3,
                     "bytes": 900}},
        {"counter": {"family": "bridge", "name": "somebody_else", "packets": 1, "bytes": 1}},
    ]}  # fmt: skip
    assert classes(json.dumps(listing)) == {"rtps_user": (3, 900)}
    rules = ruleset(observer="fp9")
    assert rules.index('iifname "fp9" accept') < rules.index('counter name "rtps_user"')


ROBOT_LAUNCH = ROOT / "launch" / "robot.launch.py"


def _expand_robot(**args: str) -> list:  # pragma: no cover - needs the launch wheels
    from launch import LaunchContext
    from launch.actions import OpaqueFunction
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_ros.actions import Node

    ctx = LaunchContext()
    ld = PythonLaunchDescriptionSource(str(ROBOT_LAUNCH)).get_launch_description(ctx)
    values = {a.name: a.default_value[0].text for a in ld.get_launch_arguments()}
    values.update(args)
    ctx.launch_configurations.update(values)
    (opaque,) = [e for e in ld.entities if isinstance(e, OpaqueFunction)]
    return [a for a in opaque.execute(ctx) or [] if isinstance(a, Node)]


def _node_params(node: object) -> dict:  # pragma: no cover - needs the launch wheels
    out: dict = {}
    for group in node._Node__parameters:  # type: ignore[attr-defined]
        for key, value in group.items():
            out["".join(getattr(k, "text", str(k)) for k in key)] = value
    return out


@pytest.mark.skipif(
    importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None,
    reason="the ROS 2 launch and launch_ros packages are not installed",
)
def test_robot_launch_runs_one_robot_and_keeps_the_key_private(tmp_path: Path) -> None:
    config = str(ROOT / "config" / "ros_swarm.yaml")
    (real,) = _expand_robot(robot_id="3", config=config)
    assert real.node_executable == "robot_node" and _node_params(real)["robot_id"] == 3
    (sim,) = _expand_robot(robot_id="2", sim="kinematic", range_filter="false", config=config)
    p = _node_params(sim)
    assert sim.node_executable == "swarm_node" and list(p["robot_ids"]) == [2]
    assert p["range_filter"] is False
    key = tmp_path / "fleet.key"
    key.write_text("the fleet key, 32 characters ...", encoding="utf-8")
    key.chmod(0o600)
    (keyed,) = _expand_robot(robot_id="1", config=config, fleet_key_file=str(key))
    p = _node_params(keyed)
    assert "32 characters" not in json.dumps(p, default=str)  # not a parameter
    text = "".join(getattr(x, "text", str(x)) for x in p["config_file"])
    private = Path(str(yaml.safe_load(text)))  # launch_ros holds it as YAML text
    assert private.stat().st_mode & 0o077 == 0 and private.parent.stat().st_mode & 0o077 == 0
    text = private.read_text(encoding="utf-8")
    assert "the fleet key, 32 characters" not in text and f"file:{key.resolve()}" in text
    shutil.rmtree(private.parent)
    with pytest.raises(ValueError, match="valid arguments"):
        _expand_robot(robot_idd="1")
