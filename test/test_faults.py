"""Fault injection in the simulator: seeded, visible in the metrics, configurable from the file."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.channel import GilbertElliott
from gossip_learning.config import FaultsConfig, load_config
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.faults import FaultPlan

QUICK = ["swarm.num_robots=12", "experiment.rounds=6", "learning.epochs=1"]


def _rows(*overrides: str, method: str = "bilayer", rounds: int = 6) -> tuple[Swarm, list]:
    cfg = load_config("config/quickstart.yaml", [*QUICK, *overrides])
    sw = Swarm(cfg, method, 0, load_data(cfg))
    return sw, [sw.step()[0] for _ in range(rounds)]


def test_crashes_are_seeded_and_rejoin_after_their_rounds() -> None:
    cfg = FaultsConfig(crash_prob=0.3, crash_rounds=2)
    first = FaultPlan(cfg, 50, np.random.default_rng(1))
    a = [first.round(r).down for r in range(1, 9)]
    plan = FaultPlan(cfg, 50, np.random.default_rng(1))
    b = [plan.round(r) for r in range(1, 9)]
    assert all(np.array_equal(x, y.down) for x, y in zip(a, b, strict=True))
    crashed_r1 = set(np.flatnonzero(b[0].down).tolist())
    assert crashed_r1 and crashed_r1 <= set(np.flatnonzero(b[1].down).tolist())
    assert crashed_r1 <= set(b[2].rejoined)  # down in rounds 1-2, back in round 3


def test_offline_fraction_takes_that_share_each_round() -> None:
    plan = FaultPlan(FaultsConfig(offline_fraction=0.25), 40, np.random.default_rng(0))
    assert [int(plan.round(r).down.sum()) for r in range(1, 5)] == [10, 10, 10, 10]


@pytest.mark.parametrize("rejoin", ["keep", "reset"])
def test_a_crashed_robot_rejoins_with_its_model_kept_or_reset(rejoin: str) -> None:
    sw, rows = _rows("faults.crash_prob=0.3", "faults.crash_rounds=1", f"faults.rejoin={rejoin}",
                     rounds=2)  # fmt: skip
    assert rows[0]["robots_down"] + rows[1]["robots_down"] > 0
    back = np.flatnonzero(sw.faults._back_at == 3)  # crashed in round 2, rejoin in round 3
    assert back.size, "no robot crashed in round 2 with this seed"
    before = {  # those that had trained before they crashed
        int(i): sw.agents[i].model.copy()
        for i in back
        if not np.array_equal(sw.agents[i].model, sw.plan.initial_params(int(i)))
    }
    assert before
    sw._apply_faults(3)
    for i, model in before.items():
        init = sw.plan.initial_params(i)
        if rejoin == "reset":
            assert np.array_equal(sw.agents[i].model, init)
            assert sw.agents[i].state.cluster == -1 and not sw.agents[i].membership.table
        else:
            assert np.array_equal(sw.agents[i].model, model)


def test_a_partition_cuts_the_halves_then_heals() -> None:
    sw, _ = _rows("faults.partition_rounds=[2, 3]", "channel.comm_range=200", rounds=1)
    left = sw.positions[:, 0] < 50
    assert sw.network.in_range()[np.ix_(left, ~left)].all()  # round 1: everyone hears everyone
    sw.step()
    reach = sw.network.in_range()[: sw.n, : sw.n]
    assert not reach[np.ix_(sw.positions[:, 0] < 50, sw.positions[:, 0] >= 50)].any()
    sw.step()
    sw.step()  # round 4: healed
    left = sw.positions[:, 0] < 50
    assert sw.network.in_range()[np.ix_(left, ~left)].all()


def test_gilbert_elliott_loses_its_stationary_share_in_bursts() -> None:
    ge = GilbertElliott(30, 0.1, 0.3, 1.0)
    rng = np.random.default_rng(0)
    bad = []
    for _ in range(400):
        ge.step(rng)
        bad.append(ge.bad.mean())
    assert abs(np.mean(bad[50:]) - ge.stationary_loss) < 0.02
    assert ge.stationary_loss == pytest.approx(0.25)


def test_burst_loss_drops_messages_and_is_seeded() -> None:
    _, a = _rows("faults.burst_enter=0.2", rounds=2)
    _, b = _rows("faults.burst_enter=0.2", rounds=2)
    assert a[-1]["msgs_dropped"] > 0 and [r["msgs_dropped"] for r in a] == [
        r["msgs_dropped"] for r in b
    ]


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("head_hijack", "not_my_head"),
        ("handover", "not_my_head"),
        ("dominate", "too_many_samples"),
        ("overflow", "norm_bound"),
        ("propose_flood", "duplicate_proposal"),
    ],
)
def test_each_rogue_is_refused_and_counted_in_the_metrics(attack: str, reason: str) -> None:
    _, rows = _rows("faults.rogues=1", f"faults.rogue_attack={attack}",
                    "channel.comm_range=200", rounds=2)  # fmt: skip
    assert rows[-1]["rogue_frames"] > 0
    assert reason in rows[-1]["rejected_by"], rows[-1]["rejected_by"]
    assert all(np.isfinite(r["acc_mean"]) for r in rows)
