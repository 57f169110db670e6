"""A robot process's DDS endpoints stay bounded, however many peers its robots meet (issue 18).

Every DDS endpoint is announced to, and kept by, the participants that match it (and a discovery
server), so endpoints that pile up with the peers addressed and the clusters joined make a robot
process grow round after round as the robots move. On real rclpy, in the private loopback-only
domain of test_ros_nodes.py: the per-process host (``swarm_node`` hosting one robot, what
``ros2 launch`` starts per robot) addresses every robot through at most ``INBOXES`` publishers,
drops the topic of a cluster it left, and a robot_node's transport and a hosted robot reach each
other through the same shared inbox.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install ros-jazzy-rclpy)")
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import UInt8MultiArray  # noqa: E402

import test_ros_nodes  # noqa: E402
from gossip_learning.channel import UnitDisk  # noqa: E402
from gossip_learning.config import load_config  # noqa: E402
from gossip_learning.nodes.host import SharedHost  # noqa: E402
from gossip_learning.transports.ros import INBOXES, RosTransport, inbox_topic, qos_for  # noqa: E402
from gossip_learning.wire import Beacon, Kind, Message, Role  # noqa: E402
from test_ros_nodes import spin_until, write_config  # noqa: E402

pytestmark = pytest.mark.ros
ros_context = test_ros_nodes.ros_context  # the same private-domain fixture


def _robot_process(ctx: Context, path: str, robot: int) -> SharedHost:
    """One robot's host, as ``swarm_node robot_ids:=[robot]`` makes it."""
    node = Node(f"robot_{robot}_host", context=ctx)
    bus = Node(f"robot_{robot}_bus", context=ctx, start_parameter_services=False)
    return SharedHost(node, bus, load_config(path), 0, [robot], epoch=time.time() + 60.0)


def _graph(host: SharedHost) -> tuple[list[str], list[str]]:
    """The swarm topics the host's bus node publishes and subscribes to, as the ROS graph has
    them."""
    name = host.bus.get_name()
    pubs = host.bus.get_publisher_names_and_types_by_node(name, "/")
    subs = host.bus.get_subscriber_names_and_types_by_node(name, "/")
    return (
        sorted(t for t, _ in pubs if t.startswith("/swarm/")),
        sorted(t for t, _ in subs if t.startswith("/swarm/")),
    )


def test_addressing_every_peer_of_60_takes_at_most_inboxes_publishers(
    ros_context: Context, tmp_path: Path
) -> None:
    n = 60
    host = _robot_process(ros_context, write_config(tmp_path, n, 1), 0)
    tr = host.transports[0]
    for peer in range(1, n):  # a proposal to every other robot of the swarm
        tr.publish(f"robot_{peer}", Message(Kind.PROPOSE, sender=0, receiver=peer))
    pubs, subs = host.dds_topics
    inboxes = [inbox_topic(i) for i in range(INBOXES)]
    own_cluster = {"unclustered"}  # where a robot is before clustering
    assert sorted(set(pubs) - own_cluster) == sorted(["beacon", "inter", *inboxes])
    assert inbox_topic(0) in subs and sorted(set(subs) - own_cluster) == sorted(
        ["beacon", "inter", inbox_topic(0)]
    )
    assert _graph(host)[0] == [f"/swarm/{t}" for t in pubs]
    host.close()


def test_a_robot_process_drops_the_topic_of_a_cluster_it_left(
    ros_context: Context, tmp_path: Path
) -> None:
    host = _robot_process(ros_context, write_config(tmp_path, 10, 1), 3)
    tr = host.transports[0]
    for cluster in range(20):  # DK-means puts robot 3 in one cluster after another
        topic = f"cluster_{100 + cluster}"
        tr.subscribe(topic, lambda _: None)
        tr.publish(topic, Message(Kind.PROPOSE, sender=3))
        host.drain()  # between phases: nothing is destroyed while frames are being taken
        tr.unsubscribe(topic)
    tr.subscribe("cluster_7", lambda _: None)
    host.drain()
    pubs, subs = host.dds_topics
    assert [t for t in pubs + subs if t.startswith("cluster_1")] == []
    assert "cluster_7" in subs and "cluster_7" in pubs
    graph_pubs, graph_subs = _graph(host)
    assert [t for t in graph_pubs + graph_subs if t.startswith("/swarm/cluster_1")] == []
    assert graph_subs == [f"/swarm/{t}" for t in subs]
    host.close()


def test_a_robot_node_and_a_hosted_robot_sharing_an_inbox_reach_each_other(
    ros_context: Context, tmp_path: Path
) -> None:
    """Robots 0 (hosted) and INBOXES (robot_node's transport) share inbox_0: each one's
    proposal reaches the other; the copy each one's own subscription also gets is passed over
    and counted (inbox_others), never rejected."""
    mate = INBOXES
    host = _robot_process(ros_context, write_config(tmp_path, 2 * INBOXES, 1), 0)
    node = Node("robot_node_side", context=ros_context)
    other = RosTransport(node, mate, UnitDisk(60.0), "swarm", num_robots=2 * INBOXES)
    other.set_position(*host.mobility.positions[0])
    heard: dict[int, list[Message]] = {0: [], mate: []}
    host.transports[0].subscribe("robot_0", heard[0].append)
    other.subscribe(f"robot_{mate}", heard[mate].append)
    other.subscribe("beacon", heard[mate].append)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)

    def spin() -> None:
        ex.spin_once(timeout_sec=0.02)
        host.drain()

    try:
        spin_until(spin, lambda: False, 1.0)  # discovery
        x, y = host.mobility.positions[0]
        beacon = Beacon(float(x), float(y), Role.NONE, -1, 1)
        host.transports[0].publish("beacon", Message(Kind.BEACON, sender=0, beacon=beacon))
        other.publish("beacon", Message(Kind.BEACON, sender=mate, beacon=beacon))
        spin_until(spin, lambda: len(heard[mate]) >= 1, 5.0)
        other.publish("robot_0", Message(Kind.PROPOSE, sender=mate, receiver=0))
        host.transports[0].publish(f"robot_{mate}", Message(Kind.PROPOSE, sender=0, receiver=mate))
        assert spin_until(spin, lambda: len(heard[0]) >= 1 and len(heard[mate]) >= 2, 10.0)
        spin_until(spin, lambda: False, 0.5)  # every copy arrived
    finally:
        ex.shutdown()
    assert [(m.kind, m.sender) for m in heard[0]] == [(Kind.PROPOSE, mate)]
    assert [(m.kind, m.sender) for m in heard[mate]] == [(Kind.BEACON, 0), (Kind.PROPOSE, 0)]
    assert host.transports[0].stats.rejected == 0 and other.counters()["rejected"] == 0
    assert host.inbox_others == 1 and other.counters()["inbox_others"] == 1
    other.close()
    host.close()


def test_a_robot_node_drops_the_publisher_of_a_cluster_it_left_after_sending_its_queue(
    ros_context: Context,
) -> None:
    """robot_node's transport (plant, gazebo): leaving a cluster takes its subscription and
    publisher; a frame still queued for a match is sent first (a listener hears it), and the
    beacon's and inboxes' endpoints stay."""
    node = Node("robot_node_clusters", context=ros_context)
    tr = RosTransport(node, 3, UnitDisk(60.0), "swarm", match_timeout=2.0)
    elsewhere = Context()  # another participant, as another robot's process: matched later
    rclpy.init(context=elsewhere, domain_id=ros_context.get_domain_id())
    listener = Node("cluster_listener", context=elsewhere)
    heard: list[bytes] = []
    listener.create_subscription(
        UInt8MultiArray, "/swarm/cluster_100", lambda m: heard.append(bytes(m.data)),
        qos_for("cluster_100"),
    )  # fmt: skip
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    listening = SingleThreadedExecutor(context=elsewhere)
    listening.add_node(listener)

    def spin() -> None:
        ex.spin_once(timeout_sec=0.01)
        listening.spin_once(timeout_sec=0.01)

    try:
        tr.subscribe("beacon", lambda _: None)
        tr.subscribe("robot_3", lambda _: None)
        for cluster in range(100, 120):
            topic = f"cluster_{cluster}"
            # a member's last word to its cluster, queued (nobody matched yet), as it leaves
            tr.publish(topic, Message(Kind.PROPOSE, sender=3))
            tr.unsubscribe(topic)

        def endpoints() -> tuple[list[str], list[str]]:
            name = node.get_name()
            return (
                sorted(t for t, _ in node.get_publisher_names_and_types_by_node(name, "/")),
                sorted(t for t, _ in node.get_subscriber_names_and_types_by_node(name, "/")),
            )

        def clusters() -> list[str]:
            pubs, subs = endpoints()
            return [t for t in pubs + subs if "cluster_" in t]

        # the queues go out once matched or after match_timeout; then the publishers go
        spin_until(spin, lambda: heard and not clusters(), 10.0)
    finally:
        ex.shutdown()
        listening.shutdown()
        rclpy.shutdown(context=elsewhere)
    assert len(heard) == 1 and clusters() == []
    pubs, subs = endpoints()
    assert "/swarm/beacon" in pubs and f"/swarm/{inbox_topic(3)}" in subs
    assert tr.counters()["sent"] == 20
    tr.close()
