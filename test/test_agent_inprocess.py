"""The agent contract on the in-process transport, plus agent-level rejection rules."""

from __future__ import annotations

import numpy as np

import agent_contract as contract
from gossip_learning.channel import UnitDisk
from gossip_learning.transports.base import Transport
from gossip_learning.transports.inprocess import InProcessNetwork
from gossip_learning.wire import Kind, Layer, Message


class InProcessHarness:
    def __init__(self) -> None:
        self.network: InProcessNetwork | None = None

    def transports(self, positions: np.ndarray, comm_range: float) -> list[Transport]:
        self.network = InProcessNetwork(
            len(positions), UnitDisk(comm_range), np.random.default_rng(0)
        )
        self.network.set_positions(positions)
        return [self.network.endpoint(i) for i in range(len(positions))]

    def settle(self) -> None:
        assert self.network is not None
        self.network.flush()

    def rejected_frames(self, robot: int) -> int:
        # The medium decodes each frame once for all receivers: its count is robot 0's too.
        assert self.network is not None
        return self.network.stats.rejected


def test_flat_pairwise_exact_average() -> None:
    contract.check_flat_pairwise_merges_to_exact_average(InProcessHarness())


def test_retry_matches_whoever_the_first_shot_left() -> None:
    contract.check_retry_matches_robots_the_first_shot_left_alone(InProcessHarness())


def test_broadcast_only_in_range() -> None:
    contract.check_broadcast_reaches_only_in_range(InProcessHarness())


def test_bilayer_clusters_and_mixes() -> None:
    contract.check_bilayer_two_groups_cluster_and_mix(InProcessHarness())


def test_corrupt_frame_rejected_and_counted() -> None:
    h = InProcessHarness()
    contract.check_corrupt_bytes_are_rejected(h, lambda s, t, f: h.network.inject(s, t, f))  # type: ignore[union-attr]
    assert h.network is not None and h.network.stats.rejected == 1
    assert h.network.stats.delivered > 0  # the beacons of the same run did get through


def test_foreign_and_stale_models_are_counted_never_merged() -> None:
    h = InProcessHarness()
    pos = np.array([[0.0, 0.0], [5.0, 0.0]])
    st = contract.settings("flat", "broadcast")
    agents = contract.make_agents(h, pos, st)
    a0 = agents[0]
    a0.begin_round(1)
    bad = [
        Message(
            Kind.MODEL,
            sender=1,
            round=1,
            layer=Layer.INTRA,
            cluster=0,
            samples=5,
            model_version=7,
            model=np.ones(contract.NUM_PARAMS, np.float32),
        ),  # other head architecture
        Message(
            Kind.MODEL,
            sender=1,
            round=1,
            layer=Layer.INTRA,
            cluster=0,
            samples=5,
            model_version=42,
            model=np.ones(3, np.float32),
        ),  # wrong size
        Message(
            Kind.MODEL,
            sender=1,
            round=0,
            layer=Layer.INTRA,
            cluster=0,
            samples=5,
            model_version=42,
            model=np.ones(contract.NUM_PARAMS, np.float32),
        ),  # last round
        Message(
            Kind.MODEL,
            sender=1,
            round=1,
            layer=Layer.INTRA,
            cluster=0,
            samples=5,
            model_version=42,
            model=np.full(contract.NUM_PARAMS, np.nan, np.float32),
        ),  # not finite
    ]
    for m in bad:
        a0.handle(m)
    assert sum(a0.inbox.rejected.values()) == 4
    assert a0.inbox.rejected["model_version"] == 1 and a0.inbox.rejected["stale_round"] == 1
    assert np.allclose(a0.params, 0.0)


def test_next_round_beacon_from_a_faster_clock_is_kept_not_lost() -> None:
    h = InProcessHarness()
    pos = np.array([[0.0, 0.0], [5.0, 0.0]])
    agents = contract.make_agents(h, pos, contract.settings("flat", "broadcast"))
    a0 = agents[0]
    a0.begin_round(1)
    from gossip_learning.wire import Beacon, Role

    early = Message(
        Kind.BEACON,
        sender=1,
        round=2,
        step=0,
        layer=Layer.CLUSTER,
        cluster=0,
        beacon=Beacon(5.0, 0.0, Role.MEMBER, -1, 1),
    )
    a0.handle(early)
    a0.handle(
        Message(
            Kind.BEACON,
            sender=1,
            round=3,
            step=0,
            layer=Layer.CLUSTER,
            cluster=0,
            beacon=Beacon(5.0, 0.0, Role.MEMBER, -1, 1),
        )
    )
    assert a0.inbox.rejected["early_round"] == 1 and sum(a0.inbox.rejected.values()) == 1
    a0.begin_round(2)
    assert 1 in a0.membership._heard[0]


def test_in_process_decode_failures_are_counted_by_reason() -> None:
    from gossip_learning import wire

    h = InProcessHarness()
    pos = np.array([[0.0, 0.0], [5.0, 0.0]])
    contract.make_agents(h, pos, contract.settings("flat", "broadcast"))
    assert h.network is not None
    good = wire.encode(Message(Kind.PROPOSE, sender=1, receiver=0, round=1))
    h.network.inject(1, "robot_0", good[:-1] + bytes([good[-1] ^ 1]))
    h.network.inject(1, "robot_0", b"XY" + good[2:])
    h.settle()
    assert h.network.stats.rejected == 2
    assert h.network.stats.reasons == {"crc": 1, "foreign": 1}


def test_round_window_merges_post_training_models_once() -> None:
    contract.check_round_window_merges_post_training_models_once(InProcessHarness())


def test_round_window_broadcast_is_one_hop() -> None:
    contract.check_round_window_broadcast_is_one_hop(InProcessHarness())
