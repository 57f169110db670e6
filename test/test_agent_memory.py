"""A robot's model memory during a gossip step: counted by the agent, checked with tracemalloc,
and the same for 1, 10 and 100 neighbours (broadcast) and over several pairwise steps.

mutmut's trampolines allocate on every call, so these step aside while it runs a mutant
(``MUTANT_UNDER_TEST`` set)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gossip_learning import protocol
from gossip_learning.channel import make_channel
from gossip_learning.config import ClusteringConfig, GossipConfig
from gossip_learning.protocol import AgentSettings, RobotAgent
from gossip_learning.schedule import PhaseKind, build_schedule, finish_slots
from gossip_learning.transports.inprocess import InProcessNetwork
from gossip_learning.wire import Beacon, Kind, Layer, Message, Role, decode, encode

pytestmark = pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ, reason="mutmut's trampolines allocate: nothing to measure"
)

SIZE = 100_000  # big enough that per-sender bookkeeping (a few kB) is not model-sized
MODEL_BYTES = 4 * SIZE


def _gossip_step(neighbours: int) -> tuple[RobotAgent, int]:
    """Robot 0 merges ``neighbours`` broadcast models (decoded wire frames, made beforehand);
    return the agent and the traced peak above what was allocated before the merges."""
    gossip = GossipConfig(mode="broadcast", intra_steps=1, inter_steps=0)
    st = AgentSettings("flat", ClusteringConfig(), gossip, 10.0, 7, SIZE)
    net = InProcessNetwork(1, make_channel("unit_disk", 10.0), np.random.default_rng(0))
    agent = RobotAgent(0, st, net.endpoint(0), np.zeros(SIZE, np.float32), 10, np.ones(2), 0)
    schedule = build_schedule("flat", 1, gossip)
    finish = finish_slots(schedule)
    send = next(ph for ph in schedule if ph.kind == PhaseKind.SEND)
    agent.begin_round(1)
    for ph in schedule[: send.slot + 1]:
        agent.run_phase(ph, finish[ph.slot])
    model = np.ones(SIZE, np.float32)
    agent.membership.table = {  # the senders were heard (models from strangers are refused)
        j: Beacon(0.0, 0.0, Role.MEMBER, -1, 0, id=j, cluster=0) for j in range(1, neighbours + 1)
    }
    msgs = [
        decode(encode(
            Message(
                Kind.MODEL, sender=j, round=1, step=send.slot, layer=Layer.INTRA, cluster=0,
                samples=10, model_version=7, model=model,
            )
        ))
        for j in range(1, neighbours + 1)
    ]  # fmt: skip
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for msg in msgs:
            agent.handle(msg)
        for ph in schedule[send.slot + 1 :]:
            agent.run_phase(ph, finish[ph.slot])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert agent.window.merged_total == neighbours
    np.testing.assert_allclose(agent.params, neighbours / (neighbours + 1), rtol=1e-6)
    return agent, peak - base


@pytest.mark.allocations
@pytest.mark.parametrize("neighbours", [1, 10, 100])
def test_peak_is_counted_and_constant_in_neighbours(neighbours: int) -> None:
    agent, traced = _gossip_step(neighbours)
    # Counted: own model (1) + float64 sum and scratch (2 + 2) + the incoming model (1)
    # + the bool scratch of the finiteness check (1/4).
    assert agent.peak_bytes == 6.25 * MODEL_BYTES
    # Traced while merging: the agent allocates nothing model-sized (no temporaries).
    assert traced < 0.1 * MODEL_BYTES, traced / MODEL_BYTES


@pytest.mark.allocations
def test_traced_peak_is_the_same_for_1_10_and_100_neighbours() -> None:
    peaks = [_gossip_step(n)[1] for n in (1, 10, 100)]
    assert max(peaks) - min(peaks) < 0.1 * MODEL_BYTES, [p / MODEL_BYTES for p in peaks]


def _pairwise_steps(steps: int) -> tuple[RobotAgent, list[int], int]:
    """Robot 0 accepts robot 1's proposal in each of ``steps`` pairwise intra steps and merges
    its REPLY model (decoded wire frames, made beforehand); return the agent, the traced peak of
    each merge (the REPLY and the step's end) above what was allocated just before it, and what
    the protocol's own code still holds of what it allocated during the steps (the frames robot
    0 sends are the transport's and stay queued in the medium, so they are not counted)."""
    gossip = GossipConfig(
        mode="pairwise", matching="single", intra_steps=steps, inter_steps=0, propose_prob=0.0
    )
    st = AgentSettings("flat", ClusteringConfig(), gossip, 10.0, 7, SIZE)
    net = InProcessNetwork(2, make_channel("unit_disk", 10.0), np.random.default_rng(0))
    agent = RobotAgent(0, st, net.endpoint(0), np.zeros(SIZE, np.float32), 10, np.ones(2), 0)
    schedule = build_schedule("flat", 1, gossip)
    finish = finish_slots(schedule)
    agent.begin_round(1)
    agent.membership.table = {1: Beacon(0.0, 0.0, Role.MEMBER, -1, 0, id=1, cluster=0)}
    model = np.ones(SIZE, np.float32)

    def frame(kind: Kind, slot: int) -> Message:
        return decode(encode(Message(
            kind, sender=1, receiver=0, round=1, step=slot, layer=Layer.INTRA, cluster=0,
            samples=10, model_version=7, model=model if kind == Kind.REPLY else None,
        )))  # fmt: skip

    to_hear = {
        ph.slot: frame(Kind.PROPOSE, ph.slot) for ph in schedule if ph.kind == PhaseKind.PROPOSE
    }
    replies = [frame(Kind.REPLY, ph.slot) for ph in schedule if ph.kind == PhaseKind.REPLY]
    peaks: list[int] = []
    tracemalloc.start()
    try:
        for ph in schedule:
            if ph.kind == PhaseKind.FINISH:
                before, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                agent.handle(replies[len(peaks)])  # robot 1's model, in the REPLY slot
                agent.run_phase(ph, finish[ph.slot])
                peaks.append(tracemalloc.get_traced_memory()[1] - before)
                continue
            agent.run_phase(ph, finish[ph.slot])
            if ph.slot in to_hear:
                agent.handle(to_hear[ph.slot])
        mine = tracemalloc.Filter(True, str(Path(protocol.__file__).parent / "*"))
        kept = sum(t.size for t in tracemalloc.take_snapshot().filter_traces([mine]).traces)
    finally:
        tracemalloc.stop()
    assert agent.window.merged_total == steps  # one partner's model per step
    return agent, peaks, kept


def test_pairwise_merges_allocate_nothing_model_sized_and_keep_nothing() -> None:
    agent, peaks, kept = _pairwise_steps(3)
    np.testing.assert_allclose(agent.params, 7 / 8, rtol=1e-6)  # halved towards 1 three times
    assert agent.peak_bytes == 6.25 * MODEL_BYTES
    assert len(peaks) == 3 and max(peaks) < 0.1 * MODEL_BYTES, [p / MODEL_BYTES for p in peaks]
    assert kept < 0.1 * MODEL_BYTES, kept / MODEL_BYTES  # no received model outlives its merge
