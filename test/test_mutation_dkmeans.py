"""DK-means settle at its edges: a member with no head and no anchor leaves to NO_CLUSTER, and
a neighbour that names this robot as its head does not anchor it (cases mutation testing found
unguarded)."""

from __future__ import annotations

import numpy as np
import pytest

from gossip_learning.config import ClusteringConfig
from gossip_learning.dkmeans import (
    CLUSTER_ID_STRIDE,
    ClusterState,
    Criterion,
    Decision,
    anchored,
    assign,
    initial_state,
    label_distance,
    new_cluster_id,
    settle,
)
from gossip_learning.messages import NO_CLUSTER, Beacon, Role


def test_a_member_with_no_head_and_no_anchor_leaves_its_cluster() -> None:
    state = ClusterState(Role.MEMBER, 5, 9)
    out = settle(state, {}, 4)
    assert (out.role, out.cluster, out.head) == (Role.NONE, NO_CLUSTER, -1)


def test_a_neighbour_naming_this_robot_as_head_is_no_anchor() -> None:
    state = ClusterState(Role.MEMBER, 5, 9)  # head 9 is gone
    follower = Beacon(0.0, 0.0, Role.MEMBER, 4, 0, id=2, cluster=5)  # names robot 4: this one
    out = settle(state, {2: follower}, 4)
    assert out.cluster == NO_CLUSTER
    anchored = Beacon(0.0, 0.0, Role.MEMBER, 7, 0, id=2, cluster=5)  # names 7, not heard
    assert settle(state, {2: anchored}, 4) == ClusterState(Role.MEMBER, 5, -1, -1)


def test_cluster_ids_are_stride_times_robot_plus_count_modulo_stride() -> None:
    assert new_cluster_id(3, 5) == 3 * CLUSTER_ID_STRIDE + 5
    assert new_cluster_id(3, CLUSTER_ID_STRIDE + 2) == 3 * CLUSTER_ID_STRIDE + 2


def test_initial_states_are_exact() -> None:
    head = initial_state(7, True)
    assert (head.role, head.cluster, head.head, head.head_since, head.founded, head.own) == (
        Role.HEAD, 7 * CLUSTER_ID_STRIDE, 7, -1, 1, NO_CLUSTER)  # fmt: skip
    free = initial_state(7, False)
    assert (free.role, free.cluster, free.head, free.head_since, free.founded, free.own) == (
        Role.NONE, NO_CLUSTER, -1, -1, 0, NO_CLUSTER)  # fmt: skip
    assert isinstance(head.founded, int) and isinstance(free.head_since, int)


def test_label_distance_is_l1_and_zero_for_empty_or_mismatched() -> None:
    assert label_distance([0.2, 0.8], [0.6, 0.4]) == pytest.approx(0.8)
    assert label_distance([0.0], [1.0]) == 1.0  # one class: still compared
    assert label_distance([], [0.5]) == 0.0
    assert label_distance([0.5], []) == 0.0
    assert label_distance([], []) == 0.0
    assert label_distance([1.0, 0.0], [0.0, 1.0, 0.0]) == 0.0  # sizes differ


def _crit(kind: str, weight: float = 0.5, comm_range: float = 10.0) -> Criterion:
    return Criterion(ClusteringConfig(criterion=kind, mix_weight=weight), comm_range)


def test_criterion_values_per_kind() -> None:
    a, b = (0.2, 0.8), (0.6, 0.4)  # label distance 0.8, halved: 0.4
    assert _crit("geographic")(0.0, 0.0, a, 3.0, 4.0, b) == pytest.approx(0.5)
    assert _crit("emd")(0.0, 0.0, a, 3.0, 4.0, b) == pytest.approx(0.4)
    mixed = _crit("mixed", weight=0.25)
    assert mixed.weight == 0.25
    assert mixed(0.0, 0.0, a, 3.0, 4.0, b) == pytest.approx(0.25 * 0.5 + 0.75 * 0.4)
    assert mixed(0.0, 0.0, a, 0.0, 0.0, a) == 0.0  # same place, same labels
    assert not _crit("geographic").uses_labels
    assert _crit("emd").uses_labels and _crit("mixed").uses_labels


def test_anchored_by_role_head_and_what_this_robot_hears() -> None:
    def member(head: int, cluster: int = 5) -> Beacon:
        return Beacon(0.0, 0.0, Role.MEMBER, head, 0, id=2, cluster=cluster)

    head = Beacon(0.0, 0.0, Role.HEAD, 2, 0, id=2, cluster=5)
    assert anchored(head, {}, 4)
    assert not anchored(Beacon(0.0, 0.0, Role.HEAD, 2, 0, id=2), {}, 4)  # in no cluster
    assert anchored(member(0), {}, 4)  # its head is robot 0, not heard here
    assert not anchored(member(-1), {}, 4)  # names no head
    assert not anchored(Beacon(0.0, 0.0, Role.NONE, 0, 0, id=2, cluster=5), {}, 4)
    heads = {
        "head of its cluster": (Role.HEAD, 5, True),
        "head of another cluster": (Role.HEAD, 6, False),
        "member of its cluster": (Role.MEMBER, 5, False),
        "member elsewhere": (Role.MEMBER, 6, False),
    }
    for what, (role, cluster, expected) in heads.items():
        table = {0: Beacon(0.0, 0.0, role, 0, 0, id=0, cluster=cluster)}
        assert anchored(member(0), table, 4) is expected, what


def test_settle_keeps_full_state_and_picks_the_lowest_head() -> None:
    state = ClusterState(Role.MEMBER, 5, 9, -1, 3, 8)
    heads = {i: Beacon(0.0, 0.0, Role.HEAD, i, 0, id=i, cluster=5) for i in (6, 2, 4)}
    assert settle(state, heads, 1) == ClusterState(Role.MEMBER, 5, 2, -1, 3, 8)
    relay = {2: Beacon(0.0, 0.0, Role.MEMBER, 7, 0, id=2, cluster=5)}
    assert settle(state, relay, 1) == ClusterState(Role.MEMBER, 5, -1, -1, 3, 8)
    assert settle(state, {}, 1) == ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 3, 8)
    own = {9: Beacon(0.0, 0.0, Role.HEAD, 9, 0, id=9, cluster=5)}
    assert settle(state, own, 1) is state
    moved = {9: Beacon(0.0, 0.0, Role.HEAD, 9, 0, id=9, cluster=6)}  # heads another cluster
    assert settle(state, moved, 1) == ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 3, 8)


def test_settle_keeps_a_member_whose_head_was_not_heard_only_when_heads_were_kept() -> None:
    zero = ClusterState(Role.MEMBER, 5, 0, -1, 0)  # its head is robot 0
    assert settle(zero, {}, 1, heads_kept=True) is zero
    assert settle(zero, {}, 1).role == Role.NONE
    relayed = ClusterState(Role.MEMBER, 5, -1, -1, 0)
    assert settle(relayed, {}, 1, heads_kept=True).role == Role.NONE


def _free(i: int, degree: int, x: float = 0.0) -> Beacon:
    return Beacon(x, 0.0, Role.NONE, -1, degree, id=i)


def test_a_promotion_founds_the_next_cluster_or_reuses_its_own() -> None:
    cfg = ClusteringConfig(min_cluster_size=1)
    crit = Criterion(cfg, 10.0)
    table = {i: _free(i, 1) for i in (1, 2)}
    dist = np.zeros(0)
    fresh = ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 2)
    out = assign(4, fresh, 0.0, 0.0, dist, table, cfg, crit, 7).state
    assert out == ClusterState(Role.HEAD, new_cluster_id(4, 2), 4, 7, 3)
    again = ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 2, 4 * CLUSTER_ID_STRIDE)
    out = assign(4, again, 0.0, 0.0, dist, table, cfg, crit, 7).state
    assert out == ClusterState(Role.HEAD, 4 * CLUSTER_ID_STRIDE, 4, 7, 2)


def test_a_neighbour_that_still_names_this_robot_as_head_is_a_rival_not_a_relay() -> None:
    cfg = ClusteringConfig(min_cluster_size=1)
    crit = Criterion(cfg, 10.0)
    table = {
        1: _free(1, 1),
        2: _free(2, 1),
        3: Beacon(0.0, 0.0, Role.MEMBER, 4, 10, id=3, cluster=5),  # names robot 4: this one
    }
    fresh = ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 0)
    out = assign(4, fresh, 0.0, 0.0, np.zeros(0), table, cfg, crit, 7).state
    assert out == fresh  # out-voted by robot 3, and robot 3 anchors nothing for it


def _near_unlike_far_alike(
    role: Role, heads: tuple[int, int], clusters: tuple[int, int]
) -> dict[int, Beacon]:
    """Robot 1 near with labels unlike (1, 0), robot 2 far with labels alike."""
    return {
        1: Beacon(1.0, 0.0, role, heads[0], 0, (0.0, 1.0), id=1, cluster=clusters[0]),
        2: Beacon(9.0, 0.0, role, heads[1], 0, (1.0, 0.0), id=2, cluster=clusters[1]),
    }


def test_a_relayed_member_joins_the_nearest_anchored_cluster_by_its_criterion() -> None:
    cfg = ClusteringConfig(min_cluster_size=5, criterion="emd")
    crit = Criterion(cfg, 10.0)
    table = _near_unlike_far_alike(Role.MEMBER, (8, 9), (5, 6))
    fresh = ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 1, 3)
    dist = np.array([1.0, 0.0])
    out = assign(4, fresh, 0.0, 0.0, dist, table, cfg, crit, 7).state
    assert out == ClusterState(Role.MEMBER, 6, -1, -1, 1, 3)


def _member(i: int, x: float, y: float, head: int = 0, dist: tuple[float, ...] = ()) -> Beacon:
    return Beacon(x, y, Role.MEMBER, head, 0, dist, id=i, cluster=7)


HEAD = ClusterState(Role.HEAD, 7, 0, 1, 1)  # robot 0 heads cluster 7 since pass 1


def test_a_head_hands_over_to_the_member_nearest_its_members_centroid() -> None:
    cfg = ClusteringConfig(min_cluster_size=1)
    crit = Criterion(cfg, 10.0)
    table = {1: _member(1, 0.0, 4.0), 2: _member(2, 0.0, 6.0), 3: _member(3, 0.0, 2.0),
             4: _member(4, 0.0, -100.0, head=9)}  # fmt: skip  # 4: another head's member
    d = assign(0, HEAD, 0.0, 10.0, np.zeros(0), table, cfg, crit, 5)
    assert d.handover_to == 2  # centroid (0, 5.5) of robots 0-3: robot 2 at (0, 6) nearest
    assert d.state == ClusterState(Role.MEMBER, 7, 2, -1, 1)


def test_a_head_re_centres_on_its_members_mean_label_distribution() -> None:
    cfg = ClusteringConfig(min_cluster_size=1, criterion="emd")
    crit = Criterion(cfg, 10.0)
    table = {1: _member(1, 0.0, 0.0, dist=(0.0, 1.0)), 2: _member(2, 0.0, 0.0, dist=(0.5, 0.5)),
             3: _member(3, 0.0, 0.0, dist=(0.0, 1.0))}  # fmt: skip
    dist = np.array([1.0, 0.0])
    d = assign(0, HEAD, 0.0, 0.0, dist, table, cfg, crit, 5)
    assert d.handover_to == 2  # mean (0.375, 0.625): robot 2's (0.5, 0.5) nearest
    # a member whose distribution has another size: no mean, distances from the head's own
    table[3] = _member(3, 0.0, 0.0, dist=(0.0, 0.5, 0.5))
    assert assign(0, HEAD, 0.0, 0.0, dist, table, cfg, crit, 5) == Decision(HEAD)


def test_a_head_steps_down_at_exactly_min_cluster_size_neighbours_or_members() -> None:
    crit = Criterion(ClusteringConfig(), 10.0)
    stepped = ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 1, 7)
    table = {i: _member(i, 1.0, 0.0) for i in (1, 2, 3)}
    new = ClusterState(Role.HEAD, 7, 0, 5, 1)  # not settled: members may still join
    cfg3 = ClusteringConfig(min_cluster_size=3)
    assert assign(0, new, 0.0, 0.0, np.zeros(0), table, cfg3, crit, 5).state == stepped
    table[4] = _member(4, 1.0, 0.0, head=9)  # 4 neighbours, 3 of them members
    assert assign(0, new, 1.0, 0.0, np.zeros(0), table, cfg3, crit, 5) == Decision(new)
    settled = ClusterState(Role.HEAD, 7, 0, 3, 1)  # head since pass 3, now pass 5
    relayed = ClusterState(Role.MEMBER, 7, -1, -1, 1, 7)  # through robot 4, another's member
    assert assign(0, settled, 0.0, 0.0, np.zeros(0), table, cfg3, crit, 5).state == relayed
    assert assign(0, settled, 1.0, 0.0, np.zeros(0), table, cfg3, crit, 4) == Decision(settled)


def test_a_head_that_steps_down_joins_the_nearest_head_by_its_criterion() -> None:
    cfg = ClusteringConfig(min_cluster_size=3, criterion="emd")
    crit = Criterion(cfg, 10.0)
    table = _near_unlike_far_alike(Role.HEAD, (1, 2), (11, 12))
    out = assign(0, HEAD, 0.0, 0.0, np.array([1.0, 0.0]), table, cfg, crit, 5).state
    assert out == ClusterState(Role.MEMBER, 12, 2, -1, 1, 7)
