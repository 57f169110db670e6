"""The phases of one round and a clock that maps time onto them.

A round: DK-means passes (BEACON, ASSIGN) × passes, FINAL_BEACON, TRAIN, then per gossip step
either (PROPOSE, ACCEPT, REPLY) × attempts, FINISH for pairwise push-pull (one attempt with
``gossip.matching`` single or oracle, ``gossip.match_attempts`` with retry) or (SEND, FINISH) for
broadcast, intra-cluster steps first, then inter-cluster steps, then the heads' hand-off
(HEAD_SEND, HEAD_FINISH), and END. Messages sent in one phase are heard before the next phase
starts: the in-process runner flushes between phases; ROS nodes give each phase a time slot, so
more matching attempts make a longer round (:class:`RoundClock` derives it from the schedule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from gossip_learning.config import GossipConfig, TimingConfig
from gossip_learning.messages import Layer


class PhaseKind(Enum):
    """What an agent does in a phase."""

    BEACON = "beacon"
    ASSIGN = "assign"
    FINAL_BEACON = "final_beacon"
    TRAIN = "train"
    PROPOSE = "propose"
    ACCEPT = "accept"
    REPLY = "reply"
    SEND = "send"
    FINISH = "finish"
    HEAD_SEND = "head_send"
    HEAD_FINISH = "head_finish"
    END = "end"


CLUSTER_KINDS = {PhaseKind.BEACON, PhaseKind.ASSIGN, PhaseKind.FINAL_BEACON}
GOSSIP_KINDS = {
    PhaseKind.PROPOSE,
    PhaseKind.ACCEPT,
    PhaseKind.REPLY,
    PhaseKind.SEND,
    PhaseKind.FINISH,
    PhaseKind.HEAD_SEND,
    PhaseKind.HEAD_FINISH,
}


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase: its kind, layer, pass/step number, position in the round (``slot``) and, for
    PROPOSE/ACCEPT/REPLY, which matching attempt of the step it belongs to (from 0)."""

    kind: PhaseKind
    layer: Layer
    index: int
    slot: int
    attempt: int = 0


def match_attempts(gossip: GossipConfig) -> int:
    """Propose/accept/reply attempts per pairwise gossip step."""
    return gossip.match_attempts if gossip.matching == "retry" else 1


def build_schedule(method: str, passes: int, gossip: GossipConfig) -> list[Phase]:
    """Phases of one round for ``method`` (bilayer, flat, cfl, local)."""
    spec: list[tuple[PhaseKind, Layer, int, int]] = []
    if method == "bilayer":
        for p in range(passes):
            spec += [(PhaseKind.BEACON, Layer.CLUSTER, p, 0)]
            spec += [(PhaseKind.ASSIGN, Layer.CLUSTER, p, 0)]
    if method in ("bilayer", "flat"):
        spec.append((PhaseKind.FINAL_BEACON, Layer.CLUSTER, 0, 0))
    spec.append((PhaseKind.TRAIN, Layer.NONE, 0, 0))
    if method in ("bilayer", "flat"):
        layers = [(Layer.INTRA, gossip.intra_steps)]
        if method == "bilayer":
            layers.append((Layer.INTER, gossip.inter_steps))
        shot = (PhaseKind.PROPOSE, PhaseKind.ACCEPT, PhaseKind.REPLY)
        for layer, steps in layers:
            for s in range(steps):
                if gossip.mode == "pairwise":
                    spec += [(k, layer, s, a) for a in range(match_attempts(gossip)) for k in shot]
                else:
                    spec.append((PhaseKind.SEND, layer, s, 0))
                spec.append((PhaseKind.FINISH, layer, s, 0))
        if method == "bilayer" and gossip.handoff != "none":
            spec += [
                (PhaseKind.HEAD_SEND, Layer.HEAD, 0, 0),
                (PhaseKind.HEAD_FINISH, Layer.HEAD, 0, 0),
            ]
    spec.append((PhaseKind.END, Layer.NONE, 0, 0))
    return [Phase(kind, layer, index, slot, a) for slot, (kind, layer, index, a) in enumerate(spec)]


def finish_slots(schedule: list[Phase]) -> list[int]:
    """For each slot, the slot of the FINISH (or HEAD_FINISH / END) that closes its step."""
    out = [-1] * len(schedule)
    pending: list[int] = []
    for ph in schedule:
        pending.append(ph.slot)
        if ph.kind in (PhaseKind.FINISH, PhaseKind.HEAD_FINISH, PhaseKind.END):
            for s in pending:
                out[s] = ph.slot
            pending = []
    return out


def phase_duration(phase: Phase, timing: TimingConfig) -> float:
    """Seconds a phase lasts on a clock."""
    if phase.kind in CLUSTER_KINDS:
        return timing.cluster_phase_s
    if phase.kind == PhaseKind.TRAIN:
        return timing.train_phase_s
    if phase.kind == PhaseKind.END:
        return timing.end_phase_s
    return timing.gossip_phase_s


class RoundClock:
    """Maps a time in seconds onto (round, phase) for robots that share a clock (ROS time).

    Round 1 starts at ``start``; every robot with the same schedule, timing and start agrees on
    the phase without exchanging a message.
    """

    def __init__(self, schedule: list[Phase], timing: TimingConfig, start: float = 0.0) -> None:
        if not schedule:
            raise ValueError("empty schedule")
        self.schedule = schedule
        self.start = start
        self.offsets: list[float] = []
        t = 0.0
        for ph in schedule:
            self.offsets.append(t)
            t += phase_duration(ph, timing)
        self.period = t

    def locate(self, now: float) -> tuple[int, int]:
        """Return (round number from 1, slot) at time ``now``; round 0 before the start."""
        if now < self.start:
            return 0, 0
        elapsed = now - self.start
        rnd = math.floor(elapsed / self.period)
        within = elapsed - rnd * self.period
        slot = 0
        for i, off in enumerate(self.offsets):
            if within >= off:
                slot = i
        return rnd + 1, slot

    def phase_start(self, round_no: int, slot: int) -> float:
        """Time at which ``slot`` of ``round_no`` begins."""
        return self.start + (round_no - 1) * self.period + self.offsets[slot]
