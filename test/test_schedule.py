"""Round phases per method, and the clock that maps time onto them."""

from __future__ import annotations

import pytest

from gossip_learning.config import GossipConfig, TimingConfig
from gossip_learning.schedule import PhaseKind, RoundClock, build_schedule
from gossip_learning.wire import Layer


def kinds(method: str, **g: object) -> list[str]:
    return [p.kind.value for p in build_schedule(method, 2, GossipConfig(**g))]  # type: ignore[arg-type]


def test_bilayer_pairwise_order() -> None:
    k = kinds("bilayer", mode="pairwise", intra_steps=1, inter_steps=1)
    assert k == [
        "beacon", "assign", "beacon", "assign", "final_beacon", "train",
        "propose", "accept", "reply", "finish",  # intra
        "propose", "accept", "reply", "finish",  # inter
        "head_send", "head_finish", "end",
    ]  # fmt: skip


def test_other_methods() -> None:
    assert kinds("flat", mode="broadcast", intra_steps=2) == [
        "final_beacon",
        "train",
        "send",
        "finish",
        "send",
        "finish",
        "end",
    ]
    assert kinds("cfl") == ["train", "end"] == kinds("local")
    assert "head_send" not in kinds("bilayer", handoff="none")


def test_layers_and_slots() -> None:
    sched = build_schedule(
        "bilayer", 1, GossipConfig(mode="broadcast", intra_steps=1, inter_steps=2)
    )
    assert [p.slot for p in sched] == list(range(len(sched)))
    sends = [p for p in sched if p.kind == PhaseKind.SEND]
    assert [(p.layer, p.index) for p in sends] == [
        (Layer.INTRA, 0),
        (Layer.INTER, 0),
        (Layer.INTER, 1),
    ]


def test_round_clock() -> None:
    timing = TimingConfig(
        cluster_phase_s=1.0, train_phase_s=4.0, gossip_phase_s=0.5, end_phase_s=2.0
    )
    sched = build_schedule("flat", 1, GossipConfig(mode="broadcast", intra_steps=1))
    clock = RoundClock(sched, timing, start=100.0)
    # final_beacon 1 + train 4 + send 0.5 + finish 0.5 + end 2 = 8 s
    assert clock.period == pytest.approx(8.0)
    assert clock.locate(99.0) == (0, 0)
    assert clock.locate(100.0) == (1, 0)
    assert clock.locate(101.0) == (1, 1)
    assert clock.locate(105.2) == (1, 2)
    assert clock.locate(107.9) == (1, 4)
    assert clock.locate(108.0) == (2, 0)
    assert clock.phase_start(3, 2) == pytest.approx(100.0 + 16 + 5)
