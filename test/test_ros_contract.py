"""The agent contract (test/agent_contract.py) on the rclpy transport, plus rclpy-only checks.

Every robot gets its own node and RosTransport in one Context on a private domain; ``settle()``
spins the executor until no frame has arrived for a short while.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")

from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import UInt8MultiArray

import agent_contract as contract
from gossip_learning.channel import UnitDisk
from gossip_learning.transports.base import Transport
from gossip_learning.transports.ros import INBOXES, RosTransport, dds_topic, inbox_topic
from gossip_learning.wire import BROADCAST, Beacon, Kind, Message, Role, encode
from test_ros_nodes import ros_context  # noqa: F401  (fixture)

pytestmark = pytest.mark.ros


class RosHarness:
    """One node + RosTransport per robot, all on one single-threaded executor."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.executor = SingleThreadedExecutor(context=context)
        self.nodes: list[Node] = []
        self.ros: list[RosTransport] = []
        self.current: list[RosTransport] = []  # the transports of the latest medium
        self.namespace = "contract0"
        self._made = 0

    def transports(self, positions: np.ndarray, comm_range: float) -> list[Transport]:
        self._made += 1
        self.namespace = f"contract{self._made}"  # a fresh medium per call, like the in-process one
        out: list[Transport] = []
        self.current = []
        for i, (x, y) in enumerate(positions):
            node = Node(f"robot_{i}_{self._made}", context=self.context)
            t = RosTransport(node, i, UnitDisk(comm_range), self.namespace)
            t.set_position(x, y)
            self.nodes.append(node)
            self.ros.append(t)
            self.current.append(t)
            self.executor.add_node(node)
            out.append(t)
        self._wait_for_discovery()
        return out

    def _wait_for_discovery(self) -> None:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def settle(self) -> None:
        """Spin until 60 ms pass with no frame arriving anywhere (at most 3 s)."""
        end = time.monotonic() + 3.0
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)
            now_total = sum(t.received for t in self.ros)
            if now_total != last:
                last, quiet_since = now_total, time.monotonic()
            elif time.monotonic() - quiet_since > 0.06:
                return

    def rejected_frames(self, robot: int) -> int:
        c = self.current[robot].counters()  # every rejection but a wrong address is a bad frame
        return int(c["rejected"] - c["reasons"].get("not_addressed_to_me", 0))

    def inject(self, sender: int, topic: str, frame: bytes) -> None:
        """Raw bytes on agent topic ``topic`` of the current medium, as if from ``sender``."""
        node = self.nodes[-1]
        pub = node.create_publisher(UInt8MultiArray, f"/{self.namespace}/{dds_topic(topic)}", 10)
        end = time.monotonic() + 1.0
        while pub.get_subscription_count() == 0 and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)
        msg = UInt8MultiArray()
        msg.data = frame
        pub.publish(msg)

    def close(self) -> None:
        for t in self.ros:
            t.close()
        for n in self.nodes:
            self.executor.remove_node(n)
            n.destroy_node()
        self.executor.shutdown()


@pytest.fixture
def harness(ros_context: Context) -> Iterator[RosHarness]:  # noqa: F811
    h = RosHarness(ros_context)
    yield h
    h.close()


def test_flat_pairwise_exact_average(harness: RosHarness) -> None:
    contract.check_flat_pairwise_merges_to_exact_average(harness)


def test_retry_matches_whoever_the_first_shot_left(harness: RosHarness) -> None:
    contract.check_retry_matches_robots_the_first_shot_left_alone(harness)


def test_broadcast_only_in_range(harness: RosHarness) -> None:
    contract.check_broadcast_reaches_only_in_range(harness)
    assert harness.ros[-1].counters()["delivered"] == 0  # robot 2 heard nothing
    assert harness.ros[-1].counters()["reasons"].get("out_of_range", 0) > 0


def test_round_window_merges_post_training_models_once(harness: RosHarness) -> None:
    contract.check_round_window_merges_post_training_models_once(harness)


def test_round_window_broadcast_is_one_hop(harness: RosHarness) -> None:
    contract.check_round_window_broadcast_is_one_hop(harness)


def test_bilayer_clusters_and_mixes(harness: RosHarness) -> None:
    contract.check_bilayer_two_groups_cluster_and_mix(harness)


def test_corrupt_frame_rejected_and_counted(harness: RosHarness) -> None:
    contract.check_corrupt_bytes_are_rejected(harness, harness.inject)
    # the corrupt frame's medium: robot 0 rejected exactly that frame and dropped nothing else
    assert harness.current[0].counters()["reasons"] == {"crc": 1}


def test_foreign_address_and_garbage_never_reach_the_handler(harness: RosHarness) -> None:
    pos = np.array([[0.0, 0.0], [5.0, 0.0]])
    t0, _t1 = harness.transports(pos, 10.0)
    got: list[Message] = []
    t0.subscribe("robot_0", got.append)
    t0.subscribe("beacon", got.append)
    harness._wait_for_discovery()
    beacon = Message(Kind.BEACON, sender=1, beacon=Beacon(5.0, 0.0, Role.NONE, -1, 1))
    harness.inject(1, "beacon", encode(beacon))
    harness.inject(1, "robot_0", encode(Message(Kind.PROPOSE, sender=1, receiver=7)))
    harness.inject(1, "robot_0", b"\x00garbage")
    harness.inject(1, "robot_0", encode(Message(Kind.PROPOSE, sender=1, receiver=0)))
    harness.settle()
    assert [m.kind for m in got] == [Kind.BEACON, Kind.PROPOSE]
    assert got[1].receiver == 0 and got[0].receiver == BROADCAST
    reasons = harness.ros[0].counters()["reasons"]
    assert reasons == {"not_addressed_to_me": 1, "too_short": 1}


def _one_robot(harness: RosHarness, **kw: object) -> tuple[RosTransport, list[Message]]:
    """Robot 0 alone on a fresh medium, with transport options ``kw``, hearing the beacon topic."""
    harness._made += 1
    harness.namespace = f"contract{harness._made}"
    node = Node(f"robot_0_{harness._made}", context=harness.context)
    t = RosTransport(node, 0, UnitDisk(10.0), harness.namespace, **kw)  # type: ignore[arg-type]
    t.set_position(0.0, 0.0)
    harness.nodes.append(node)
    harness.ros.append(t)
    harness.executor.add_node(node)
    got: list[Message] = []
    t.subscribe("beacon", got.append)
    harness._wait_for_discovery()
    return t, got


def _beacon(sender: int, x: float = 5.0) -> Message:
    return Message(Kind.BEACON, sender=sender, beacon=Beacon(x, 0.0, Role.NONE, -1, 1))


def test_forged_robot_ids_keep_no_state(harness: RosHarness) -> None:
    """A sender id outside the swarm is refused before a pose or a publisher is kept for it."""
    t, got = _one_robot(harness, num_robots=3)
    pubs_before = set(t._pubs)
    for forged in (3, 77, 2**31):
        harness.inject(forged, "beacon", encode(_beacon(forged)))
    harness.inject(2, "beacon", encode(_beacon(2)))
    harness.settle()
    assert [m.sender for m in got] == [2]
    assert set(t.poses) == {2}
    assert set(t._pubs) - pubs_before == {inbox_topic(2)}
    assert t.counters()["reasons"] == {"unknown_robot_id": 3}


def test_silent_senders_are_forgotten(harness: RosHarness) -> None:
    """Poses of senders not heard for peer_timeout_s are dropped (their inbox's publisher is
    shared and stays)."""
    t, _ = _one_robot(harness, num_robots=10, peer_timeout_s=0.3)
    harness.inject(1, "beacon", encode(_beacon(1)))
    harness.settle()
    assert set(t.poses) == {1} and inbox_topic(1) in t._pubs
    time.sleep(0.4)
    harness.inject(2, "beacon", encode(_beacon(2)))  # hearing anyone prunes the silent ones
    harness.settle()
    assert set(t.poses) == {2} and t.forgotten == 1


def test_addressed_publishers_stay_bounded_however_many_peers(harness: RosHarness) -> None:
    """Hearing 3 x INBOXES peers gives a robot one publisher per inbox, not one per peer."""
    n = 3 * INBOXES
    t, _ = _one_robot(harness, num_robots=n + 1)
    for sender in range(1, n + 1):
        harness.inject(sender, "beacon", encode(_beacon(sender)))
    harness.settle()
    assert len(t.poses) == n
    assert set(t._pubs) == {"beacon", *(inbox_topic(i) for i in range(INBOXES))}


def test_mail_for_an_inbox_mate_is_passed_over_and_counted(harness: RosHarness) -> None:
    """Robot 0 shares its inbox with robot INBOXES: that robot's proposal reaches robot 0's
    subscription and is passed over undecoded (counted in inbox_others, no rejection); robot
    0's own gets through."""
    t, got = _one_robot(harness, num_robots=2 * INBOXES)
    t.subscribe("robot_0", got.append)
    harness._wait_for_discovery()
    harness.inject(1, "beacon", encode(_beacon(1)))
    for receiver in (INBOXES, 0):
        harness.inject(1, "robot_0", encode(Message(Kind.PROPOSE, sender=1, receiver=receiver)))
    harness.settle()
    assert [(m.kind, m.receiver) for m in got] == [(Kind.BEACON, BROADCAST), (Kind.PROPOSE, 0)]
    assert t.received == 3 and t.counters()["rejected"] == 0
    assert t.counters()["inbox_others"] == 1


def test_a_forged_far_pose_cannot_move_a_real_robot_out_of_range(harness: RosHarness) -> None:
    """Without a key, a beacon in robot 1's name claiming a pose robot 1 cannot have reached is
    refused (implausible_pose) and not kept, so robot 1's own traffic still gets through."""
    from gossip_learning.pose_check import PoseCheck

    t, got = _one_robot(harness, num_robots=3, pose_check=PoseCheck(max_speed=1.0, slack_m=1.0))
    harness.inject(1, "beacon", encode(_beacon(1, x=5.0)))
    harness.settle()
    harness.inject(1, "beacon", encode(_beacon(1, x=500.0)))  # the forger: out of everyone's range
    harness.settle()
    harness.inject(1, "beacon", encode(_beacon(1, x=5.25)))  # the real robot, where it was
    harness.settle()
    assert [m.beacon.x for m in got if m.beacon is not None] == [5.0, 5.25]
    assert t.poses[1] == (5.25, 0.0)
    assert t.counters()["reasons"] == {"implausible_pose": 1}


def test_a_forger_who_speaks_first_does_not_lock_a_real_robot_out(harness: RosHarness) -> None:
    """Without a key, a forger speaks in robot 1's name first, from out of range, and keeps
    beaconing between robot 1's beacons. Robot 1's beacons confirm a track of their own after
    three (the forger's never replaces it), so from the third on robot 1 is heard; the forger's
    beacons claim a pose out of range and are not."""
    from gossip_learning.pose_check import PoseCheck

    t, got = _one_robot(harness, num_robots=3, pose_check=PoseCheck(max_speed=1.0, slack_m=1.0))
    for k in range(5):
        harness.inject(1, "beacon", encode(_beacon(1, x=500.0)))  # the forger
        harness.settle()
        harness.inject(1, "beacon", encode(_beacon(1, x=5.0 + 0.01 * k)))  # robot 1
        harness.settle()
    assert [round(m.beacon.x, 2) for m in got if m.beacon is not None] == [5.02, 5.03, 5.04]
    assert t.counters()["reasons"] == {"implausible_pose": 2, "out_of_range": 5}


def test_fleet_key_refuses_frames_without_it(harness: RosHarness) -> None:
    """With the fleet key only sealed frames of the fleet get through; others are counted."""
    from gossip_learning.auth import FleetAuth

    t, got = _one_robot(harness, auth=FleetAuth("a fleet key of 16+ chars", 7))
    sender = FleetAuth("a fleet key of 16+ chars", 7)
    stranger = FleetAuth("another key of 16+ chars", 7)
    harness.inject(1, "beacon", encode(_beacon(1)))  # version 1: no key at all
    harness.inject(2, "beacon", encode(_beacon(2), stranger))
    harness.inject(3, "beacon", encode(_beacon(3), sender))
    harness.settle()
    assert [m.sender for m in got] == [3]
    reasons = t.counters()["reasons"]
    assert sum(reasons.values()) == 2 and set(reasons) <= {"unauthenticated", "bad_tag"}, reasons


def test_a_frame_from_a_clock_ahead_moves_the_robots_clock(harness: RosHarness) -> None:
    """robot_node's transport follows a sender whose phases run ahead (protocol.clock_sync):
    a beacon of a phase that starts 1.5 s from now on this robot's clock moves it on by that,
    less the time the frame took."""
    from gossip_learning.protocol.clock_sync import PhaseAnchor

    offsets, period = [0.0, 0.2, 0.4, 0.6], 1.0
    anchor = PhaseAnchor(0.0, period, offsets, max_jump_s=2.0)
    t, got = _one_robot(harness, anchor=anchor)
    before = t.now()
    anchor.start = before + 1.5 - period - offsets[1]  # (round 2, slot 1) starts in 1.5 s
    beacon = Message(Kind.BEACON, sender=1, round=2, step=1,
                     beacon=Beacon(5.0, 0.0, Role.NONE, -1, 1))  # fmt: skip
    harness.inject(1, "beacon", encode(beacon))
    harness.settle()
    assert got and anchor.jumps == 1
    assert 0.1 < anchor.correction <= 1.5
    assert t.now() - before >= 1.5  # now() includes the correction
