"""Round phases per method, and the clock that maps time onto them."""

from __future__ import annotations

import pytest

from gossip_learning.config import GossipConfig, TimingConfig
from gossip_learning.schedule import PhaseKind, RoundClock, build_schedule
from gossip_learning.wire import Layer


def kinds(method: str, **g: object) -> list[str]:
    return [p.kind.value for p in build_schedule(method, 2, GossipConfig(**g))]  # type: ignore[arg-type]


@pytest.mark.parametrize("matching", ["single", "oracle"])
def test_bilayer_pairwise_order(matching: str) -> None:
    k = kinds("bilayer", mode="pairwise", intra_steps=1, inter_steps=1, matching=matching)
    assert k == [
        "beacon", "assign", "beacon", "assign", "final_beacon", "train",
        "propose", "accept", "reply", "finish",  # intra
        "propose", "accept", "reply", "finish",  # inter
        "head_send", "head_finish", "end",
    ]  # fmt: skip


def test_retry_repeats_the_shot_inside_each_step() -> None:
    g = GossipConfig(mode="pairwise", intra_steps=2, inter_steps=1, matching="retry",
                     match_attempts=3)  # fmt: skip
    sched = build_schedule("flat", 1, g)
    shot = ["propose", "accept", "reply"]
    assert [p.kind.value for p in sched] == [
        "final_beacon", "train", *shot * 3, "finish", *shot * 3, "finish", "end"
    ]  # fmt: skip
    gossip = [p for p in sched if p.kind in (PhaseKind.PROPOSE, PhaseKind.ACCEPT, PhaseKind.REPLY)]
    assert [(p.index, p.attempt) for p in gossip if p.kind == PhaseKind.PROPOSE] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)
    ]  # fmt: skip
    # one attempt is the single rule's schedule; broadcast ignores the matching
    one = GossipConfig(mode="pairwise", matching="retry", match_attempts=1)
    assert kinds("bilayer", **vars(one)) == kinds("bilayer", mode="pairwise", matching="single")
    assert kinds("flat", mode="broadcast", matching="retry", match_attempts=5) == kinds(
        "flat", mode="broadcast", matching="single"
    )


def test_more_attempts_make_a_longer_round_on_the_clock() -> None:
    timing = TimingConfig(gossip_phase_s=0.5)
    period = {
        k: RoundClock(
            build_schedule("bilayer", 2, GossipConfig(matching="retry", match_attempts=k)), timing
        ).period
        for k in (1, 4)
    }
    # 3 gossip steps (2 intra + 1 inter), 3 more phases of 0.5 s per step and extra attempt
    assert period[4] - period[1] == pytest.approx(3 * 3 * 3 * 0.5)


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
