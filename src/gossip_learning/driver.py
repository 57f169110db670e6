"""The one round driver: runs the schedule's phases on agents, with a delivery hook between.

* in-process: ``deliver`` flushes the simulated medium, so what is sent in a phase is heard
  before the next one;
* a ROS node: one agent, ``deliver`` is a no-op (the executor delivers between clock ticks) and
  the node calls :meth:`RoundDriver.advance_to` with the (round, slot) its clock says it is;
* tests: ``deliver`` waits until the transports under test have delivered.

``after`` hooks run after a phase of a given kind was delivered (the simulator measures the
spread of the trained models and runs the CFL server there).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from gossip_learning.protocol import RobotAgent
from gossip_learning.schedule import CLUSTER_KINDS, GOSSIP_KINDS, Phase, PhaseKind, finish_slots

Hook = Callable[[Phase], None]


def phase_category(kind: PhaseKind) -> str:
    """Which wall-time bucket a phase counts in: cluster, train or gossip."""
    if kind in CLUSTER_KINDS:
        return "cluster"
    return "gossip" if kind in GOSSIP_KINDS else "train"


class RoundDriver:
    """Walks ``agents`` through ``schedule`` round after round."""

    def __init__(
        self,
        agents: Sequence[RobotAgent],
        schedule: Sequence[Phase],
        deliver: Callable[[], object] | None = None,
        after: dict[PhaseKind, Hook] | None = None,
    ) -> None:
        if not schedule:
            raise ValueError("empty schedule")
        self.agents = list(agents)
        self.schedule = list(schedule)
        self.finish = finish_slots(self.schedule)
        self.deliver = deliver
        self.after = after or {}
        self.round = 0
        self.next_slot = 0
        self.late_phases = 0
        self.last_round: int | None = None  # advance_to never goes past this round
        self.times: dict[str, float] = defaultdict(float)

    @property
    def last_slot(self) -> int:
        """Slot of the round's last phase (END)."""
        return len(self.schedule) - 1

    def begin(self, round_no: int) -> None:
        """Start ``round_no`` on every agent."""
        self.round = round_no
        self.next_slot = 0
        self.times = defaultdict(float)
        for a in self.agents:
            a.begin_round(round_no)

    def advance(self, slot: int, late: bool = False) -> list[Phase]:
        """Run every phase of the current round up to and including ``slot``."""
        ran = []
        while self.next_slot <= min(slot, self.last_slot):
            phase = self.schedule[self.next_slot]
            t = time.perf_counter()
            for a in self.agents:
                a.run_phase(phase, self.finish[phase.slot])
            if self.deliver is not None:
                self.deliver()
            hook = self.after.get(phase.kind)
            if hook is not None:
                hook(phase)
            self.times[phase_category(phase.kind)] += time.perf_counter() - t
            self.late_phases += late
            self.next_slot += 1
            ran.append(phase)
        return ran

    def run_round(self, round_no: int) -> None:
        """One whole round: begin, then every phase."""
        self.begin(round_no)
        self.advance(self.last_slot)

    @property
    def round_done(self) -> bool:
        """Whether the current round's last phase has run."""
        return self.next_slot > self.last_slot

    def advance_to(self, round_no: int, slot: int) -> list[Phase]:
        """Catch up with a clock at (``round_no``, ``slot``): finish a round left behind (its
        phases count as late), start the clock's round, run its phases up to ``slot``. Returns
        the phases that ran; an END among them closed a round. Past :attr:`last_round` it
        only finishes that round."""
        if self.last_round is not None and round_no > self.last_round:
            round_no, slot = self.last_round, self.last_slot
        ran: list[Phase] = []
        while self.round < round_no:
            if self.round > 0 and not self.round_done:
                ran += self.advance(self.last_slot, late=True)
            self.begin(self.round + 1 if self.round else round_no)
        if self.round == round_no:
            ran += self.advance(slot)
        return ran
