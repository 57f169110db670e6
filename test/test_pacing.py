"""phase_scale (nodes/pacing.py): the rule that stretches a launch's phases to what one host can
serve, the scaled config and clock tick, and the errors that name the argument."""

from __future__ import annotations

import dataclasses

import pytest

from gossip_learning.config import load_config
from gossip_learning.nodes import pacing
from gossip_learning.schedule import RoundClock, build_schedule


def test_phase_keys_are_every_phase_length_and_nothing_else() -> None:
    assert set(pacing.PHASE_KEYS) == {
        "cluster_phase_s", "train_phase_s", "gossip_phase_s", "end_phase_s",
    }  # fmt: skip


@pytest.mark.parametrize("cpus", [1, 2, 4, 16])
def test_auto_is_one_for_one_process_whatever_the_host(cpus: int) -> None:
    # single_process:=true and a robot computer of a real fleet keep the configured phases
    assert pacing.auto_phase_scale(1, cpus) == 1.0
    assert pacing.auto_phase_scale(0, cpus) == 1.0


def test_auto_keeps_small_swarms_and_stretches_sixty_processes_on_two_cores() -> None:
    assert pacing.auto_phase_scale(12, 2) == 1.0  # CI's acceptance size runs at the config's
    assert pacing.auto_phase_scale(60, 2) > 1.0  # where 0.2 s phases lost frames as late
    assert pacing.auto_phase_scale(60, 16) == 1.0  # a big host serves them in time


def test_auto_grows_with_processes_and_shrinks_with_cpus() -> None:
    for cpus in (1, 2, 4, 8):
        scales = [pacing.auto_phase_scale(n, cpus) for n in range(1, 101)]
        assert scales == sorted(scales), cpus
    for n in (2, 30, 60, 100):
        by_cpus = [pacing.auto_phase_scale(n, c) for c in (1, 2, 4, 8, 16)]
        assert by_cpus == sorted(by_cpus, reverse=True), n
    assert pacing.auto_phase_scale(100, 2) > pacing.auto_phase_scale(60, 2)


@pytest.mark.parametrize("cpus", [1, 2, 3, 8, 64])
def test_auto_fits_the_swarms_demand_into_its_share_of_the_host(cpus: int) -> None:
    for n in range(2, 101):
        scale = pacing.auto_phase_scale(n, cpus)
        assert scale >= 1.0 and (scale / pacing.STEP).is_integer(), (n, scale)
        # the demand at this scale fits the planned share, and one step less would not
        assert pacing.demand_cores(n) / scale <= pacing.HOST_SHARE * cpus + 1e-9, (n, cpus)
        if scale > 1.0:
            less = scale - pacing.STEP
            assert pacing.demand_cores(n) / less > pacing.HOST_SHARE * cpus, (n, cpus)


def test_demand_grows_with_the_square_of_the_processes() -> None:
    # every process takes and decodes every other one's beacons
    assert pacing.demand_cores(1) == pytest.approx(pacing.IDLE_CORES)
    d30, d60 = pacing.demand_cores(30), pacing.demand_cores(60)
    assert 2.0 < d60 / d30 < 4.0


def test_the_argument_is_auto_or_a_positive_number() -> None:
    assert pacing.parse_phase_scale("auto", 60, 2) == pacing.auto_phase_scale(60, 2)
    assert pacing.parse_phase_scale(" AUTO ", 1, 2) == 1.0
    assert pacing.parse_phase_scale("2.5", 3, 2) == 2.5
    assert pacing.parse_phase_scale("0.5", 60, 2) == 0.5  # shorter phases on a fast host
    for bad in ("0", "-1", "nan", "inf", "fast", ""):
        with pytest.raises(ValueError, match=r"phase_scale:="):
            pacing.parse_phase_scale(bad, 10, 2)
    with pytest.raises(ValueError, match="CPUs"):
        pacing.auto_phase_scale(10, 0)


def test_scaled_config_stretches_every_phase_and_nothing_else() -> None:
    cfg = load_config("config/ros_acceptance.yaml")
    assert pacing.scaled(cfg, 1.0) is cfg
    wide = pacing.scaled(cfg, 2.5)
    for key in pacing.PHASE_KEYS:
        assert getattr(wide.timing, key) == pytest.approx(2.5 * getattr(cfg.timing, key)), key
    assert wide.timing.clock_sync_max_s == cfg.timing.clock_sync_max_s
    for section in dataclasses.fields(cfg):
        if section.name != "timing":
            assert getattr(wide, section.name) == getattr(cfg, section.name), section.name
    schedule = build_schedule("bilayer", cfg.clustering.passes, cfg.gossip)
    period = RoundClock(schedule, cfg.timing).period
    assert RoundClock(schedule, wide.timing).period == pytest.approx(2.5 * period)
    # the phase kinds and their order stay: only their lengths change
    assert [p.kind for p in RoundClock(schedule, wide.timing).schedule] == [
        p.kind for p in schedule
    ]


def test_scaled_tick_keeps_the_checks_per_phase_up_to_one_a_second() -> None:
    assert pacing.scaled_tick(0.05, 1.0) == 0.05
    assert pacing.scaled_tick(0.05, 2.0) == pytest.approx(0.1)
    assert pacing.scaled_tick(0.05, 0.5) == pytest.approx(0.025)
    assert pacing.scaled_tick(0.5, 10.0) == 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_nodes_bad_phase_scale_parameter_is_named(bad: float) -> None:
    cfg = load_config()
    with pytest.raises(ValueError, match="parameter 'phase_scale'"):
        pacing.scaled(cfg, bad)
    with pytest.raises(ValueError, match="parameter 'phase_scale'"):
        pacing.scaled_tick(0.05, bad)


def test_swarm_nodes_config_follows_its_phase_scale_parameter() -> None:
    pytest.importorskip("rclpy")
    from gossip_learning.nodes.swarm import HOST_PARAMETERS, host_config

    p = {name: default for name, (default, _) in HOST_PARAMETERS.items()}
    p.update(config_file="config/ros_acceptance.yaml")
    base = host_config(p)
    p["phase_scale"] = 3.0
    assert host_config(p).timing.gossip_phase_s == pytest.approx(3 * base.timing.gossip_phase_s)
    p["phase_scale"] = 0.0
    with pytest.raises(ValueError, match="parameter 'phase_scale'"):
        host_config(p)
