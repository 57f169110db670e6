"""The one round driver: phase order, delivery between phases, catching up with a clock, hooks."""

from __future__ import annotations

import numpy as np

from agent_contract import NUM_PARAMS, settings
from gossip_learning.channel import UnitDisk
from gossip_learning.driver import RoundDriver, phase_category
from gossip_learning.protocol import RobotAgent
from gossip_learning.schedule import Phase, PhaseKind, build_schedule
from gossip_learning.transports.inprocess import InProcessNetwork


def _swarm(n: int = 3) -> tuple[InProcessNetwork, list[RobotAgent], list[Phase]]:
    st = settings("flat", "broadcast")
    net = InProcessNetwork(n, UnitDisk(10.0), np.random.default_rng(0))
    net.set_positions(np.array([[float(i), 0.0] for i in range(n)]))
    agents = [
        RobotAgent(i, st, net.endpoint(i), np.full(NUM_PARAMS, float(i), np.float32), 10,
                   np.full(2, 0.5), seed=i)
        for i in range(n)
    ]  # fmt: skip
    for a in agents:
        a.set_position(float(a.id), 0.0)
    return net, agents, build_schedule("flat", 1, st.gossip)


def test_run_round_delivers_between_phases_and_calls_hooks() -> None:
    net, agents, sched = _swarm()
    seen: list[PhaseKind] = []
    delivered: list[int] = []
    driver = RoundDriver(
        agents,
        sched,
        deliver=lambda: delivered.append(net.flush()),
        after={PhaseKind.TRAIN: lambda ph: seen.append(ph.kind)},
    )
    driver.run_round(1)
    assert seen == [PhaseKind.TRAIN] and driver.round_done
    assert len(delivered) == len(sched) and sum(delivered) > 0  # beacons and models flowed
    # everyone heard everyone: the broadcast step averaged the three models
    np.testing.assert_allclose([a.model[0] for a in agents], 1.0, rtol=1e-6)
    assert set(driver.times) <= {"cluster", "train", "gossip"}


def test_advance_to_catches_up_late_and_stops_at_the_last_round() -> None:
    net, agents, sched = _swarm()
    driver = RoundDriver(agents[:1], sched, deliver=net.flush)
    driver.last_round = 2
    ran = driver.advance_to(1, 1)
    assert [ph.slot for ph in ran] == [0, 1] and driver.late_phases == 0
    ran = driver.advance_to(2, 0)  # the clock moved on: round 1 finishes late, round 2 begins
    assert driver.round == 2 and driver.late_phases == len(sched) - 2
    assert [ph.kind for ph in ran].count(PhaseKind.END) == 1
    ran = driver.advance_to(5, 3)  # far past the last round: finish round 2, begin nothing
    assert driver.round == 2 and driver.round_done
    assert ran[-1].kind == PhaseKind.END


def test_phase_categories() -> None:
    assert phase_category(PhaseKind.BEACON) == "cluster"
    assert phase_category(PhaseKind.TRAIN) == "train"
    assert phase_category(PhaseKind.SEND) == "gossip"
