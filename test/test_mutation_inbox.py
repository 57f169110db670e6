"""The inbox's refusals by name: each unusable model is counted under its own reason, the sample
cap is inclusive, a batch of beacons of this very slot is current (cases mutation testing found
unguarded)."""

from __future__ import annotations

import numpy as np

from gossip_learning.config import DefenceConfig
from gossip_learning.messages import Beacon, Kind, Layer, Message, Role
from gossip_learning.protocol.inbox import Inbox

SIZE = 4


def model(samples: int = 10, values: np.ndarray | None = None, version: int = 1) -> Message:
    vec = np.zeros(SIZE, np.float32) if values is None else values
    return Message(Kind.MODEL, sender=2, round=3, step=5, layer=Layer.INTRA, cluster=0,
                   samples=samples, model_version=version, model=vec)  # fmt: skip


def test_each_unusable_model_is_counted_under_its_reason() -> None:
    inbox = Inbox(1, 1, SIZE, DefenceConfig(max_samples=100))
    bad = [
        model(version=2),
        model(values=np.full(SIZE, np.nan, np.float32)),
        model(values=np.zeros(SIZE + 1, np.float32)),
        model(samples=0),
        model(samples=101),
    ]
    assert not any(inbox.admit(m, 3, 5) for m in bad)
    assert inbox.rejected == {"model_version": 1, "bad_model": 2, "bad_samples": 1,
                              "too_many_samples": 1}  # fmt: skip


def test_the_sample_cap_itself_is_allowed() -> None:
    inbox = Inbox(1, 1, SIZE, DefenceConfig(max_samples=100))
    assert inbox.admit(model(samples=100), 3, 5)
    assert not inbox.rejected


def test_a_batch_of_beacons_sent_in_this_slot_is_current() -> None:
    inbox = Inbox(1, 1, SIZE)
    beacons = [
        Message(Kind.BEACON, sender=s, round=3, step=5, cluster=s,
                beacon=Beacon(0.0, 0.0, Role.HEAD, s, 0, id=s, cluster=s))
        for s in (2, 3)
    ]  # fmt: skip
    assert inbox.current_beacons(beacons, 3, 5) == ([2, 3], [b.beacon for b in beacons])
    assert inbox.current_beacons(beacons, 3, 6) is None  # sent before this slot: late


def _beacon(sender: int = 2, **kw: object) -> Message:
    b = Beacon(0.0, 0.0, Role.HEAD, sender, 0, id=sender, cluster=sender)
    fields: dict[str, object] = {"round": 3, "step": 5, "cluster": sender, "beacon": b, **kw}
    return Message(Kind.BEACON, sender=sender, **fields)  # type: ignore[arg-type]


def test_a_current_beacon_is_a_broadcast_beacon_of_this_round_from_another_robot() -> None:
    inbox = Inbox(1, 1, SIZE)
    assert inbox.is_current_beacon(_beacon(), 3, 5)
    assert not inbox.is_current_beacon(_beacon(receiver=1), 3, 5)  # addressed to one robot
    assert not inbox.is_current_beacon(_beacon(beacon=None), 3, 5)
    assert not inbox.is_current_beacon(_beacon(1), 3, 5)  # its own
    assert not inbox.is_current_beacon(_beacon(round=2), 3, 5)
    assert not inbox.is_current_beacon(_beacon(step=4), 3, 5)
    proposal = Message(Kind.PROPOSE, sender=2, round=3, step=5, cluster=2)
    assert not inbox.is_current_beacon(proposal, 3, 5)


def test_a_robots_own_message_is_counted_as_own() -> None:
    inbox = Inbox(1, 1, SIZE)
    assert not inbox.admit(_beacon(1), 3, 5)
    assert inbox.rejected == {"own": 1}


def test_a_handover_from_the_robot_that_beaconed_as_head_passes() -> None:
    inbox = Inbox(1, 1, SIZE)
    head = Beacon(0.0, 0.0, Role.HEAD, 5, 0, id=5, cluster=9)
    msg = Message(Kind.HANDOVER, sender=5, receiver=1, round=3, step=5, cluster=9)
    assert inbox.vet(msg, -1, {5: head}) is None
    assert inbox.vet(msg, -1, {}) == "not_my_head"


def test_a_sender_that_declared_no_sample_count_is_not_held_to_one() -> None:
    inbox = Inbox(1, 1, SIZE)
    undeclared = Beacon(0.0, 0.0, Role.MEMBER, 3, 0, id=2, cluster=0, samples=0)
    assert inbox.vet(model(samples=50), -1, {2: undeclared}) is None
    declared = Beacon(0.0, 0.0, Role.MEMBER, 3, 0, id=2, cluster=0, samples=20)
    assert inbox.vet(model(samples=50), -1, {2: declared}) == "samples_over_declared"


def test_a_head_model_from_another_head_is_refused_while_this_robot_names_its_head() -> None:
    inbox = Inbox(1, 1, SIZE)
    other = Beacon(0.0, 0.0, Role.HEAD, 5, 0, id=5, cluster=9)
    head_model = Message(Kind.MODEL, sender=5, receiver=1, round=3, step=5, layer=Layer.HEAD,
                         cluster=9, samples=10, model=np.zeros(SIZE, np.float32))  # fmt: skip
    assert inbox.vet(head_model, 3, {5: other}) == "not_my_head"  # its head is robot 3
    assert inbox.vet(head_model, -1, {5: other}) is None  # names no head: the beacon decides
    handover = Message(Kind.HANDOVER, sender=5, receiver=1, round=3, step=5, cluster=9)
    assert inbox.vet(handover, 3, {5: other}) is None  # a hand-over crosses its own decision


# the copy ring, the late and early rules and the batch check (mutation testing of the copy ring)


def _frame(step: int = 5, samples: int = 10, sender: int = 2) -> Message:
    return Message(Kind.MODEL, sender=sender, round=3, step=step, layer=Layer.INTRA, cluster=0,
                   samples=samples, model_version=1, model=np.zeros(SIZE, np.float32))  # fmt: skip


def test_the_finiteness_scratch_is_one_byte_per_parameter() -> None:
    assert Inbox(1, 1, SIZE).nbytes == SIZE


def test_one_declared_sample_is_a_usable_model() -> None:
    inbox = Inbox(1, 1, SIZE)
    assert inbox.admit(model(samples=1), 3, 5)
    assert not inbox.rejected


def test_a_message_for_another_robot_is_counted_as_not_for_me() -> None:
    inbox = Inbox(1, 1, SIZE)
    assert not inbox.admit(_beacon(receiver=7), 3, 5)
    assert inbox.rejected == {"not_for_me": 1}


def test_a_late_proposal_is_counted_as_late_but_a_late_model_is_kept() -> None:
    inbox = Inbox(1, 1, SIZE)
    assert not inbox.admit(Message(Kind.PROPOSE, sender=2, round=3, step=4, cluster=2), 3, 5)
    assert inbox.rejected == {"late": 1}
    assert inbox.admit(_frame(step=4), 3, 5)  # a model sent in an earlier slot is still used
    assert inbox.rejected == {"late": 1}


def test_at_most_max_early_messages_are_kept_for_the_next_round() -> None:
    from gossip_learning.protocol.inbox import MAX_EARLY

    inbox = Inbox(1, 1, SIZE)
    early = [_beacon(round=4, step=s) for s in range(MAX_EARLY + 1)]
    assert not any(inbox.admit(m, 3, 0) for m in early)
    assert inbox.rejected == {"early_round": 1}
    assert len(inbox.release_early()) == MAX_EARLY


def test_a_batch_with_the_robots_own_beacon_or_of_another_round_is_checked_one_by_one() -> None:
    inbox = Inbox(1, 1, SIZE)
    assert inbox.current_beacons([_beacon(2), _beacon(1)], 3, 5) is None  # its own beacon
    assert inbox.current_beacons([_beacon(2, round=2)], 3, 5) is None  # another round
    assert inbox.current_beacons([_beacon(2), _beacon(3, beacon=None)], 3, 5) is None


def test_a_copy_is_found_behind_other_frames_and_the_ring_holds_copy_ring_frames() -> None:
    from gossip_learning.protocol.inbox import COPY_RING

    inbox = Inbox(1, 1, SIZE)
    first, second = _frame(samples=1), _frame(samples=2)
    assert not inbox.is_copy(first, 3, 5) and not inbox.is_copy(second, 3, 5)
    assert inbox.is_copy(first, 3, 5)  # found although another frame came after it
    ring = Inbox(1, 1, SIZE)
    frames = [_frame(samples=n) for n in range(1, COPY_RING + 1)]
    assert not any(ring.is_copy(m, 3, 5) for m in frames)  # COPY_RING distinct frames
    assert ring.is_copy(frames[0], 3, 5)  # the oldest is still remembered
    assert not ring.is_copy(_frame(samples=COPY_RING + 1), 3, 5)  # a new frame evicts one
    assert ring.copies == 1


def test_a_new_frame_is_no_copy_once_the_ring_has_wrapped() -> None:
    from gossip_learning.protocol.inbox import COPY_RING

    inbox = Inbox(1, 1, SIZE)
    frames = [_frame(samples=n) for n in range(1, COPY_RING + 2)]
    assert not any(inbox.is_copy(m, 3, 5) for m in frames)
    assert inbox.copies == 0


def test_screen_remembers_a_frame_for_its_slot_and_the_next_only() -> None:
    inbox = Inbox(1, 1, SIZE)
    table = {2: Beacon(0.0, 0.0, Role.MEMBER, 3, 0, id=2, cluster=0)}
    assert inbox.screen(_frame(step=5), 3, 5, 3, table)
    assert inbox.screen(_frame(step=6), 3, 6, 3, table)
    assert inbox.screen(_frame(step=5), 3, 7, 3, table)  # two slots later: no copy, used
    assert inbox.copies == 0
    assert not inbox.screen(_frame(step=6), 3, 7, 3, table)  # the slot after: a copy
    assert inbox.copies == 1
