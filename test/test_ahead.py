"""A broadcast model that arrives before its receiver opened the step it belongs in (robots on
their own clocks, one ROS process each) is kept and merged once the receiver gets there, as the
in-process engine (which runs every robot's phase before it delivers) would merge it."""

from __future__ import annotations

import numpy as np

import agent_contract as contract
from gossip_learning.driver import RoundDriver
from gossip_learning.protocol.ahead import AheadModels
from gossip_learning.schedule import PhaseKind, build_schedule
from gossip_learning.wire import Kind, Layer, Message
from test_agent_inprocess import InProcessHarness


def _model(step: int, round_no: int = 1, layer: Layer = Layer.INTRA, kind: Kind = Kind.MODEL):
    return Message(kind, sender=1, round=round_no, step=step, layer=layer, cluster=0,
                   model=np.zeros(3, np.float32))  # fmt: skip


def test_a_model_ahead_of_the_receiver_is_merged_when_its_step_opens() -> None:
    h = InProcessHarness()
    pos = np.array([[0.0, 0.0], [5.0, 0.0]])
    st = contract.settings("flat", "broadcast")
    agents = contract.make_agents(h, pos, st, samples=[10, 30])
    schedule = build_schedule("flat", 3, st.gossip)
    send = next(p for p in schedule if p.kind is PhaseKind.SEND)
    driver = RoundDriver(agents, schedule, deliver=h.settle)
    driver.begin(1)
    driver.advance(send.slot - 1)
    agents[0].run_phase(send, driver.finish[send.slot])  # robot 0's clock runs a tick ahead
    h.settle()  # robot 1 hears robot 0's model before its own SEND
    assert agents[1].slot < send.slot
    agents[1].run_phase(send, driver.finish[send.slot])
    h.settle()
    driver.next_slot = send.slot + 1
    driver.advance(driver.last_slot)
    assert np.allclose(agents[0].params, 0.75) and np.allclose(agents[1].params, 0.75)
    assert not any(a.inbox.rejected for a in agents)  # nothing refused as late
    assert len(agents[1].ahead) == 0


def test_only_gossip_models_of_this_round_and_a_later_step_are_kept_up_to_the_cap() -> None:
    ahead = AheadModels(cap=2)
    assert not ahead.hold(_model(5), 1, 5)  # its step is open here: dispatch now
    assert not ahead.hold(_model(6, round_no=2), 1, 5)  # another round: the inbox decides
    assert not ahead.hold(_model(6, layer=Layer.HEAD), 1, 5)  # the hand-off: not a merge window
    assert not ahead.hold(_model(6, kind=Kind.ACCEPT), 1, 5)  # pairwise: partners are matched
    assert ahead.hold(_model(6), 1, 5) and ahead.hold(_model(7, layer=Layer.INTER), 1, 5)
    assert not ahead.hold(_model(8), 1, 5)  # past the cap: through at once
    assert ahead.due(1, 5) == [] and len(ahead) == 2
    assert [m.step for m in ahead.due(1, 6)] == [6] and len(ahead) == 1
    assert [m.step for m in ahead.due(2, -1)] == [7] and len(ahead) == 0  # a new round: stale


def test_release_uses_the_models_due_and_returns_the_reasons_some_were_refused() -> None:
    ahead = AheadModels()
    for step in (6, 7, 8):
        assert ahead.hold(_model(step), 1, 5)
    used: list[int] = []

    def use(msg: Message) -> str | None:
        used.append(msg.step)
        return "late" if msg.step == 7 else None

    assert ahead.release(1, 7, use) == ["late"] and used == [6, 7] and len(ahead) == 1
