"""Red team: each attack of issue 11 against one robot, on the in-process transport.

Every test first shows the honest message is used (the control), then that the attack is
refused, counted under its reason, and leaves the robot's model and cluster state alone. The
same rules on the rclpy transport: ``test_ros_contract.py`` (head hijack, forged hand-over) and
``test_ros_nodes.py`` (pose overwrite, unpruned publishers).
"""

from __future__ import annotations

import numpy as np
import pytest

import agent_contract as contract
from gossip_learning.dkmeans import ClusterState
from gossip_learning.protocol import RobotAgent
from gossip_learning.schedule import PhaseKind, build_schedule
from gossip_learning.wire import NO_CLUSTER, Beacon, Kind, Layer, Message, Role
from test_agent_inprocess import InProcessHarness

CLUSTER = 5
HEAD = 0
ROGUE = 9
N = contract.NUM_PARAMS


def _member(handoff: str = "adopt", mode: str = "pairwise") -> tuple[RobotAgent, list]:
    """Robot 1, a member of cluster 5 whose head is robot 0, with robots 0 and 2 (10 samples
    each, declared in their beacons) in its neighbour table, at the start of round 1."""
    h = InProcessHarness()
    pos = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    st = contract.settings("bilayer", mode, handoff=handoff)
    agents = contract.make_agents(h, pos, st)
    a = agents[1]
    a.bounds.norm_ratio = a.bounds.dist_ratio = 0.0  # the checks alone (bounds: test_bounds.py)
    a.begin_round(1)
    a.membership.state = ClusterState(Role.MEMBER, CLUSTER, HEAD, -1, 0)
    a.membership.table = {
        0: Beacon(0.0, 0.0, Role.HEAD, HEAD, 2, id=0, cluster=CLUSTER, samples=10),
        2: Beacon(0.0, 3.0, Role.MEMBER, HEAD, 2, id=2, cluster=CLUSTER, samples=10),
    }
    return a, build_schedule("bilayer", 3, st.gossip)


def _run(a: RobotAgent, sched: list, kind: PhaseKind) -> int:
    phase = next(p for p in sched if p.kind == kind)
    a.run_phase(phase, phase.slot + 1)
    return phase.slot


def _model_msg(kind: Kind, sender: int, step: int, layer: Layer, **kw: object) -> Message:
    fields: dict[str, object] = {
        "receiver": 1 if kind in (Kind.ACCEPT, Kind.REPLY) else 0xFFFFFFFF,
        "round": 1, "step": step, "layer": layer, "cluster": CLUSTER, "samples": 10,
        "model_version": 42, "model": np.full(N, 7.0, np.float32),
    }  # fmt: skip
    fields.update(kw)
    return Message(kind, sender=sender, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("sender", [HEAD, ROGUE, 2])
def test_head_model_only_from_the_head_it_knows(sender: int) -> None:
    a, sched = _member()
    step = _run(a, sched, PhaseKind.HEAD_SEND)
    a.handle(_model_msg(Kind.MODEL, sender, step, Layer.HEAD, model=np.full(N, 1e3, np.float32)))
    _run(a, sched, PhaseKind.HEAD_FINISH)
    if sender == HEAD:  # the control: the real head's model is adopted
        assert np.allclose(a.params, 1e3) and not a.inbox.rejected
    else:
        assert a.inbox.rejected == {"not_my_head": 1}
        assert np.allclose(a.params, 1.0)


@pytest.mark.parametrize("sender", [HEAD, ROGUE, 2])
def test_handover_only_from_the_head_it_knows(sender: int) -> None:
    a, sched = _member()
    a.handle(Message(Kind.HANDOVER, sender=sender, receiver=1, round=1, layer=Layer.CLUSTER,
                     cluster=CLUSTER))  # fmt: skip
    _run(a, sched, PhaseKind.BEACON)
    if sender == HEAD:
        assert a.state.role == Role.HEAD
    else:
        assert a.state.role == Role.MEMBER and a.state.head == HEAD
        assert a.inbox.rejected == {"not_my_head": 1}


def _intra_window(a: RobotAgent, sched: list) -> int:
    """Open robot 1's first intra-cluster step (it listens: no proposal)."""
    a.exchange.propose_prob = 0.0  # type: ignore[attr-defined]
    phase = next(p for p in sched if p.kind == PhaseKind.PROPOSE and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 3)
    return phase.slot


def test_sample_counts_are_bounded_by_the_cap_and_the_beacons() -> None:
    a, sched = _member(mode="broadcast")
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 1)
    for samples in (2**32 - 1, 11):  # over the configured cap; over what robot 2 declared
        a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA, samples=samples))
    assert a.inbox.rejected == {"too_many_samples": 1, "samples_over_declared": 1}
    a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA, samples=10))  # the control
    a.run_phase(next(p for p in sched if p.slot == phase.slot + 1), -1)
    assert np.allclose(a.params, (10 * 1.0 + 10 * 7.0) / 20)


def test_a_huge_finite_model_is_refused_and_the_swarm_stays_finite() -> None:
    a, sched = _member(mode="broadcast")
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 1)
    a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA, model=np.full(N, 3e38, np.float32)))
    a.run_phase(next(p for p in sched if p.slot == phase.slot + 1), -1)
    assert a.inbox.rejected == {"norm_bound": 1}
    assert np.allclose(a.params, 1.0)


def _robot_3_merged_rogue_refused(a: RobotAgent, sched: list) -> None:
    """In the first intra step, robot 3's model is merged and a never-heard robot's refused."""
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 1)
    a.handle(_model_msg(Kind.MODEL, 3, phase.slot, Layer.INTRA))
    a.handle(_model_msg(Kind.MODEL, ROGUE, phase.slot, Layer.INTRA))
    a.run_phase(next(p for p in sched if p.slot == phase.slot + 1), -1)
    assert a.inbox.rejected == {"unknown_sender": 1}
    assert np.allclose(a.params, (10 * 1.0 + 10 * 7.0) / 20)


@pytest.mark.parametrize("kind", [Kind.MODEL, Kind.PROPOSE])
def test_messages_from_robots_never_heard_are_refused(kind: Kind) -> None:
    a, sched = _member(mode="broadcast" if kind == Kind.MODEL else "pairwise")
    if kind == Kind.MODEL:
        phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
        a.run_phase(phase, phase.slot + 1)
        a.handle(_model_msg(Kind.MODEL, ROGUE, phase.slot, Layer.INTRA))
        a.run_phase(next(p for p in sched if p.slot == phase.slot + 1), -1)
        assert np.allclose(a.params, 1.0)
    else:
        step = _intra_window(a, sched)
        a.handle(Message(Kind.PROPOSE, sender=ROGUE, receiver=1, round=1, step=step,
                         layer=Layer.INTRA, cluster=CLUSTER))  # fmt: skip
        assert not a.exchange._proposals  # type: ignore[attr-defined]
    assert a.inbox.rejected == {"unknown_sender": 1}


def test_a_neighbour_whose_final_beacon_was_lost_is_not_a_stranger() -> None:
    """Robot 3 beaconed in an earlier pass of this round but its final beacon was lost: its model
    is merged; a robot never heard this round is still refused (unknown_sender)."""
    a, sched = _member(mode="broadcast")
    b3 = Beacon(3.0, 3.0, Role.MEMBER, HEAD, 2, id=3, cluster=CLUSTER, samples=10)
    final = dict(a.membership.table)
    a.membership.hear(0, 3, CLUSTER, b3)  # heard in pass 0 ...
    a.membership.assign(1, 3.0, 0.0, np.zeros(0))
    a.membership.table = final  # ... but not in the final beacons
    _robot_3_merged_rogue_refused(a, sched)


def test_a_proposal_flood_counts_one_proposal_per_sender_and_step() -> None:
    a, sched = _member()
    step = _intra_window(a, sched)
    for _ in range(50):
        a.handle(Message(Kind.PROPOSE, sender=2, receiver=1, round=1, step=step,
                         layer=Layer.INTRA, cluster=CLUSTER))  # fmt: skip
    assert a.exchange._proposals == {step: [2]}  # type: ignore[attr-defined]
    # the second is a sender's copy (gossip.repeat_loss): dropped, not refused; the rest refused
    assert a.inbox.copies == 1 and a.inbox.rejected == {"duplicate_proposal": 48}


def test_a_second_model_in_one_name_is_flagged_not_a_harmless_duplicate() -> None:
    a, sched = _member(mode="broadcast")
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 1)
    a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA))
    a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA, model=np.zeros(N, np.float32)))
    assert a.inbox.rejected == {"repeat_sender": 1}


def test_checks_off_is_todays_protocol() -> None:
    """``defence.checks: false`` keeps the old rules (what the robustness table's "no defence"
    rows run): a rogue's head model is adopted."""
    a, sched = _member()
    a.inbox.checks = False
    step = _run(a, sched, PhaseKind.HEAD_SEND)
    a.handle(_model_msg(Kind.MODEL, ROGUE, step, Layer.HEAD))
    _run(a, sched, PhaseKind.HEAD_FINISH)
    assert np.allclose(a.params, 7.0)


def test_a_model_from_another_cluster_than_its_beacon_said_is_refused() -> None:
    a, sched = _member(mode="broadcast")
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 1)
    a.membership.table[2] = Beacon(0.0, 3.0, Role.MEMBER, 7, 2, id=2, cluster=7, samples=10)
    a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA))
    assert a.inbox.rejected == {"cluster_mismatch": 1}


def test_a_sender_that_declared_one_sample_may_not_claim_two() -> None:
    """The declared bound holds from one sample up (0 declares nothing: no bound)."""
    a, sched = _member(mode="broadcast")
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 1)
    a.membership.table[2] = Beacon(0.0, 3.0, Role.MEMBER, HEAD, 2, id=2, cluster=CLUSTER, samples=1)
    a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA, samples=2))
    assert a.inbox.rejected == {"samples_over_declared": 1}


def _heard_earlier(a: RobotAgent, beacon: Beacon) -> None:
    """``beacon`` heard in a DK-means pass of this round, not in the final beacons; robot 1's
    own cluster state and final table stay as :func:`_member` set them."""
    state, final = a.membership.state, dict(a.membership.table)
    a.membership.hear(0, beacon.id, beacon.cluster, beacon)
    a.membership.assign(1, 3.0, 0.0, np.zeros(0))
    a.membership.state, a.membership.table = state, final
    a.membership._missed = {}  # the final table was heard in full: nothing kept from memory


@pytest.mark.parametrize("earlier", [Role.MEMBER, Role.NONE])
def test_a_proposal_from_a_robot_that_changed_cluster_after_its_last_heard_beacon(
    earlier: Role,
) -> None:
    """Under loss: robot 3's beacons of the last passes were lost, the one heard named another
    cluster (or none); it has joined cluster 5 since and proposes there. That is no forgery
    (the old rule refused it as cluster_mismatch). A robot whose final beacon names another
    cluster is still refused."""
    a, sched = _member()
    cluster = 7 if earlier == Role.MEMBER else NO_CLUSTER
    _heard_earlier(a, Beacon(3.0, 3.0, earlier, 7, 2, id=3, cluster=cluster, samples=10))
    a.membership.table[2] = Beacon(0.0, 3.0, Role.MEMBER, 7, 2, id=2, cluster=7, samples=10)
    step = _intra_window(a, sched)
    for sender in (3, 2):
        a.handle(Message(Kind.PROPOSE, sender=sender, receiver=1, round=1, step=step,
                         layer=Layer.INTRA, cluster=CLUSTER))  # fmt: skip
    assert a.exchange._proposals == {step: [3]}  # type: ignore[attr-defined]
    assert a.inbox.rejected == {"cluster_mismatch": 1}


@pytest.mark.parametrize("kind", [Kind.PROPOSE, Kind.MODEL])
def test_a_member_that_left_its_cluster_at_settle_gossips_unclustered(kind: Kind) -> None:
    """Under loss (issue 20, b+c): robot 2's final beacon named it a member of cluster 7, then
    its head's final beacon was lost and it left the cluster at settle. Unclustered robot 1
    takes its proposal (and its model) for no cluster (the old rule refused them as
    cluster_mismatch: most of b+c's refusals). A head never leaves at settle: robot 0's, whose
    final beacon named it head of cluster 7, is still refused."""
    a, sched = _member(mode="pairwise" if kind == Kind.PROPOSE else "broadcast")
    a.membership.state = ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 0)
    a.membership.table = {
        0: Beacon(0.0, 0.0, Role.HEAD, 0, 2, id=0, cluster=7, samples=10),
        2: Beacon(0.0, 3.0, Role.MEMBER, 0, 2, id=2, cluster=7, samples=10),
    }
    if kind == Kind.PROPOSE:
        step = _intra_window(a, sched)
        for sender in (2, 0):
            a.handle(Message(Kind.PROPOSE, sender=sender, receiver=1, round=1, step=step,
                             layer=Layer.INTRA, cluster=NO_CLUSTER))  # fmt: skip
        assert a.exchange._proposals == {step: [2]}  # type: ignore[attr-defined]
    else:
        phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
        a.run_phase(phase, phase.slot + 1)
        for sender in (2, 0):
            a.handle(_model_msg(Kind.MODEL, sender, phase.slot, Layer.INTRA, cluster=NO_CLUSTER))
        a.run_phase(next(p for p in sched if p.slot == phase.slot + 1), -1)
        assert np.allclose(a.params, (10 * 1.0 + 10 * 7.0) / 20)
    assert a.inbox.rejected == {"cluster_mismatch": 1}


def test_no_final_beacon_heard_the_last_pass_table_is_not_checked_for_clusters() -> None:
    """Robot 1 heard none of the final beacons: its table is still the last pass's, where robot 3
    was in cluster 7. Robot 3's model for cluster 5 is merged (the old rule took that table for
    the final one: cluster_mismatch); a robot never heard this round is still refused."""
    a, sched = _member(mode="broadcast")
    state = a.membership.state
    b3 = Beacon(3.0, 3.0, Role.MEMBER, 7, 2, id=3, cluster=7, samples=10)
    a.membership.hear(0, 3, 7, b3)
    a.membership.assign(1, 3.0, 0.0, np.zeros(0))
    a.membership.state = state
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.membership.settle(phase.slot)  # no final beacon was heard
    assert a.membership.table[3] is b3  # with the neighbours kept through missed beacons
    _robot_3_merged_rogue_refused(a, sched)


def test_a_member_of_head_0_takes_no_head_model_from_another_head_of_its_cluster() -> None:
    """Robot 1 names its head (robot 0: an id of 0 names a head, as any id from 0 does). Robot
    4 beaconed this round as head of cluster 5 too: its head-layer model is refused."""
    a, sched = _member()
    _heard_earlier(a, Beacon(3.0, 3.0, Role.HEAD, 4, 2, id=4, cluster=CLUSTER, samples=10))
    step = _run(a, sched, PhaseKind.HEAD_SEND)
    a.handle(_model_msg(Kind.MODEL, 4, step, Layer.HEAD))
    _run(a, sched, PhaseKind.HEAD_FINISH)
    assert a.inbox.rejected == {"not_my_head": 1}
    assert np.allclose(a.params, 1.0)


@pytest.mark.parametrize("sender", [4, 2, ROGUE])
def test_a_member_that_names_no_head_takes_the_model_of_a_head_of_its_cluster(sender: int) -> None:
    """Robot 1's head's final beacon was lost: it stays in cluster 5 naming no head. Robot 4
    beaconed this round as head of cluster 5: its head-layer model is adopted (the old rule
    refused it: not_my_head) and logged as robot 4's. A member (robot 2) or a robot never heard
    is still refused."""
    a, sched = _member()
    _heard_earlier(a, Beacon(3.0, 3.0, Role.HEAD, 4, 2, id=4, cluster=CLUSTER, samples=10))
    a.membership.state = ClusterState(Role.MEMBER, CLUSTER, -1, -1, 0)
    step = _run(a, sched, PhaseKind.HEAD_SEND)
    a.handle(_model_msg(Kind.MODEL, sender, step, Layer.HEAD, model=np.full(N, 1e3, np.float32)))
    _run(a, sched, PhaseKind.HEAD_FINISH)
    if sender == 4:
        assert np.allclose(a.params, 1e3) and not a.inbox.rejected
        assert a.window.mix_log[-1][1] == {4: 1.0}  # type: ignore[attr-defined]
    else:
        assert a.inbox.rejected == {"not_my_head": 1}
        assert np.allclose(a.params, 1.0)
