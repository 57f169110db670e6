"""A robot's DK-means membership one behaviour at a time: a forged hand-over given back, a
taken-over headship's age and founding count, the pass that is the round's last, what the final
beacons settle, who gossips on the inter-cluster layer (cases mutation testing found unguarded)."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.config import ClusteringConfig
from gossip_learning.dkmeans import ClusterState
from gossip_learning.messages import NO_CLUSTER, Beacon, Kind, Layer, Message, Role
from gossip_learning.protocol.membership import FLAT_CLUSTER, Membership

ME = 4
OLD = 1  # the head that hands (or is said to hand) its cluster over
CLUSTER = 7


def member(method: str = "bilayer", peers: str = "all", **cfg: object) -> Membership:
    clustering = ClusteringConfig(**cfg)
    return Membership(ME, method, clustering, 10.0, peers, np.random.default_rng(0))


def beacon(rid: int, role: Role, head: int, cluster: int = CLUSTER, **kw: object) -> Beacon:
    return Beacon(0.0, 0.0, role, head, 0, id=rid, cluster=cluster, **kw)


def handover(m: Membership, cluster: int = CLUSTER) -> None:
    """``OLD``, heard as head of ``cluster``, hands it to this robot, which takes it over at
    its next beacon."""
    m.table = {OLD: beacon(OLD, Role.HEAD, OLD, cluster)}
    assert m.on_handover(Message(Kind.HANDOVER, sender=OLD, receiver=ME, cluster=cluster)) is None
    m.beacon(0.0, 0.0, ())
    assert (m.state.role, m.state.cluster) == (Role.HEAD, cluster)


# ------------------------------------------------------------------------- forged hand-overs
@pytest.mark.parametrize("method", ["bilayer", "cfl"])
def test_a_headship_whose_old_head_still_beacons_as_head_is_given_back(method: str) -> None:
    m = member(method)
    assert m.forged_handovers == 0
    for n in (1, 2):  # counted each time
        m.state = ClusterState(Role.MEMBER, CLUSTER, OLD, -1, 3)
        handover(m)
        m.hear(5, OLD, CLUSTER, beacon(OLD, Role.HEAD, OLD))  # its final beacon: still head
        m.settle(6)
        assert m.state == ClusterState(Role.MEMBER, CLUSTER, OLD, -1, 3)
        assert m.forged_handovers == n


def test_a_forged_handover_is_given_back_at_the_next_pass_too() -> None:
    m = member()
    m.state = ClusterState(Role.MEMBER, CLUSTER, OLD, -1, 3)
    handover(m)
    m.hear(2, OLD, CLUSTER, beacon(OLD, Role.HEAD, OLD))
    m.assign(3, 0.0, 0.0, np.zeros(0))
    assert m.forged_handovers == 1
    assert (m.state.role, m.state.cluster, m.state.head) == (Role.MEMBER, CLUSTER, OLD)


def test_a_real_handover_keeps_the_headship() -> None:
    m = member("cfl")
    m.state = ClusterState(Role.MEMBER, CLUSTER, OLD, -1, 3)
    handover(m)
    taken = m.state
    m.hear(5, OLD, CLUSTER, beacon(OLD, Role.MEMBER, ME))  # the old head now a member
    m.settle(6)
    assert m.state == taken and m.forged_handovers == 0
    m.hear(5, OLD, CLUSTER, beacon(OLD, Role.HEAD, OLD))  # too late: the hand-over is settled
    m.settle(6)
    assert m.state == taken and m.forged_handovers == 0


def test_nothing_is_given_back_by_a_robot_no_longer_heading_the_cluster_it_took() -> None:
    for now in (ClusterState(Role.HEAD, 9, ME), ClusterState(Role.MEMBER, CLUSTER, 2)):
        m = member("cfl")
        m.state = ClusterState(Role.MEMBER, CLUSTER, OLD)
        handover(m)
        m.state = now
        m.hear(5, OLD, CLUSTER, beacon(OLD, Role.HEAD, OLD))
        m.settle(6)
        assert m.state == now and m.forged_handovers == 0


def test_a_taken_over_headship_keeps_the_founding_count_and_dates_from_the_pass_before() -> None:
    m = member("cfl")
    m.state = ClusterState(Role.MEMBER, CLUSTER, OLD, -1, 3)
    for slot in (1, 2, 3):  # three passes heard no one
        m.assign(slot, 0.0, 0.0, np.zeros(0))
    handover(m)
    assert m.state == ClusterState(Role.HEAD, CLUSTER, ME, 2, 3)


def test_a_beacon_names_this_robot_and_carries_its_label_distribution() -> None:
    m = member()
    m.table = {2: beacon(2, Role.MEMBER, 3)}
    b = m.beacon(1.0, 2.0, (0.25, 0.75))
    assert (b.id, b.label_dist, b.neighbours, b.cluster) == (ME, (0.25, 0.75), 1, m.cluster)


# ----------------------------------------------------------------------- start and passes
def test_a_flat_robot_starts_as_a_member_of_the_one_cluster_naming_no_head() -> None:
    assert member("flat").state == ClusterState(Role.MEMBER, FLAT_CLUSTER, -1)


@pytest.mark.parametrize(("prob", "role"), [(1.0, Role.HEAD), (0.0, Role.NONE)])
def test_a_robot_starts_as_head_with_the_head_probability(prob: float, role: Role) -> None:
    assert member(head_prob=prob).state.role == role


def test_the_beacons_of_a_fresh_robots_first_pass_are_current_senders() -> None:
    m = member()
    m.hear(0, 2, 9, beacon(2, Role.HEAD, 2, 9))
    m.assign(1, 0.0, 0.0, np.zeros(0))
    current, _earlier = m.senders
    assert 2 in current


def test_only_the_rounds_last_pass_keeps_a_lone_head() -> None:
    m = member(passes=2, min_cluster_size=1)
    lone = ClusterState(Role.HEAD, CLUSTER, ME, 0, 1)
    for _round in (1, 2):
        m.begin_round()
        m.state = lone
        m.assign(1, 0.0, 0.0, np.zeros(0))  # heard no one: too small, steps down
        assert m.state.role == Role.NONE
        m.state = lone
        m.assign(2, 0.0, 0.0, np.zeros(0))  # the last pass: a head stays head
        assert m.state == lone


def test_a_fresh_robots_first_pass_is_not_the_last_one() -> None:
    m = member(passes=2, min_cluster_size=1)
    m.state = ClusterState(Role.HEAD, CLUSTER, ME, 0, 1)
    m.assign(1, 0.0, 0.0, np.zeros(0))  # no begin_round() yet: still the first of two passes
    assert m.state.role == Role.NONE


def test_the_emd_criterion_joins_the_head_with_the_nearest_label_distribution() -> None:
    m = member(criterion="emd")
    near = Beacon(0.1, 0.0, Role.HEAD, 2, 0, (1.0, 0.0), id=2, cluster=20)
    alike = Beacon(9.0, 0.0, Role.HEAD, 3, 0, (0.0, 1.0), id=3, cluster=30)
    m.hear_all(0, [2, 3], [near, alike])
    m.assign(1, 0.0, 0.0, np.array([0.0, 1.0]))
    assert (m.state.cluster, m.state.head) == (30, 3)


def test_a_batch_of_beacons_must_name_one_sender_each() -> None:
    with pytest.raises(ValueError):
        member().hear_all(0, [2, 3], [beacon(2, Role.MEMBER, 1)])


# ------------------------------------------------------------------------------------ settle
def test_only_beacons_sent_before_the_settling_slot_are_final() -> None:
    m = member("cfl")
    m.hear(2, 2, CLUSTER, beacon(2, Role.MEMBER, 1))
    m.hear(3, 3, CLUSTER, beacon(3, Role.MEMBER, 1))
    m.settle(3)
    assert set(m.table) == {2}


def test_a_bilayer_member_whose_head_is_gone_leaves_the_cluster() -> None:
    m = member(passes=1)
    m.state = ClusterState(Role.MEMBER, CLUSTER, OLD)
    m.hear(5, 2, CLUSTER, beacon(2, Role.MEMBER, ME))  # names this robot, which is no head
    m.settle(6)
    assert m.state.role == Role.NONE and m.cluster == NO_CLUSTER


@pytest.mark.parametrize(("passes", "stays"), [(1, False), (2, True)])
def test_a_lost_final_head_beacon_is_forgiven_only_when_the_last_pass_only_assigned(
    passes: int, stays: bool
) -> None:
    m = member(passes=passes)
    m.state = ClusterState(Role.MEMBER, CLUSTER, OLD)
    m.hear(5, 2, 30, beacon(2, Role.MEMBER, 3, 30))  # someone heard, not the head
    m.settle(6)
    assert (m.state.role == Role.MEMBER) is stays


# ------------------------------------------------------------------------------- gossiping
@pytest.mark.parametrize(
    ("method", "peers", "state", "eligible"),
    [
        ("bilayer", "all", ClusterState(Role.MEMBER, CLUSTER, OLD), True),
        ("bilayer", "heads", ClusterState(Role.MEMBER, CLUSTER, OLD), False),
        ("bilayer", "heads", ClusterState(Role.HEAD, CLUSTER, ME), True),
        ("bilayer", "all", ClusterState(Role.NONE, NO_CLUSTER, -1), False),
        ("flat", "all", ClusterState(Role.MEMBER, FLAT_CLUSTER, -1), False),
        ("cfl", "all", ClusterState(Role.HEAD, CLUSTER, ME), False),
    ],
)
def test_who_gossips_on_the_inter_cluster_layer(
    method: str, peers: str, state: ClusterState, eligible: bool
) -> None:
    m = member(method, peers)
    m.state = state
    assert m.inter_eligible() is eligible
    assert m.accepts(Layer.INTER, 30) is eligible


def test_no_message_of_another_layer_is_for_this_robot() -> None:
    m = member()
    m.state = ClusterState(Role.HEAD, CLUSTER, ME)
    assert not any(m.accepts(layer, CLUSTER) for layer in (Layer.NONE, Layer.CLUSTER, Layer.HEAD))


def test_a_head_has_members_only_if_one_names_it_in_its_cluster() -> None:
    m = member()
    m.state = ClusterState(Role.HEAD, CLUSTER, ME)
    m.table = {2: beacon(2, Role.MEMBER, 3), 5: beacon(5, Role.MEMBER, ME, 30)}
    assert not m.has_members()
    m.table[6] = beacon(6, Role.MEMBER, ME)
    assert m.has_members()


@pytest.mark.parametrize("unclustered", [True, False])
def test_a_clustered_robot_gossips_inside_its_cluster_whatever_unclustered_gossip_says(
    unclustered: bool,
) -> None:
    m = member(unclustered_gossip=unclustered)
    m.state = ClusterState(Role.MEMBER, CLUSTER, OLD)
    m.table = {OLD: beacon(OLD, Role.HEAD, OLD), 9: beacon(9, Role.MEMBER, OLD, cluster=3)}
    assert m.partners(Layer.INTRA) == [OLD]
    assert m.accepts(Layer.INTRA, CLUSTER) and not m.accepts(Layer.INTRA, 3)


@pytest.mark.parametrize("unclustered", [True, False])
def test_a_robot_in_no_cluster_gossips_only_with_unclustered_gossip(unclustered: bool) -> None:
    m = member(unclustered_gossip=unclustered)
    m.state = ClusterState(Role.MEMBER, NO_CLUSTER, -1)
    m.table = {5: beacon(5, Role.MEMBER, -1, cluster=NO_CLUSTER)}
    assert m.partners(Layer.INTRA) == ([5] if unclustered else [])
    assert m.accepts(Layer.INTRA, NO_CLUSTER) is unclustered
