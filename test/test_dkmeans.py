"""DK-means decisions on hand-made neighbour tables, and on a fixed layout end to end."""

from __future__ import annotations

import numpy as np

from gossip_learning import dkmeans
from gossip_learning.channel import UnitDisk
from gossip_learning.config import ClusteringConfig
from gossip_learning.dkmeans import ClusterState, Criterion, Neighbour, assign, new_cluster_id
from gossip_learning.wire import NO_CLUSTER, Role

CFG = ClusteringConfig(min_cluster_size=3, election="paper")
CRIT = Criterion(CFG, comm_range=10.0)
D = np.zeros(0, np.float32)


def nb(
    i: int,
    x: float,
    y: float,
    role: Role = Role.NONE,
    cluster: int = NO_CLUSTER,
    head: int = -1,
    degree: int = 0,
) -> Neighbour:
    return Neighbour(x, y, role, head, degree, (), id=i, cluster=cluster)


def table(*ns: Neighbour) -> dict[int, Neighbour]:
    return {n.id: n for n in ns}


NONE = ClusterState(Role.NONE, NO_CLUSTER, -1)


def test_non_head_joins_nearest_head_in_range() -> None:
    t = table(nb(1, 5, 0, Role.HEAD, 100, 1), nb(2, 2, 0, Role.HEAD, 200, 2), nb(3, 1, 0))
    d = assign(0, NONE, 0, 0, D, t, CFG, CRIT, pass_no=0)
    assert d.state == ClusterState(Role.MEMBER, 200, 2)


def test_no_head_enough_neighbours_becomes_head() -> None:
    t = table(*(nb(i, i, 0) for i in range(1, 5)))  # 4 neighbours > 3
    d = assign(0, NONE, 0, 0, D, t, CFG, CRIT, pass_no=4)
    assert (
        d.state.role == Role.HEAD
        and d.state.cluster == new_cluster_id(0, 0)
        and d.state.head_since == 4
    )


def test_no_head_few_neighbours_joins_nearest_neighbours_cluster() -> None:
    t = table(nb(1, 1, 0, Role.MEMBER, 300, 9), nb(2, 3, 0, Role.MEMBER, 400, 8))
    d = assign(0, NONE, 0, 0, D, t, CFG, CRIT, pass_no=0)
    # its head (9) is out of range: it joins the cluster and names no head
    assert d.state == ClusterState(Role.MEMBER, 300, -1)


def test_isolated_robot_stays_alone() -> None:
    assert assign(0, NONE, 0, 0, D, {}, CFG, CRIT, 0).state.role == Role.NONE


def test_local_max_election_lets_only_the_best_connected_promote() -> None:
    cfg = ClusteringConfig(min_cluster_size=3, election="local_max")
    t = table(*(nb(i, i, 0, degree=4) for i in range(1, 5)))
    # Robot 0 has 4 neighbours; neighbour 1 reports 4 too but has a higher id: 0 wins the tie.
    assert assign(0, NONE, 0, 0, D, t, cfg, CRIT, 0).state.role == Role.HEAD
    t[1] = nb(1, 1, 0, degree=6)
    assert assign(0, NONE, 0, 0, D, t, cfg, CRIT, 0).state.role == Role.NONE


def test_head_with_few_neighbours_steps_down_and_joins_another_head() -> None:
    me = ClusterState(Role.HEAD, 500, 0, head_since=-1)
    t = table(nb(1, 2, 0, Role.HEAD, 600, 1), nb(2, 3, 0, Role.MEMBER, 500, 0))
    d = assign(0, me, 0, 0, D, t, CFG, CRIT, pass_no=3)
    assert d.state == ClusterState(Role.MEMBER, 600, 1, own=500)  # 500 kept for a re-promotion


def test_head_with_few_members_steps_down_only_once_members_could_join() -> None:
    me = ClusterState(Role.HEAD, 500, 0, head_since=5)
    t = table(*(nb(i, i, 0) for i in range(1, 6)))  # 5 neighbours, none a member yet
    assert assign(0, me, 0, 0, D, t, CFG, CRIT, pass_no=6).state.role == Role.HEAD  # too early
    assert assign(0, me, 0, 0, D, t, CFG, CRIT, pass_no=7).state.role != Role.HEAD


def test_recentre_hands_over_to_member_nearest_centroid() -> None:
    me = ClusterState(Role.HEAD, 500, 0, head_since=-1)
    members = [nb(i, x, 0, Role.MEMBER, 500, 0) for i, x in ((1, 4), (2, 5), (3, 6), (4, 9))]
    d = assign(0, me, 0, 0, D, table(*members), CFG, CRIT, pass_no=2)
    # centroid of {0,4,5,6,9} is x=4.8: member 2 (x=5) is nearest
    assert d.handover_to == 2
    assert d.state == ClusterState(Role.MEMBER, 500, 2)


def test_emd_criterion_joins_the_head_with_similar_labels() -> None:
    cfg = ClusteringConfig(criterion="emd")
    crit = Criterion(cfg, 10.0)
    a = np.array([1.0, 0.0], np.float32)
    b = np.array([0.0, 1.0], np.float32)
    t = {
        1: Neighbour(1, 0, Role.HEAD, 1, 4, tuple(b), id=1, cluster=100),
        2: Neighbour(9, 0, Role.HEAD, 2, 4, tuple(a), id=2, cluster=200),
    }
    assert assign(0, NONE, 0, 0, a, t, cfg, crit, 0).state.cluster == 200
    geo = Criterion(ClusteringConfig(criterion="geographic"), 10.0)
    assert assign(0, NONE, 0, 0, a, t, cfg, geo, 0).state.cluster == 100


def test_settle_drops_a_member_whose_cluster_vanished() -> None:
    st = ClusterState(Role.MEMBER, 500, 1)
    assert dkmeans.settle(st, table(nb(1, 1, 0, Role.NONE)), 0).role == Role.NONE
    t = table(nb(1, 1, 0, Role.MEMBER, 500, 2), nb(2, 2, 0, Role.HEAD, 500, 2))
    assert dkmeans.settle(st, t, 0) == ClusterState(Role.MEMBER, 500, 2)


def test_fixed_layout_gives_two_clusters_obeying_size_rules() -> None:
    """Two far-apart groups of 6 robots: each group ends as one cluster with one head."""
    from agent_contract import run_round, settings
    from gossip_learning.protocol import RobotAgent
    from gossip_learning.schedule import build_schedule
    from gossip_learning.transports.inprocess import InProcessNetwork

    grp = np.array([[0, 0], [2, 0], [0, 2], [2, 2], [1, 1], [1, 3]], float)
    pos = np.vstack([grp, grp + 50])
    net = InProcessNetwork(12, UnitDisk(10.0), np.random.default_rng(0))
    net.set_positions(pos)
    st = settings("bilayer", "broadcast")
    st = type(st)(
        st.method,
        ClusteringConfig(passes=5, min_cluster_size=3, head_prob=0.2),
        st.gossip,
        10.0,
        42,
        6,
    )
    agents = [
        RobotAgent(i, st, net.endpoint(i), np.zeros(6, np.float32), 10, np.zeros(0), seed=i)
        for i in range(12)
    ]
    for a in agents:
        a.set_position(*pos[a.id])

    class H:
        def settle(self) -> None:
            net.flush()

    sched = build_schedule("bilayer", 5, st.gossip)
    for r in (1, 2):
        run_round(H(), agents, sched, r)  # type: ignore[arg-type]
    for g in (agents[:6], agents[6:]):
        clusters = {a.state.cluster for a in g}
        heads = [a for a in g if a.state.role == Role.HEAD]
        assert len(clusters) == 1 and NO_CLUSTER not in clusters
        assert len(heads) == 1
        assert all(a.state.head == heads[0].id for a in g if a is not heads[0])
    assert agents[0].state.cluster != agents[6].state.cluster


def test_a_crowd_of_heads_settles_on_one_head_instead_of_flip_flopping() -> None:
    """Six robots all in range, all starting as heads: they step down together, and with
    local-max election exactly one re-promotes; everyone else joins it within the round."""
    from agent_contract import run_round, settings
    from gossip_learning.protocol import RobotAgent
    from gossip_learning.schedule import build_schedule
    from gossip_learning.transports.inprocess import InProcessNetwork

    pos = np.array([[0, 0], [2, 0], [0, 2], [2, 2], [1, 1], [1, 3]], float)
    net = InProcessNetwork(6, UnitDisk(10.0), np.random.default_rng(0))
    net.set_positions(pos)
    base = settings("bilayer", "broadcast")
    cfg = ClusteringConfig(passes=5, min_cluster_size=3, head_prob=1.0, election="local_max")
    st = type(base)(base.method, cfg, base.gossip, 10.0, 42, 6)
    agents = [
        RobotAgent(i, st, net.endpoint(i), np.zeros(6, np.float32), 10, np.zeros(0), seed=i)
        for i in range(6)
    ]
    for a in agents:
        a.set_position(*pos[a.id])
    assert all(a.state.role == Role.HEAD for a in agents)

    class H:
        def settle(self) -> None:
            net.flush()

    run_round(H(), agents, build_schedule("bilayer", 5, st.gossip), 1)  # type: ignore[arg-type]
    heads = [a for a in agents if a.state.role == Role.HEAD]
    assert len(heads) == 1
    assert all(
        a.state.head == heads[0].id and a.state.cluster == heads[0].state.cluster
        for a in agents
        if a is not heads[0]
    )


def test_no_head_joins_only_an_anchored_neighbours_cluster() -> None:
    """A member that names no head (it is relayed itself) or names a head this robot hears as a
    non-head is not a relay: copying its cluster is how headless ghost clusters lived on."""
    relayed = nb(1, 1, 0, Role.MEMBER, 300, -1)
    stale = nb(2, 2, 0, Role.MEMBER, 400, 3)
    stale_head = nb(3, 6, 0, Role.MEMBER, 500, -1)  # robot 3 no longer heads cluster 400
    d = assign(0, NONE, 0, 0, D, table(relayed, stale, stale_head), CFG, CRIT, pass_no=0)
    assert d.state == NONE
    anchored = nb(4, 5, 0, Role.MEMBER, 600, 9)  # its head 9 is out of this robot's range
    lm = ClusteringConfig(min_cluster_size=3, election="local_max")  # 3 unanchored: no promotion
    d = assign(0, NONE, 0, 0, D, table(relayed, stale, stale_head, anchored), lm, CRIT, 0)
    assert d.state == ClusterState(Role.MEMBER, 600, -1)
    assert not dkmeans.anchored(nb(5, 0, 0, Role.MEMBER, 700, 0), {}, me=0)  # names me


def test_last_pass_keeps_heads() -> None:
    """In the round's last pass a head neither steps down nor re-centres, so members' choices
    on that pass's beacons still name a head afterwards."""
    me = ClusterState(Role.HEAD, 500, 0, head_since=-1)
    few = table(nb(1, 1, 0, Role.MEMBER, 500, 0))  # would step down
    assert assign(0, me, 0, 0, D, few, CFG, CRIT, pass_no=9).state.role != Role.HEAD
    assert assign(0, me, 0, 0, D, few, CFG, CRIT, pass_no=9, last=True) == dkmeans.Decision(me)
    members = table(*(nb(i, x, 0, Role.MEMBER, 500, 0) for i, x in ((1, 4), (2, 5), (3, 6))),
                    nb(4, 9, 0, Role.MEMBER, 500, 0))  # fmt: skip
    assert assign(0, me, 0, 0, D, members, CFG, CRIT, 9).handover_to == 2
    assert assign(0, me, 0, 0, D, members, CFG, CRIT, 9, last=True).handover_to is None


def test_a_head_that_re_promotes_keeps_its_cluster_id() -> None:
    me = ClusterState(Role.HEAD, 500, 0, head_since=-1, founded=1)
    t = table(*(nb(i, i, 0) for i in range(1, 5)))  # 4 neighbours, none a member
    down = assign(0, me, 0, 0, D, t, CFG, CRIT, pass_no=3).state
    assert down.role != Role.HEAD and down.own == 500
    up = assign(0, down, 0, 0, D, t, CFG, CRIT, pass_no=4).state
    assert up.role == Role.HEAD and up.cluster == 500 and up.founded == 1


def test_local_max_needs_enough_unanchored_neighbours_to_promote() -> None:
    """Robots that hear a head elsewhere would not join: promoting among them only makes a
    cluster that steps down again (the quickstart's per-round flip)."""
    cfg = ClusteringConfig(min_cluster_size=3, election="local_max")
    others = [nb(i, i, 0, Role.MEMBER, 900, 9, degree=1) for i in range(1, 4)]
    t = table(*others, nb(4, 4, 0, degree=1))  # 4 neighbours, only one unanchored
    assert assign(0, NONE, 0, 0, D, t, cfg, CRIT, 0).state == ClusterState(Role.MEMBER, 900, -1)
    assert assign(0, NONE, 0, 0, D, t, CFG, CRIT, 0).state.role == Role.HEAD  # paper's rule


def test_settle_keeps_a_relayed_member_only_next_to_an_anchored_one() -> None:
    st = ClusterState(Role.MEMBER, 500, -1)
    assert dkmeans.settle(st, table(nb(1, 1, 0, Role.MEMBER, 500, -1)), 0).role == Role.NONE
    t = table(nb(1, 1, 0, Role.MEMBER, 500, 2))
    assert dkmeans.settle(st, t, 0) == st
    gone = ClusterState(Role.MEMBER, 500, 3)  # its head 3 now beacons as a member
    t = table(nb(3, 1, 0, Role.MEMBER, 500, 4), nb(1, 1, 0, Role.MEMBER, 500, 2))
    assert dkmeans.settle(gone, t, 0) == ClusterState(Role.MEMBER, 500, -1)


def test_settle_keeps_a_head_whose_final_beacon_was_lost() -> None:
    """Heads do not change in the last pass, so a missing final beacon means a lost frame."""
    st = ClusterState(Role.MEMBER, 500, 2)
    t = table(nb(1, 1, 0, Role.MEMBER, 500, -1))  # head 2 not heard
    assert dkmeans.settle(st, t, 0, heads_kept=True) == st
    assert dkmeans.settle(st, t, 0, heads_kept=False).role == Role.NONE


def test_remember_keeps_a_missed_neighbour_for_beacon_memory_passes() -> None:
    """A neighbour whose beacons are missed stays in the table (its last beacon) for ``keep``
    passes in a row, then leaves; a beacon heard again replaces it and restarts the count."""
    head = nb(1, 1, 0, Role.HEAD, 100, 1)
    tbl, missed = dkmeans.remember({}, {}, table(head), keep=2)
    assert tbl == {1: head} and missed == {}
    for n in (1, 2):  # missed twice: still there, counted
        tbl, missed = dkmeans.remember(tbl, missed, table(nb(2, 2, 0)), keep=2)
        assert tbl[1] is head and missed == {1: n} and 2 in tbl
    tbl, missed = dkmeans.remember(tbl, missed, {}, keep=2)  # a third miss: gone
    assert 1 not in tbl and missed == {2: 1}
    moved = nb(2, 5, 0, Role.MEMBER, 100, 1)
    tbl, missed = dkmeans.remember(tbl, missed, table(moved), keep=2)
    assert tbl == {2: moved} and missed == {}
    assert dkmeans.remember(table(head), {}, {}, keep=0) == ({}, {})  # the paper's rule


def test_a_head_that_misses_members_beacons_does_not_step_down() -> None:
    """Four members name head 0; in the next pass the head hears only two of them (lost
    beacons). On those alone it steps down (≤ min_cluster_size members); with the table that
    remembers the missed two it stays head."""
    around = [(1, 0), (-1, 0), (0, 1), (0, -1)]  # the head sits at its members' centroid
    members = [nb(i, x, y, Role.MEMBER, 100, 0) for i, (x, y) in enumerate(around, 1)]
    head = ClusterState(Role.HEAD, 100, 0, head_since=0)
    full, missed = dkmeans.remember({}, {}, table(*members), keep=2)
    heard = table(*members[:2])
    assert assign(0, head, 0, 0, D, heard, CFG, CRIT, pass_no=5).state.role != Role.HEAD
    kept, _ = dkmeans.remember(full, missed, heard, keep=2)
    assert assign(0, head, 0, 0, D, kept, CFG, CRIT, pass_no=5).state.role == Role.HEAD
