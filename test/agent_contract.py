"""Behaviour every transport must give the agent. Reused by the in-process and rclpy tests.

A harness builds one transport per robot at fixed positions with a unit-disk range, and
``settle()`` waits until everything sent so far has been delivered (a flush in-process; spinning
executors for ROS). Each ``check_*`` function runs one scenario and asserts on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from gossip_learning.config import ClusteringConfig, GossipConfig
from gossip_learning.driver import RoundDriver
from gossip_learning.protocol import AgentSettings, RobotAgent
from gossip_learning.schedule import Phase, PhaseKind, build_schedule
from gossip_learning.transports.base import Transport
from gossip_learning.wire import Role


class Harness(Protocol):
    """Builds transports for robots at ``positions`` that hear each other within ``comm_range``."""

    def transports(self, positions: np.ndarray, comm_range: float) -> list[Transport]: ...

    def settle(self) -> None: ...

    def rejected_frames(self, robot: int) -> int:
        """Frames the transport of ``robot`` (current medium) dropped as undecodable so far."""
        ...


HarnessFactory = Callable[[], Harness]
NUM_PARAMS = 6


def settings(method: str = "bilayer", mode: str = "pairwise", **gossip: object) -> AgentSettings:
    g = GossipConfig(**{"mode": mode, "intra_steps": 1, "inter_steps": 1, **gossip})  # type: ignore[arg-type]
    return AgentSettings(
        method, ClusteringConfig(passes=3, min_cluster_size=1), g, 10.0, 42, NUM_PARAMS
    )


def make_agents(
    harness: Harness, positions: np.ndarray, st: AgentSettings, samples: list[int] | None = None
) -> list[RobotAgent]:
    n = len(positions)
    transports = harness.transports(positions, st.comm_range)
    agents = []
    for i in range(n):
        a = RobotAgent(
            i,
            st,
            transports[i],
            np.full(NUM_PARAMS, float(i), np.float32),
            (samples or [10] * n)[i],
            np.full(2, 0.5, np.float32),
            seed=100 + i,
        )
        a.set_position(*positions[i])
        agents.append(a)
    harness.settle()
    return agents


def run_round(
    harness: Harness, agents: list[RobotAgent], schedule: list[Phase], round_no: int
) -> None:
    """One round through the package's round driver, the harness delivering between phases."""
    RoundDriver(agents, schedule, deliver=harness.settle).run_round(round_no)


def check_flat_pairwise_merges_to_exact_average(harness: Harness) -> None:
    """Two robots in range, flat pairwise gossip: after one step both hold the weighted mean."""
    pos = np.array([[0.0, 0.0], [5.0, 0.0]])
    st = settings("flat", "pairwise", propose_prob=1.0, matching="single")
    agents = make_agents(harness, pos, st, samples=[10, 30])
    # With propose_prob=1 both propose and nobody listens: one shot cannot match them.
    run_round(harness, agents, build_schedule("flat", 3, st.gossip), 1)
    assert np.allclose(agents[0].params, 0.0) and np.allclose(agents[1].params, 1.0)
    st = settings("flat", "pairwise", propose_prob=0.5, matching="single")
    agents = make_agents(harness, pos, st, samples=[10, 30])
    for r in range(1, 30):
        run_round(harness, agents, build_schedule("flat", 3, st.gossip), r)
        if not np.allclose(agents[0].params, 0.0):
            break
    assert np.allclose(agents[0].params, 0.75) and np.allclose(agents[1].params, 0.75)


def check_retry_matches_robots_the_first_shot_left_alone(harness: Harness) -> None:
    """``gossip.matching: retry``: two robots that both propose in the first shot (propose_prob
    1) say they are still free (a broadcast PROPOSE in that shot's REPLY phase); in the second
    shot the lower id proposes to the only free partner and the other accepts: one round
    leaves both at the weighted mean. A third robot out of range hears none of it."""
    pos = np.array([[0.0, 0.0], [5.0, 0.0], [50.0, 50.0]])
    st = settings("flat", "pairwise", propose_prob=1.0, matching="retry", match_attempts=2)
    agents = make_agents(harness, pos, st, samples=[10, 30, 10])
    run_round(harness, agents, build_schedule("flat", 3, st.gossip), 1)
    assert np.allclose(agents[0].params, 0.75) and np.allclose(agents[1].params, 0.75)
    assert np.allclose(agents[2].params, 2.0)
    assert [a.window.exchanges[0][1:] for a in agents] == [
        (True, True),
        (True, True),
        (False, False),
    ]
    assert not any(a.inbox.rejected for a in agents)  # the free notices were all welcome


def check_broadcast_reaches_only_in_range(harness: Harness) -> None:
    """Robot 2 is out of everyone's range: it hears nothing and keeps its model."""
    pos = np.array([[0.0, 0.0], [5.0, 0.0], [50.0, 50.0]])
    st = settings("flat", "broadcast")
    agents = make_agents(harness, pos, st)
    run_round(harness, agents, build_schedule("flat", 3, st.gossip), 1)
    assert np.allclose(agents[0].params, 0.5) and np.allclose(agents[1].params, 0.5)
    assert np.allclose(agents[2].params, 2.0)
    assert len(agents[2].membership.table) == 0 and agents[2].window.merged_total == 0
    assert set(agents[0].membership.table) == {1}


def check_bilayer_two_groups_cluster_and_mix(harness: Harness) -> None:
    """Two groups of 3 in range of each other only through their heads' range: clusters form,
    and after a few rounds every robot's model moves toward the global average."""
    pos = np.array([[0, 0], [3, 0], [0, 3], [8, 0], [11, 0], [8, 3]], dtype=float)
    st = settings("bilayer", "broadcast")
    agents = make_agents(harness, pos, st)
    start_spread = np.ptp([a.params[0] for a in agents])
    sched = build_schedule("bilayer", 3, st.gossip)
    for r in range(1, 6):
        run_round(harness, agents, sched, r)
    heads = [a for a in agents if a.state.role == Role.HEAD]
    assert heads, "no cluster head was elected"
    assert all(a.state.role != Role.NONE for a in agents)
    spread = np.ptp([a.params[0] for a in agents])
    assert spread < 0.5 * start_spread


def check_corrupt_bytes_are_rejected(
    harness: Harness, inject: Callable[[int, str, bytes], None]
) -> None:
    """A frame injected while robot 0's intra-cluster window is open: intact, it is merged (the
    control: robot 0's model moves to the weighted mean); with one byte flipped, the transport
    rejects and counts it and robot 0's model stays where it was."""
    from gossip_learning import wire

    pos = np.array([[0.0, 0.0], [5.0, 0.0]])
    st = settings("flat", "broadcast")
    sched = build_schedule("flat", 3, st.gossip)
    send = next(ph for ph in sched if ph.kind == PhaseKind.SEND)
    intact = wire.encode(
        wire.Message(
            wire.Kind.MODEL,
            sender=1,
            round=1,
            step=send.slot,
            layer=wire.Layer.INTRA,
            cluster=0,
            samples=5,
            model_version=42,
            model=np.full(NUM_PARAMS, 99.0, np.float32),
        )
    )
    flipped = bytearray(intact)
    flipped[-10] ^= 0xFF  # a byte of the model payload

    for frame, merged in ((intact, True), (bytes(flipped), False)):
        agents = make_agents(harness, pos, st, samples=[10, 30])
        # Everyone beacons (robot 0 learns where robot 1 is) and trains; then only robot 0 opens
        # its SEND window. Robot 1 stays silent, so the injected frame is the only model on air.
        everyone = RoundDriver(agents, sched, deliver=harness.settle)
        everyone.begin(1)
        everyone.advance(send.slot - 1)
        robot0 = RoundDriver(agents[:1], sched, deliver=harness.settle)
        robot0.round, robot0.next_slot = 1, send.slot
        robot0.advance(send.slot)
        assert agents[0].window.is_open_for(send.slot), "robot 0's gossip window is not open"
        rejected_before = harness.rejected_frames(0)
        inject(1, "cluster_0", frame)
        harness.settle()
        robot0.advance(robot0.last_slot)
        assert sum(agents[0].inbox.rejected.values()) == 0, dict(agents[0].inbox.rejected)
        if merged:  # 10 samples of 0.0 and 5 samples of 99.0
            assert agents[0].window.merged_total == 1
            np.testing.assert_allclose(agents[0].params, 33.0, rtol=1e-6)
            assert harness.rejected_frames(0) == rejected_before
        else:
            assert agents[0].window.merged_total == 0
            np.testing.assert_array_equal(agents[0].params, np.zeros(NUM_PARAMS, np.float32))
            assert harness.rejected_frames(0) == rejected_before + 1


def _weighted_mean(values: dict[int, float], samples: list[int], senders: set[int]) -> float:
    return sum(samples[j] * values[j] for j in senders) / sum(samples[j] for j in senders)


def check_round_window_merges_post_training_models_once(harness: Harness) -> None:
    """``gossip.window: round``, pairwise retry, three robots in range of each other, eight
    steps: each robot ends at the sample-weighted mean of the models the robots started the
    layer with (no training here), over itself and the distinct partners its one window merged
    (a model that changed between matchings, or a partner merged twice, would move it off
    that mean). The robots meet again in later steps: those repeats are counted, not refused."""
    pos = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    samples = [10, 30, 20]
    st = settings("flat", "pairwise", matching="retry", match_attempts=2, window="round",
                  intra_steps=8)  # fmt: skip
    agents = make_agents(harness, pos, st, samples=samples)
    start = {a.id: float(a.params[0]) for a in agents}
    run_round(harness, agents, build_schedule("flat", 3, st.gossip), 1)
    for a in agents:
        assert len(a.window.mix_log) == 1, a.window.mix_log  # one window for the layer
        senders = set(a.window.mix_log[0][1])
        assert senders == {0, 1, 2}, (a.id, senders)  # eight steps: everyone met everyone
        np.testing.assert_allclose(a.params, _weighted_mean(start, samples, senders), rtol=1e-6)
        assert a.window.merged_total == len(senders) - 1
        assert not a.inbox.rejected, dict(a.inbox.rejected)
        assert len(a.window.exchanges) == 8  # each step still logged for pairs_matched
    assert sum(a.window.repeats for a in agents) > 0  # partners met again and were not re-merged


def check_round_window_broadcast_is_one_hop(harness: Harness) -> None:
    """Broadcast on a line 0 - 1 - 2 (0 and 2 out of range), two steps. One window per round:
    the ends hear only robot 1's post-training model, every step, and merge it once (one hop).
    The step window (the control) lets robot 2's model reach robot 0 through robot 1's
    first-step average."""
    pos = np.array([[0.0, 0.0], [8.0, 0.0], [16.0, 0.0]])
    samples = [10, 10, 10]
    for window in ("round", "step"):
        st = settings("flat", "broadcast", window=window, intra_steps=2)
        agents = make_agents(harness, pos, st, samples=samples)
        run_round(harness, agents, build_schedule("flat", 3, st.gossip), 1)
        got = [float(a.params[0]) for a in agents]
        if window == "round":
            np.testing.assert_allclose(got, [0.5, 1.0, 1.5], rtol=1e-6)
            assert [a.window.repeats for a in agents] == [1, 2, 1]
            assert not any(a.inbox.rejected for a in agents)
        else:  # step 1: 0.5, 1.0, 1.5; step 2: 0.75, 1.0, 1.25
            np.testing.assert_allclose(got, [0.75, 1.0, 1.25], rtol=1e-6)
