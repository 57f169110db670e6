"""Round phases anchored on what a robot hears: follow the most advanced clock of the fleet.

Robots on separate computers agree on a round's phases only as well as their clocks agree. Every
frame names the (round, slot) its sender was in when it sent it, and a robot sends a phase's
frames when that phase starts on its own clock (beacons, proposals, accepts, replies, models:
all at the start of their phase, at most one clock tick later). So a frame of (round ``r``, slot
``s``) heard at local time ``t`` says the sender's clock had reached the start of that phase no
later than the moment it was heard: if ``t`` is before the phase's start on the local clock, the
sender's clock runs ahead by at least the difference. Transit and processing delays only make the
difference smaller, never larger.

:class:`PhaseAnchor` moves the local clock forward by that difference: every robot follows the
most advanced clock it hears, directly or through the robots that already follow it (each
relayed frame carries the advanced phase on). Within the first beacon phases of a round the whole
connected fleet runs on the fastest clock, to within a clock tick and the transit delay. The
clock only moves forward, so no phase runs twice; a robot behind skips the rest of the phase it
was in, as a late robot does. A jump larger than ``max_jump_s`` is ignored (a clock that far off
is broken, or a frame that old is a replay), and ``max_jump_s = 0`` turns anchoring off, so each
robot keeps its own clock. Pure: it needs the round's phase offsets and period, never ROS.
"""

from __future__ import annotations

from collections.abc import Sequence


class PhaseAnchor:
    """Correction (seconds, >= 0) to add to a robot's own clock.

    ``start`` is round 1's start, ``period`` a round's length and ``offsets`` each slot's start
    within a round (those of :class:`~gossip_learning.schedule.RoundClock`).
    """

    def __init__(
        self, start: float, period: float, offsets: Sequence[float], max_jump_s: float
    ) -> None:
        if period <= 0 or not offsets:
            raise ValueError("a round needs a positive period and at least one phase")
        if max_jump_s < 0:
            raise ValueError(f"timing.clock_sync_max_s must be >= 0, got {max_jump_s}")
        self.start = start
        self.period = period
        self.offsets = tuple(offsets)
        self.max_jump_s = max_jump_s
        self.correction = 0.0  # seconds added to the local clock so far
        self.jumps = 0  # how many times the clock was moved
        self.ignored = 0  # frames that would have moved it by more than max_jump_s

    @property
    def enabled(self) -> bool:
        return self.max_jump_s > 0

    def phase_start(self, round_no: int, slot: int) -> float:
        """When ``slot`` of ``round_no`` starts on the (corrected) clock."""
        return self.start + (round_no - 1) * self.period + self.offsets[slot]

    def observe(self, round_no: int, slot: int, now: float) -> float:
        """A frame of (``round_no``, ``slot``) heard at ``now`` (the corrected local clock).
        Moves the clock forward if its sender was ahead; returns the jump (0.0 if none)."""
        if not self.enabled or round_no < 1 or not 0 <= slot < len(self.offsets):
            return 0.0
        ahead = self.phase_start(round_no, slot) - now
        if ahead <= 0:
            return 0.0
        if ahead > self.max_jump_s:
            self.ignored += 1
            return 0.0
        self.correction += ahead
        self.jumps += 1
        return ahead

    def counters(self) -> dict[str, float]:
        """For a robot's status: the total correction, the jumps and the frames ignored."""
        return {
            "clock_correction_s": round(self.correction, 6),
            "clock_jumps": self.jumps,
            "clock_ignored": self.ignored,
        }
