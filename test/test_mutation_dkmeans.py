"""DK-means settle at its edges: a member with no head and no anchor leaves to NO_CLUSTER, and
a neighbour that names this robot as its head does not anchor it (cases mutation testing found
unguarded)."""

from __future__ import annotations

from gossip_learning.dkmeans import ClusterState, settle
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
