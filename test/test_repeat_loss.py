"""Issue 20, faults: ``gossip.repeat_loss``. A robot that lost more than that share of its
neighbours' beacons this round (missed, then heard again) sends every frame but beacons twice;
the receiver's inbox drops the copy (counted, not refused). Lossless, nothing is repeated; under
loss and crashes the swarm merges more and learns better than with the repeats off."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.channel import make_channel
from gossip_learning.config import ClusteringConfig, load_config
from gossip_learning.errors import ConfigError
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.messages import Beacon, DType, Kind, Layer, Message, Role
from gossip_learning.protocol.inbox import Inbox
from gossip_learning.protocol.membership import Membership
from gossip_learning.protocol.outbox import Outbox
from gossip_learning.transports.base import BEACON_TOPIC, cluster_topic
from gossip_learning.transports.inprocess import InProcessNetwork

SIZE = 3


def _membership(memory: int = 5) -> Membership:
    cfg = ClusteringConfig(beacon_memory=memory)
    return Membership(0, "bilayer", cfg, 10.0, "heads", np.random.default_rng(0))


def _hear(m: Membership, step: int, ids: range | list[int]) -> None:
    for i in ids:
        m.hear(step, i, 3, Beacon(0.0, 0.0, Role.MEMBER, 1, 0, id=i, cluster=3))


# ------------------------------------------------------------------ what the robot counts
def test_membership_counts_the_beacons_heard_and_those_missed_then_heard_again() -> None:
    m = _membership()
    _hear(m, 0, range(1, 11))
    m.assign(1, 0.0, 0.0, np.zeros(2))
    assert (m.beacons["heard"], m.beacons["missed"]) == (10, 0)
    _hear(m, 1, range(1, 8))  # 8, 9 and 10 missed: kept in the table by beacon memory
    m.assign(2, 0.0, 0.0, np.zeros(2))
    assert (m.beacons["heard"], m.beacons["missed"]) == (17, 0)  # lost, or gone?
    _hear(m, 2, range(1, 10))  # 10 missed again
    m.assign(3, 0.0, 0.0, np.zeros(2))
    assert (m.beacons["heard"], m.beacons["missed"]) == (26, 2)  # 8 and 9 were lost once
    _hear(m, 3, range(1, 11))  # the final beacons: 10 is back after two
    m.settle(4)
    assert (m.beacons["heard"], m.beacons["missed"]) == (36, 4)
    m.begin_round()
    assert not m.beacons


def test_a_neighbour_that_left_is_not_counted_as_lost() -> None:
    m = _membership(memory=2)
    _hear(m, 0, range(1, 5))
    m.assign(1, 0.0, 0.0, np.zeros(2))
    for step in range(1, 5):  # 4 is out of range from now on: forgotten after 2 passes
        _hear(m, step, range(1, 4))
        m.assign(step + 1, 0.0, 0.0, np.zeros(2))
    _hear(m, 5, range(1, 5))  # back, after it was forgotten
    m.assign(6, 0.0, 0.0, np.zeros(2))
    assert (m.beacons["heard"], m.beacons["missed"]) == (20, 0)


def test_without_beacon_memory_nothing_is_counted_as_missed() -> None:
    m = _membership(memory=0)
    _hear(m, 0, range(1, 11))
    m.assign(1, 0.0, 0.0, np.zeros(2))
    _hear(m, 1, range(1, 4))
    m.assign(2, 0.0, 0.0, np.zeros(2))
    _hear(m, 2, range(1, 11))
    m.assign(3, 0.0, 0.0, np.zeros(2))
    assert (m.beacons["heard"], m.beacons["missed"]) == (23, 0)


# ----------------------------------------------------------------------- what it sends
class _Sent:
    """Robot 0's outbox on a real medium, and what robot 1 hears of it."""

    def __init__(self, repeat_loss: float, heard: int, missed: int) -> None:
        net = InProcessNetwork(2, make_channel("unit_disk", 10.0), np.random.default_rng(0))
        net.set_positions(np.zeros((2, 2)))
        self.net = net
        self.m = _membership()
        self.m.beacons.update(heard=heard, missed=missed)
        self.outbox = Outbox(0, net.endpoint(0), self.m, 5, 1, DType.F32, repeat_loss)
        self.outbox.round, self.outbox.slot = 1, 2
        self.got: list[Message] = []
        rx = net.endpoint(1)
        for topic in (BEACON_TOPIC, cluster_topic(self.m.cluster), "robot_1"):
            rx.subscribe(topic, self.got.append)

    def kinds(self) -> list[Kind]:
        self.outbox.send(BEACON_TOPIC, Kind.BEACON, layer=Layer.CLUSTER,
                         beacon=Beacon(0.0, 0.0, Role.NONE, -1, 0))  # fmt: skip
        self.outbox.send("robot_1", Kind.PROPOSE, 1, Layer.INTRA)
        self.outbox.send(cluster_topic(self.m.cluster), Kind.MODEL, layer=Layer.HEAD,
                         model=np.ones(SIZE, np.float32))  # fmt: skip
        self.net.flush()
        return [g.kind for g in self.got]


@pytest.mark.parametrize(
    ("repeat_loss", "heard", "missed", "copies"),
    [
        (0.15, 7, 3, 2),  # 30 % missed
        (0.15, 9, 1, 1),  # 10 %
        (0.15, 85, 15, 1),  # exactly the share: not above it
        (0.15, 84, 16, 2),
        (0.15, 10, 0, 1),  # lossless
        (0.15, 0, 0, 1),  # nothing heard yet
        (1.0, 0, 10, 1),  # 1: never
        (0.0, 99, 1, 2),  # 0: any missed beacon
    ],
)
def test_a_robot_repeats_every_frame_but_beacons_above_its_missed_share(
    repeat_loss: float, heard: int, missed: int, copies: int
) -> None:
    s = _Sent(repeat_loss, heard, missed)
    assert s.outbox.copies() == copies
    assert s.kinds() == [Kind.BEACON] + [Kind.PROPOSE] * copies + [Kind.MODEL] * copies


def test_repeat_loss_must_be_a_share() -> None:
    with pytest.raises(ConfigError, match=r"gossip\.repeat_loss"):
        load_config("config/quickstart.yaml", ["gossip.repeat_loss=1.5"])
    with pytest.raises(ConfigError, match=r"gossip\.repeat_loss"):
        load_config("config/quickstart.yaml", ["gossip.repeat_loss=-0.1"])


# ------------------------------------------------------------------ what the receiver does
def _msg(value: float = 1.0, **kw: object) -> Message:
    fields: dict[str, object] = {"round": 1, "step": 4, "layer": Layer.INTRA, "cluster": 3, **kw}
    return Message(Kind.ACCEPT, sender=2, receiver=0, samples=5,
                   model=np.full(SIZE, value, np.float32), **fields)  # type: ignore[arg-type]  # fmt: skip


def _table() -> dict[int, Beacon]:
    return {2: Beacon(0.0, 0.0, Role.MEMBER, 1, 9, id=2, cluster=3)}


def test_the_inbox_drops_a_copy_without_refusing_it() -> None:
    box = Inbox(0, 0, SIZE)
    first = _msg()
    assert box.screen(first, 1, 4, 1, _table())
    assert not box.screen(_msg(), 1, 4, 1, _table())  # the same frame again (decoded anew)
    assert box.copies == 1 and not box.rejected
    later = Inbox(0, 0, SIZE)
    assert later.screen(_msg(), 1, 4, 1, _table())
    assert not later.screen(_msg(), 1, 5, 1, _table())  # still a copy one slot later
    assert later.copies == 1 and not later.rejected


@pytest.mark.parametrize(
    "other",
    [
        {"value": 2.0},  # another model in the same name: not a copy (the checks decide)
        {"step": 3},
        {"layer": Layer.INTER},
        {"cluster": 4},
        {"samples": 4},
        {"receiver": 9},
        {"dtype": DType.F16},
    ],
)
def test_a_frame_that_differs_in_anything_is_no_copy(other: dict) -> None:
    box = Inbox(0, 0, SIZE, None)
    assert box.screen(_msg(), 1, 4, 1, _table())
    other = dict(other)  # the parameter itself stays whole for a rerun in the same process
    value = other.pop("value", 1.0)
    msg = _msg(value)
    for k, v in other.items():
        object.__setattr__(msg, k, v)
    assert not box.is_copy(msg, 1, 4)
    assert box.copies == 0


def test_a_third_frame_is_no_copy_and_meets_the_checks() -> None:
    box = Inbox(0, 0, SIZE)
    proposal = Message(Kind.PROPOSE, sender=2, receiver=0, round=1, step=4, layer=Layer.INTRA,
                       cluster=3)  # fmt: skip
    assert [box.screen(proposal, 1, 4, 1, _table()) for _ in range(4)] == [True] + [False] * 3
    assert box.copies == 1 and box.rejected == {"duplicate_proposal": 2}
    assert not box.is_copy(proposal, 1, 5)  # still counted in the next slot


def test_copies_are_remembered_for_two_slots_only() -> None:
    box = Inbox(0, 0, SIZE)
    assert not box.is_copy(_msg(), 1, 4)
    assert box.is_copy(_msg(), 1, 5)
    assert not box.is_copy(_msg(3.0), 1, 6)  # something else heard in the next slot
    assert not box.is_copy(_msg(), 1, 7)  # two slots on: forgotten
    assert not box.is_copy(_msg(3.0), 2, 7)  # a new round is a new slot: (1, 6) is two back


def test_a_frame_kept_for_the_next_round_is_checked_again_when_it_starts() -> None:
    box = Inbox(0, 0, SIZE)
    early = Message(Kind.PROPOSE, sender=2, receiver=0, round=2, step=0, layer=Layer.INTRA,
                    cluster=3)  # fmt: skip
    assert not box.screen(early, 1, 30, 1, _table())  # kept: a clock running ahead
    assert not box.screen(early, 1, 30, 1, _table())  # its copy, kept too
    released = box.release_early()
    assert len(released) == 2
    assert box.screen(released[0], 2, -1, 1, _table())  # released: used
    assert not box.screen(released[1], 2, -1, 1, _table())  # the copy: dropped
    assert box.copies == 1 and not box.rejected


# ------------------------------------------------------------------------- in the swarm
QUICK = ["swarm.num_robots=12", "experiment.rounds=6", "learning.epochs=1"]


def _run(*overrides: str) -> tuple[Swarm, list[float]]:
    cfg = load_config("config/quickstart.yaml", [*QUICK, *overrides, "experiment.seeds=[0]"])
    sw = Swarm(cfg, "bilayer", 0, load_data(cfg))
    return sw, [sw.step()[0]["acc_mean"] for _ in range(cfg.experiment.rounds)]


def test_lossless_nothing_is_repeated_even_as_robots_move_and_crash() -> None:
    """Neighbours that move out of range or go down are missed, never heard again in the same
    round: the clean run sends what it sent with the repeats off."""
    sw, acc = _run("faults.crash_prob=0.2", "faults.crash_rounds=1")
    off, acc_off = _run("faults.crash_prob=0.2", "faults.crash_rounds=1", "gossip.repeat_loss=1")
    assert acc == acc_off
    for a, b in zip(sw.agents, off.agents, strict=True):
        np.testing.assert_array_equal(a.model, b.model)
    assert sum(a.inbox.copies for a in sw.agents) == 0
    assert sw.network.stats.as_dict() == off.network.stats.as_dict()


FAULTS = ["channel.loss_prob=0.3", "faults.crash_prob=0.2", "faults.crash_rounds=1"]


def test_under_loss_and_crashes_the_repeats_merge_more_and_learn_as_well() -> None:
    """The repeats merge a fifth more. On this small run (12 robots, 6 rounds, 1 epoch) the
    accuracy with and without them is a draw per seed (seeds 0-5, measured: ahead on some,
    behind on others, on main before and after issue 20's unclustered-gossip rule), so the
    test asks for no loss beyond 2 points; the accuracy gain is measured at quickstart scale
    (benchmarks/robustness.py, b+c)."""
    sw, acc = _run(*FAULTS)
    off, acc_off = _run(*FAULTS, "gossip.repeat_loss=1")
    copies = sum(a.inbox.copies for a in sw.agents)
    assert copies > 0 and sum(a.inbox.copies for a in off.agents) == 0
    merges = sum(a.window.merged_total for a in sw.agents)
    merges_off = sum(a.window.merged_total for a in off.agents)
    assert merges >= 1.2 * merges_off
    assert np.mean(acc[-3:]) > np.mean(acc_off[-3:]) - 0.02
