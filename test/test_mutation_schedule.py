"""The round schedule's fields and the clock's defaults: only shots of a pairwise step have an
attempt number, single phases have index 0, a slot that nothing closes maps to -1 (cases mutation
testing found unguarded)."""

from __future__ import annotations

import pytest

from gossip_learning.config import GossipConfig, TimingConfig
from gossip_learning.schedule import PhaseKind, RoundClock, build_schedule, finish_slots

SHOTS = {PhaseKind.PROPOSE, PhaseKind.ACCEPT, PhaseKind.REPLY}
SINGLE = {PhaseKind.FINAL_BEACON, PhaseKind.TRAIN, PhaseKind.HEAD_SEND, PhaseKind.HEAD_FINISH,
          PhaseKind.END}  # fmt: skip


@pytest.mark.parametrize("mode", ["pairwise", "broadcast"])
def test_only_shots_have_an_attempt_and_single_phases_have_index_0(mode: str) -> None:
    g = GossipConfig(mode=mode, intra_steps=2, inter_steps=2, matching="retry", match_attempts=2)
    sched = build_schedule("bilayer", 3, g)
    assert {p.kind for p in sched} >= SINGLE | {PhaseKind.BEACON, PhaseKind.ASSIGN}
    for p in sched:
        if p.kind not in SHOTS:
            assert p.attempt == 0, p
        if p.kind in SINGLE:
            assert p.index == 0, p
    assert [p.index for p in sched if p.kind == PhaseKind.BEACON] == [0, 1, 2]
    assert [p.index for p in sched if p.kind == PhaseKind.FINISH] == [0, 1, 0, 1]


def test_a_slot_that_nothing_closes_maps_to_minus_one() -> None:
    sched = build_schedule("flat", 1, GossipConfig(mode="broadcast", intra_steps=1))
    finish = finish_slots(sched)
    assert min(finish) >= 0
    partial = finish_slots(sched[:2])  # FINAL_BEACON, TRAIN: no FINISH or END after them
    assert partial == [-1, -1]


def test_the_clock_starts_at_zero_by_default_and_keeps_its_schedule() -> None:
    sched = build_schedule("flat", 1, GossipConfig(mode="broadcast", intra_steps=1))
    clock = RoundClock(sched, TimingConfig())
    assert clock.schedule is sched
    assert clock.locate(0.0) == (1, 0)
    assert clock.phase_start(1, 0) == 0.0


def test_an_empty_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^empty schedule$"):
        RoundClock([], TimingConfig())
