"""Rounds anchored on what a robot hears (protocol.clock_sync): robots whose clocks disagree by
more than a phase end up in the same phase, and each jump is forward, bounded and counted."""

from __future__ import annotations

import heapq

import pytest

from gossip_learning.config import GossipConfig, TimingConfig
from gossip_learning.protocol.clock_sync import PhaseAnchor
from gossip_learning.schedule import RoundClock, build_schedule

TIMING = TimingConfig(
    cluster_phase_s=0.2, train_phase_s=2.0, gossip_phase_s=0.25, end_phase_s=0.3
)  # config/ros_swarm.yaml's phases


def _clock() -> RoundClock:
    return RoundClock(build_schedule("bilayer", 3, GossipConfig(matching="single")), TIMING, 10.0)


def _on_time(offsets: list[float], max_jump_s: float, rounds: int = 3) -> tuple[float, list]:
    """Robots on one medium, each with its own clock offset; each sends one frame when a phase
    starts on its clock (at its next 50 ms tick, as a ROS node does), heard 5 ms later by all
    others. Returns the share of frames heard while the receiver was in the frame's phase (from
    round 2 on) and the anchors."""
    clock = _clock()
    anchors = [PhaseAnchor(clock.start, clock.period, clock.offsets, max_jump_s) for _ in offsets]
    last = [(0, 0)] * len(offsets)
    queue: list[tuple[float, int, int, int]] = []  # (true time, receiver, round, slot)
    hits = total = 0
    t, end = clock.start - 1.0, clock.start + rounds * clock.period
    while t < end:
        while queue and queue[0][0] <= t:
            _, rx, rnd, slot = heapq.heappop(queue)
            local = t + offsets[rx] + anchors[rx].correction
            if rnd >= 2:
                total += 1
                hits += clock.locate(local) == (rnd, slot)
            anchors[rx].observe(rnd, slot, local)
        for i, off in enumerate(offsets):
            now = clock.locate(t + off + anchors[i].correction)
            if now != last[i] and now[0] >= 1:
                last[i] = now
                for rx in range(len(offsets)):
                    if rx != i:
                        heapq.heappush(queue, (t + 0.005, rx, *now))
        t += 0.05
    return hits / total, anchors


def test_robots_with_a_quarter_second_of_skew_meet_in_the_same_phase() -> None:
    offsets = [-0.125, -0.06, 0.0, 0.03, 0.125]  # 250 ms between the extremes
    unsynced, _ = _on_time(offsets, 0.0)
    synced, anchors = _on_time(offsets, 1.0)
    assert unsynced < 0.75  # frames of the extremes land in another phase
    assert synced > 0.97, synced
    # everyone followed the most advanced clock, to within the ticks at both ends (the sender
    # sends at its first tick in the phase, the receiver reads at its next tick) and the transit
    final = [o + a.correction for o, a in zip(offsets, anchors, strict=True)]
    assert max(final) - min(final) < 0.1
    assert anchors[offsets.index(0.125)].correction == 0.0  # the fastest clock never moved
    assert all(a.jumps > 0 for o, a in zip(offsets, anchors, strict=True) if o < 0.125)


def test_jumps_are_forward_bounded_and_counted() -> None:
    clock = _clock()
    a = PhaseAnchor(clock.start, clock.period, clock.offsets, max_jump_s=0.5)
    start = clock.phase_start(2, 3)
    assert a.observe(2, 3, start + 0.1) == 0.0  # the sender is behind: the clock stays
    assert a.observe(2, 3, start - 0.2) == pytest.approx(0.2)  # ahead: follow it
    assert a.observe(2, 3, start - 0.7) == 0.0  # too far ahead: ignored, counted
    assert a.observe(0, 0, 0.0) == 0.0 and a.observe(2, 99, 0.0) == 0.0  # no such phase
    assert a.counters() == {"clock_correction_s": 0.2, "clock_jumps": 1, "clock_ignored": 1}
    off = PhaseAnchor(clock.start, clock.period, clock.offsets, max_jump_s=0.0)
    assert off.observe(2, 3, start - 0.2) == 0.0 and not off.enabled
    with pytest.raises(ValueError, match="clock_sync_max_s"):
        PhaseAnchor(clock.start, clock.period, clock.offsets, max_jump_s=-1.0)
