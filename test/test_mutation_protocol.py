"""The agent's parts one at a time, wired to a real in-process medium: the merge window's span
and logs, the heads' hand-off (adopt and merge), what the outbox stamps on a message and which
topics the subscriptions hear (cases mutation testing found unguarded)."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.aggregation import CumulativeFedAvg
from gossip_learning.channel import make_channel
from gossip_learning.config import ClusteringConfig, DefenceConfig, GossipConfig
from gossip_learning.dkmeans import ClusterState
from gossip_learning.errors import ConfigError
from gossip_learning.matching import OracleMatchmaker
from gossip_learning.messages import Beacon, DType, Kind, Layer, Message, Role
from gossip_learning.protocol.exchange import Broadcast
from gossip_learning.protocol.handoff import HandOff
from gossip_learning.protocol.membership import Membership
from gossip_learning.protocol.outbox import Outbox, Subscriptions
from gossip_learning.protocol.pairwise import Pairwise, make_exchange
from gossip_learning.protocol.window import MergeWindow
from gossip_learning.schedule import Phase, PhaseKind
from gossip_learning.transports.base import BEACON_TOPIC, INTER_TOPIC, cluster_topic, robot_topic
from gossip_learning.transports.inprocess import InProcessNetwork

SIZE = 3
CLUSTER = 7


def model_msg(sender: int, step: int, value: float, samples: int = 10, **kw: object) -> Message:
    fields: dict[str, object] = {"layer": Layer.INTRA, "cluster": CLUSTER, **kw}
    return Message(
        Kind.MODEL, sender=sender, round=1, step=step, samples=samples,
        model=np.full(SIZE, value, np.float32), **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def network(n: int = 3) -> InProcessNetwork:
    net = InProcessNetwork(n, make_channel("unit_disk", 10.0), np.random.default_rng(0))
    net.set_positions(np.zeros((n, 2)))
    return net


# ------------------------------------------------------------------------------ merge window
def test_a_window_without_a_defence_config_uses_the_default() -> None:
    w = MergeWindow(3, SIZE)
    w.open(np.zeros(SIZE, np.float32), 1.0, 0, 1)
    assert w.merge(model_msg(1, 0, 1e6)) == "norm_bound"  # the default bound: rms 1000
    assert w.merge(model_msg(1, 0, 10.0)) is None


def test_a_window_passes_its_clip_ratio_to_the_accumulator() -> None:
    w = MergeWindow(3, SIZE, DefenceConfig(clip_ratio=0.5))
    w.open(np.zeros(SIZE, np.float32), 1.0, 0, 1)
    assert w.merge(model_msg(1, 0, 100.0)) is None
    assert isinstance(w.acc, CumulativeFedAvg) and w.acc.clipped == 1


def test_a_window_uses_the_accumulator_it_is_given() -> None:
    acc = CumulativeFedAvg(SIZE)
    assert MergeWindow(3, SIZE, acc=acc).acc is acc


@pytest.mark.parametrize(("checks", "reason"), [(False, "duplicate"), (True, "repeat_sender")])
def test_a_second_model_from_one_sender_is_refused_by_name(checks: bool, reason: str) -> None:
    w = MergeWindow(3, SIZE, DefenceConfig(checks=checks))
    w.open(np.zeros(SIZE, np.float32), 1.0, 0, 1)
    assert w.merge(model_msg(1, 0, 1.0)) is None
    assert w.merge(model_msg(1, 0, 2.0)) == reason
    assert w.merge(model_msg(3, 0, 2.0)) == reason  # the robot's own id is merged already


def test_the_window_is_open_only_within_its_span() -> None:
    w = MergeWindow(3, SIZE)
    assert not w.is_open_for(0)
    w.open(np.zeros(SIZE, np.float32), 1.0, 2, 5)
    assert [w.is_open_for(s) for s in range(7)] == [False, False, True, True, True, False, False]
    w.close(5, np.zeros(SIZE, np.float32))
    assert not w.is_open_for(3)


def test_closing_logs_the_mixing_row_under_the_robots_id_and_slot() -> None:
    w = MergeWindow(3, SIZE)
    model = np.zeros(SIZE, np.float32)
    w.open(model, 30.0, 0, 4)
    assert w.merge(model_msg(1, 1, 4.0, samples=10)) is None
    assert w.merge(model_msg(2, 1, 4.0, samples=10)) is None
    assert w.merged_total == 2
    w.close_step(4, Layer.INTRA, model)
    assert w.mix_log == [(4, {3: 0.6, 1: 0.2, 2: 0.2})]
    assert w.exchanges == [(Layer.INTRA, False, True)]
    np.testing.assert_allclose(model, 1.6)


def test_an_untrained_start_is_the_own_term_of_the_next_window_only() -> None:
    """``gossip.window_start: before_training``: the model held before training is the own term
    of the next window opened, once; the buffer counts in ``nbytes``; without the option the
    held model is ignored."""
    w = MergeWindow(3, SIZE, untrained_own=True)
    plain = MergeWindow(3, SIZE)
    assert w.nbytes == plain.nbytes + SIZE * 8
    untrained = np.full(SIZE, 2.0, np.float32)
    for win in (w, plain):
        win.hold_untrained(untrained)
    untrained[:] = 100.0  # the window keeps its own copy
    trained = np.full(SIZE, 6.0, np.float32)
    for win, want in ((w, 3.0), (plain, 5.0)):
        model = trained.copy()
        win.open(model, 10.0, 0, 1)
        assert win.merge(model_msg(1, 0, 4.0, samples=10)) is None
        win.close(1, model)
        np.testing.assert_allclose(model, want)  # (2 or 6)·10 + 4·10 over 20
    model = trained.copy()
    w.open(model, 10.0, 1, 2)  # the next window starts from the trained model again
    assert w.merge(model_msg(1, 1, 4.0, samples=10)) is None
    w.close(2, model)
    np.testing.assert_allclose(model, 5.0)


def test_a_step_window_restarts_at_each_open_and_a_round_window_spans_its_steps() -> None:
    """Step window (the default): a second open starts afresh, so a sender merged in the last
    step is merged again. Round window: the second open joins the first, whose span still
    starts at the first step; a sender already merged is a repeat, a second copy in one step
    is refused; ``close_step`` closes it by default (the layer's last step)."""
    step = MergeWindow(3, SIZE)
    for first in (0, 1):
        step.open(np.zeros(SIZE, np.float32), 1.0, first, first + 1)
        assert step.merge(model_msg(1, first, 1.0)) is None
    assert step.repeats == 0 and step.acc.merged == 1
    rnd = MergeWindow(3, SIZE, per_round=True)
    rnd.open(np.zeros(SIZE, np.float32), 1.0, 2, 3)
    assert rnd.merge(model_msg(1, 2, 1.0)) is None
    rnd.open(np.zeros(SIZE, np.float32), 1.0, 3, 5)
    assert rnd.is_open_for(2) and rnd.is_open_for(4) and not rnd.is_open_for(5)
    assert rnd.merge(model_msg(1, 3, 1.0)) is None and rnd.repeats == 1
    assert rnd.merge(model_msg(1, 3, 1.0)) == "repeat_sender"
    model = np.zeros(SIZE, np.float32)
    rnd.close_step(5, Layer.INTRA, model)
    assert not rnd.is_open_for(4)
    np.testing.assert_allclose(model, 10 / 11)


def test_an_untrained_start_never_held_leaves_the_own_term_alone() -> None:
    w = MergeWindow(3, SIZE, untrained_own=True)
    model = np.full(SIZE, 6.0, np.float32)
    w.open(model, 10.0, 0, 1)
    assert w.merge(model_msg(1, 0, 4.0, samples=10)) is None
    w.close(1, model)
    np.testing.assert_allclose(model, 5.0)


def test_closing_with_nothing_merged_or_never_opened_merges_nothing() -> None:
    w = MergeWindow(3, SIZE)
    model = np.ones(SIZE, np.float32)
    assert w.close(1, model) == 0  # never opened
    w.close_step(1, Layer.INTER, model)
    assert w.exchanges == [(Layer.INTER, False, False)]
    w.open(np.zeros(SIZE, np.float32), 1.0, 0, 1)
    w.has_partner = True
    w.open(np.zeros(SIZE, np.float32), 1.0, 0, 1)
    assert w.has_partner is False  # a new step starts without a partner
    assert w.close(1, model) == 0
    np.testing.assert_array_equal(model, 1.0)
    assert w.mix_log == []


# ----------------------------------------------------------------------------------- hand-off
class Parts:
    """Robot 1, a member (or head) of cluster CLUSTER, with a real outbox on a medium."""

    def __init__(self, mode: str, role: Role = Role.MEMBER, samples: int = 30) -> None:
        self.net = network()
        self.membership = Membership(1, "bilayer", ClusteringConfig(), 10.0, "all",
                                     np.random.default_rng(0))  # fmt: skip
        self.membership.state = ClusterState(role, CLUSTER, 1 if role == Role.HEAD else 0)
        self.window = MergeWindow(1, SIZE)
        self.outbox = Outbox(1, self.net.endpoint(1), self.membership, samples, 7, DType.F32)
        self.model = np.zeros(SIZE, np.float32)
        self.handoff = HandOff(mode, self.membership, self.window, self.outbox,
                               lambda: self.model, self.window.merge)  # fmt: skip


HEAD_SEND = Phase(PhaseKind.HEAD_SEND, Layer.HEAD, 0, 10)


def test_a_member_adopts_its_heads_model() -> None:
    p = Parts("adopt")
    p.handoff.send(HEAD_SEND, 11)
    assert not p.window.is_open_for(10)  # adopting needs no merge window
    assert p.handoff.on_model(model_msg(0, 10, 5.0, layer=Layer.HEAD)) is None
    p.handoff.finish(11, p.model)
    np.testing.assert_array_equal(p.model, 5.0)
    assert p.window.mix_log == [(11, {0: 1.0})]
    assert p.handoff.held is None and p.handoff.nbytes == 0


def test_a_member_merges_its_heads_model_with_its_own() -> None:
    p = Parts("merge", samples=30)
    p.handoff.send(HEAD_SEND, 11)
    assert p.window.is_open_for(10)
    assert p.handoff.on_model(model_msg(0, 10, 4.0, samples=10, layer=Layer.HEAD)) is None
    p.handoff.finish(11, p.model)
    np.testing.assert_allclose(p.model, 1.0)  # (30·0 + 10·4) / 40
    assert p.window.mix_log == [(11, {1: 0.75, 0: 0.25})]


def test_a_head_model_outside_the_merge_window_is_late() -> None:
    p = Parts("merge")
    p.handoff.send(HEAD_SEND, 11)
    assert p.handoff.on_model(model_msg(0, 9, 4.0, layer=Layer.HEAD)) == "late"
    assert p.handoff.on_model(model_msg(0, 11, 4.0, layer=Layer.HEAD)) == "late"


def test_a_head_in_merge_mode_opens_no_window() -> None:
    p = Parts("merge", role=Role.HEAD)
    p.handoff.send(HEAD_SEND, 11)
    assert not p.window.is_open_for(10)


@pytest.mark.parametrize(("role", "cluster"), [(Role.MEMBER, CLUSTER + 1), (Role.HEAD, CLUSTER)])
def test_only_a_member_of_the_senders_cluster_takes_a_head_model(role: Role, cluster: int) -> None:
    p = Parts("adopt", role=role)
    msg = model_msg(0, 10, 5.0, layer=Layer.HEAD, cluster=cluster)
    assert p.handoff.on_model(msg) == "wrong_cluster"
    assert p.handoff.held is None


def test_a_head_with_a_member_sends_its_model_to_the_cluster() -> None:
    p = Parts("adopt", role=Role.HEAD)
    p.membership.table = {2: Beacon(0.0, 0.0, Role.MEMBER, 1, 0, id=2, cluster=CLUSTER)}
    heard: list[Message] = []
    p.net.endpoint(2).subscribe(cluster_topic(CLUSTER), heard.append)
    p.model = np.full(SIZE, 2.5, np.float32)
    p.outbox.round, p.outbox.slot = 4, 10
    p.handoff.send(HEAD_SEND, 11)
    p.net.flush()
    assert len(heard) == 1
    msg = heard[0]
    assert (msg.kind, msg.sender, msg.layer, msg.cluster) == (Kind.MODEL, 1, Layer.HEAD, CLUSTER)
    assert msg.model is not None
    np.testing.assert_array_equal(msg.model, 2.5)


# ------------------------------------------------------------------------------ broadcast step
def test_broadcast_refuses_by_name_a_model_of_another_cluster_or_out_of_step() -> None:
    p = Parts("adopt")
    ex = Broadcast(p.membership, p.window, p.outbox, lambda: p.model, p.window.merge,
                   np.random.default_rng(0), 1.0)  # fmt: skip
    assert ex.on_model(model_msg(2, 3, 1.0, cluster=CLUSTER + 1)) == "wrong_cluster"
    assert ex.on_model(model_msg(2, 3, 1.0)) == "late"  # no step open


# -------------------------------------------------------------------------- outbox and topics
def test_the_outbox_stamps_round_slot_cluster_and_model_settings() -> None:
    p = Parts("adopt", samples=23)
    p.outbox = Outbox(1, p.net.endpoint(1), p.membership, 23, 9, DType.F16)
    assert (p.outbox.round, p.outbox.slot) == (0, -1)  # before the first round
    heard: list[Message] = []
    p.net.endpoint(0).subscribe(robot_topic(0), heard.append)
    p.outbox.round, p.outbox.slot = 3, 12
    p.outbox.send(robot_topic(0), Kind.MODEL, receiver=0, layer=Layer.INTER,
                  model=np.ones(SIZE, np.float32))  # fmt: skip
    p.net.flush()
    (msg,) = heard
    assert (msg.sender, msg.receiver, msg.round, msg.step) == (1, 0, 3, 12)
    assert (msg.layer, msg.cluster, msg.samples, msg.model_version) == (Layer.INTER, CLUSTER, 23, 9)
    assert msg.dtype == DType.F16


def test_subscriptions_hear_beacons_in_batches_and_the_rest_one_by_one() -> None:
    net = network()
    single: list[Message] = []
    batches: list[list[Message]] = []
    subs = Subscriptions(net.endpoint(1), single.append, lambda ms: batches.append(list(ms)))
    subs.sync({BEACON_TOPIC, robot_topic(1), cluster_topic(CLUSTER)})
    beacon = Beacon(0.0, 0.0, Role.HEAD, 0, 0)
    net.endpoint(0).publish(BEACON_TOPIC, Message(Kind.BEACON, sender=0, cluster=0, beacon=beacon))
    net.endpoint(0).publish(robot_topic(1), Message(Kind.STATUS, sender=0, receiver=1, text="a"))
    net.flush()
    assert [[m.kind for m in b] for b in batches] == [[Kind.BEACON]]
    assert [m.text for m in single] == ["a"]
    # a beacon-topic frame addressed to one robot goes to its handler
    net.endpoint(0).publish(
        BEACON_TOPIC, Message(Kind.BEACON, sender=0, receiver=1, cluster=0, beacon=beacon)
    )
    net.flush()
    assert [m.kind for m in single] == [Kind.STATUS, Kind.BEACON]


def test_subscriptions_drop_the_topics_no_longer_wanted() -> None:
    net = network()
    single: list[Message] = []
    subs = Subscriptions(net.endpoint(1), single.append, lambda ms: None)
    subs.sync({robot_topic(1), cluster_topic(CLUSTER)})
    subs.sync({robot_topic(1)})
    assert subs.topics == {robot_topic(1)}
    net.endpoint(0).publish(cluster_topic(CLUSTER), Message(Kind.STATUS, sender=0, text="gone"))
    net.endpoint(0).publish(robot_topic(1), Message(Kind.STATUS, sender=0, receiver=1, text="here"))
    net.flush()
    assert [m.text for m in single] == ["here"]


# --------------------------------------------------------------------------------- membership
def membership(method: str = "bilayer", robot: int = 4) -> Membership:
    return Membership(robot, method, ClusteringConfig(), 10.0, "all", np.random.default_rng(0))


def test_a_heard_beacon_takes_the_sender_and_cluster_of_its_header() -> None:
    m = membership("flat")
    agreeing = Beacon(0.0, 0.0, Role.MEMBER, 1, 0, id=1, cluster=0)
    m.hear(0, 1, 0, agreeing)
    m.hear(0, 2, 0, Beacon(0.0, 0.0, Role.MEMBER, 1, 0, id=9, cluster=0))  # other id
    m.hear(0, 3, 0, Beacon(0.0, 0.0, Role.MEMBER, 1, 0, id=3, cluster=5))  # other cluster
    m.settle(1)
    assert m.table[1] is agreeing  # kept as it is: shared by every robot that heard it
    assert [(b.id, b.cluster) for b in (m.table[2], m.table[3])] == [(2, 0), (3, 0)]


def test_a_beacon_message_is_heard_with_its_header_and_one_without_a_beacon_refused() -> None:
    m = membership("flat")
    assert m.on_beacon(Message(Kind.BEACON, sender=2, step=0, cluster=0)) == "bad_beacon"
    beacon = Beacon(0.0, 0.0, Role.MEMBER, 1, 0, id=2, cluster=6)
    assert m.on_beacon(Message(Kind.BEACON, sender=2, step=0, cluster=0, beacon=beacon)) is None
    m.settle(1)
    assert (m.table[2].id, m.table[2].cluster) == (2, 0)


def test_a_rebooted_robot_forgets_its_cluster_neighbours_and_handover() -> None:
    m = membership("bilayer")
    m.state = ClusterState(Role.MEMBER, CLUSTER, 1)
    m.table = {1: Beacon(0.0, 0.0, Role.HEAD, 1, 0, id=1, cluster=CLUSTER)}
    assert m.on_handover(Message(Kind.HANDOVER, sender=1, receiver=4, cluster=CLUSTER)) is None
    m.settle(3)  # no final beacon heard: the table is stale
    m.reboot()
    assert m.state == ClusterState(Role.NONE, -1, -1, -1, 0)
    assert m.table == {}
    assert m.beacon(0.0, 0.0, ()).role == Role.NONE  # the hand-over went with the reboot
    heard = Beacon(0.0, 0.0, Role.HEAD, 2, 0, id=2, cluster=9)
    m.hear(0, 2, 9, heard)
    m.assign(1, 0.0, 0.0, np.zeros(0))
    current, _earlier = m.senders
    assert 2 in current  # no longer stale: this pass's beacons are current


def test_a_flat_robot_keeps_its_one_cluster_through_a_reboot() -> None:
    m = membership("flat")
    before = m.state
    m.reboot()
    assert m.state == before and m.cluster == 0


# ------------------------------------------------------------------------------------ pairwise
class Robot:
    """One robot's pairwise exchange on a shared medium, its messages heard logged."""

    def __init__(
        self, net: InProcessNetwork, rid: int, peers: dict[int, int], prob: float, **kw: object
    ) -> None:
        self.id = rid
        self.membership = membership("bilayer", rid)
        mine = peers[rid]
        head = min(r for r, c in peers.items() if c == mine)
        self.membership.state = ClusterState(Role.HEAD if head == rid else Role.MEMBER, mine, head)
        self.membership.table = {
            r: Beacon(0.0, 0.0, Role.HEAD if r == min(q for q, d in peers.items() if d == c)
                      else Role.MEMBER, r, 0, id=r, cluster=c)
            for r, c in peers.items() if r != rid
        }  # fmt: skip
        self.window = MergeWindow(rid, SIZE)
        self.outbox = Outbox(rid, net.endpoint(rid), self.membership, 10, 1, DType.F32)
        self.model = np.full(SIZE, float(rid), np.float32)
        self.ex = Pairwise(self.membership, self.window, self.outbox, lambda: self.model,
                           self.window.merge, np.random.default_rng(rid), prob, **kw)  # fmt: skip
        self.heard: list[Message] = []
        self.replies: list[str | None] = []
        handlers = self.ex.handlers()

        def handle(msg: Message) -> None:
            self.heard.append(msg)
            self.replies.append(handlers[msg.kind](msg))

        subs = Subscriptions(net.endpoint(rid), handle, lambda ms: None)
        subs.sync(self.membership.topics())


def run_step(net: InProcessNetwork, robots: list[Robot], layer: Layer, attempts: int) -> None:
    finish = 3 * attempts
    shots = [
        Phase(k, layer, 0, 3 * a + i, a)
        for a in range(attempts)
        for i, k in enumerate((PhaseKind.PROPOSE, PhaseKind.ACCEPT, PhaseKind.REPLY))
    ]
    for ph in shots:  # fmt: skip
        for r in robots:
            r.outbox.slot = ph.slot
            r.ex.phases()[ph.kind](ph, finish)
        net.flush()
    for r in robots:
        r.window.close_step(finish, layer, r.model)


def test_a_pairwise_exchange_carries_the_steps_layer_both_ways() -> None:
    net = network()
    a, b = Robot(net, 0, {0: 0, 1: 0}, 1.0), Robot(net, 1, {0: 0, 1: 0}, 0.0)
    run_step(net, [a, b], Layer.INTRA, 1)
    assert [(m.kind, m.layer) for m in a.heard] == [(Kind.ACCEPT, Layer.INTRA)]
    assert [(m.kind, m.layer) for m in b.heard] == [(Kind.PROPOSE, Layer.INTRA),
                                                    (Kind.REPLY, Layer.INTRA)]  # fmt: skip
    np.testing.assert_allclose(a.model, 0.5)
    np.testing.assert_allclose(b.model, 0.5)


def test_an_accept_from_a_robot_not_asked_is_unexpected() -> None:
    net = network()
    a = Robot(net, 0, {0: 0, 1: 0, 2: 0}, 1.0)
    a.outbox.slot = 0
    a.ex.propose(Phase(PhaseKind.PROPOSE, Layer.INTRA, 0, 0), 3)  # opens the step, asks 1 or 2
    asked = a.ex._proposed_to
    assert asked in (1, 2)
    other = 3 - asked

    def accept(sender: int) -> Message:
        return Message(Kind.ACCEPT, sender=sender, step=1, layer=Layer.INTRA, cluster=0,
                       samples=10, model=np.full(SIZE, 9.0, np.float32))  # fmt: skip

    assert a.ex.on_accept(accept(other)) == "unexpected"
    assert a.ex.on_accept(accept(asked)) is None


def test_retry_announces_a_free_robot_before_every_shot_but_the_last() -> None:
    net = network()
    a = Robot(net, 0, {0: 0, 1: 0}, 0.0, matching="retry", attempts=3)
    listener: list[Message] = []
    net.endpoint(1).subscribe(cluster_topic(0), listener.append)
    run_step(net, [a], Layer.INTRA, 3)
    assert [(m.kind, m.receiver != 1) for m in listener] == [(Kind.PROPOSE, True)] * 2


def test_retry_announces_on_the_inter_topic_on_the_inter_layer() -> None:
    net = network()
    a = Robot(net, 0, {0: 0, 1: 5}, 0.0, matching="retry", attempts=2)
    inter: list[Message] = []
    net.endpoint(1).subscribe(INTER_TOPIC, inter.append)
    run_step(net, [a], Layer.INTER, 2)
    assert [(m.kind, m.layer) for m in inter] == [(Kind.PROPOSE, Layer.INTER)]


def test_the_oracle_pair_exchanges_and_ignores_other_proposals() -> None:
    net = network()
    peers = {0: 0, 1: 0, 2: 0}
    robots: list[Robot] = []
    oracle = OracleMatchmaker(lambda: robots, np.random.default_rng(0))  # type: ignore[arg-type]
    robots += [Robot(net, i, peers, 1.0, matching="oracle", matchmaker=oracle) for i in range(3)]
    run_step(net, robots, Layer.INTRA, 1)
    pair = sorted(r.id for r in robots if r.window.mix_log)
    assert len(pair) == 2  # one pair of three exchanged
    lone = ({0, 1, 2} - set(pair)).pop()
    np.testing.assert_allclose(robots[pair[0]].model, sum(pair) / 2)
    np.testing.assert_allclose(robots[lone].model, float(lone))


def test_oracle_matching_without_a_matchmaker_names_the_config_key() -> None:
    net = network()
    with pytest.raises(ConfigError) as err:
        Robot(net, 0, {0: 0, 1: 0}, 1.0, matching="oracle")
    assert err.value.key == "gossip.matching"
    assert "(ROS nodes) need 'single' or 'retry'" in str(err.value)


def test_a_reply_from_a_robot_not_accepted_is_unexpected() -> None:
    net = network()
    b = Robot(net, 1, {0: 0, 1: 0, 2: 0}, 0.0)
    b.window.open(b.model, 10.0, 0, 3)
    reply = Message(Kind.REPLY, sender=2, step=2, layer=Layer.INTRA, cluster=0, samples=10,
                    model=np.zeros(SIZE, np.float32))  # fmt: skip
    assert b.ex.on_reply(reply) == "unexpected"


def test_a_handover_from_a_robot_that_is_not_the_clusters_head_is_refused() -> None:
    m = membership("bilayer")
    m.state = ClusterState(Role.MEMBER, 8, 2)
    m.table = {1: Beacon(0.0, 0.0, Role.MEMBER, 3, 0, id=1, cluster=CLUSTER)}
    msg = Message(Kind.HANDOVER, sender=1, receiver=4, cluster=CLUSTER)
    assert m.on_handover(msg) == "wrong_cluster"
    m.table = {1: Beacon(0.0, 0.0, Role.HEAD, 1, 0, id=1, cluster=CLUSTER)}
    assert m.on_handover(msg) is None


@pytest.mark.parametrize(("peers", "want"), [("all", [2, 3]), ("heads", [2])])
def test_inter_partners_are_the_other_clusters_robots_or_only_their_heads(
    peers: str, want: list[int]
) -> None:
    m = Membership(4, "bilayer", ClusteringConfig(), 10.0, peers, np.random.default_rng(0))
    m.state = ClusterState(Role.HEAD, 1, 4)
    m.table = {
        2: Beacon(0.0, 0.0, Role.HEAD, 2, 0, id=2, cluster=2),
        3: Beacon(0.0, 0.0, Role.MEMBER, 2, 0, id=3, cluster=2),
        5: Beacon(0.0, 0.0, Role.MEMBER, 4, 0, id=5, cluster=1),
    }
    assert m.partners(Layer.INTER) == want
    assert m.partners(Layer.INTRA) == [5]


def test_a_handed_over_cluster_is_headed_from_the_next_beacon() -> None:
    m = membership("bilayer")  # robot 4, no pass run yet
    m.state = ClusterState(Role.MEMBER, CLUSTER, 1)
    m.table = {1: Beacon(0.0, 0.0, Role.HEAD, 1, 0, id=1, cluster=CLUSTER)}
    assert m.on_handover(Message(Kind.HANDOVER, sender=1, receiver=4, cluster=CLUSTER)) is None
    b = m.beacon(0.0, 0.0, ())
    assert (b.role, b.head, b.cluster) == (Role.HEAD, 4, CLUSTER)
    assert m.state.head_since == -1  # the pass before the first one


def test_a_member_of_the_cluster_takes_a_handover_from_a_head_it_no_longer_hears() -> None:
    m = membership("bilayer")
    m.state = ClusterState(Role.MEMBER, CLUSTER, 1)
    m.table = {}  # the head's beacon of this pass was lost
    assert m.on_handover(Message(Kind.HANDOVER, sender=1, receiver=4, cluster=CLUSTER)) is None
    m.state = ClusterState(Role.MEMBER, 8, 2)  # a member of another cluster: not for it
    assert m.on_handover(Message(Kind.HANDOVER, sender=1, receiver=4, cluster=CLUSTER)) == (
        "wrong_cluster"
    )


def test_make_exchange_hands_the_matchmaker_to_oracle_matching_only() -> None:
    net = network()
    r = Robot(net, 0, {0: 0, 1: 0}, 1.0)
    parts = (r.membership, r.window, r.outbox, lambda: r.model, r.window.merge)
    oracle = OracleMatchmaker(lambda: [], np.random.default_rng(0))  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    ex = make_exchange(GossipConfig(matching="oracle"), parts, rng, oracle)
    assert isinstance(ex, Pairwise) and ex.matchmaker is oracle
    ex = make_exchange(GossipConfig(matching="single"), parts, rng, oracle)
    assert isinstance(ex, Pairwise) and ex.matchmaker is None


def test_a_single_pass_round_lets_a_lone_head_step_down() -> None:
    cfg = ClusteringConfig(passes=1, min_cluster_size=1)
    m = Membership(4, "bilayer", cfg, 10.0, "all", np.random.default_rng(0))
    m.state = ClusterState(Role.HEAD, CLUSTER, 4, 0, 1)
    m.begin_round()
    m.assign(1, 0.0, 0.0, np.zeros(0))  # heard no one: too small, and one pass is no last pass
    assert m.state.role == Role.NONE
