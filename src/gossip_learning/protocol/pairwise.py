"""Pairwise push-pull gossip: each robot exchanges models with at most one partner per step.

One shot is three phases: a robot PROPOSEs (with probability ``propose_prob``) to a random
in-range partner; a robot that did not propose ACCEPTs one of the proposals it heard and sends
its model; the proposer REPLYs with its own. Both merge what they received. ``gossip.matching``:

* ``single`` — one shot per step (the paper's rule).
* ``retry`` — ``gossip.match_attempts`` shots per step (``Phase.attempt``), a randomized
  maximal matching by messages only. The first shot is ``single``'s. In each REPLY phase but
  the last, a robot still unmatched (no accepted proposal, no ACCEPT sent) says so: a PROPOSE to
  everyone (receiver BROADCAST, a header-only frame) on its cluster's topic (the inter topic on
  the inter layer). In the next shot an unmatched robot proposes only to partners that said so
  (with ``propose_prob``; with exactly one such partner the lower id proposes and the other
  listens), and a robot that heard no free partner stays quiet. A robot that merged its
  partner's model is done for the step; one whose exchange broke off (a lost REPLY) tries again.
* ``oracle`` — one shot whose partner comes from a :class:`~.ports.Matchmaker` (the simulator's
  central matching): the lower id proposes, the other accepts only that proposal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gossip_learning.config import GossipConfig
from gossip_learning.errors import ConfigError
from gossip_learning.messages import BROADCAST, Kind, Layer, Message
from gossip_learning.protocol.exchange import (
    Broadcast,
    MessageHandler,
    Parts,
    PhaseHandler,
    _Exchange,
)
from gossip_learning.protocol.ports import Matchmaker
from gossip_learning.schedule import Phase, PhaseKind
from gossip_learning.transports.base import INTER_TOPIC, cluster_topic, robot_topic


class Pairwise(_Exchange):
    """Push-pull exchange with at most one matched partner per step."""

    _proposals: dict[int, list[int]]
    _partners: list[int]
    _announced: dict[int, set[int]]  # retry: step -> partners that said they are still free
    _proposed_to: int | None = None
    _accepted: int | None = None
    _expected: int | None = None  # oracle: the partner whose proposal this robot accepts
    _got_accept = False
    _done = False  # merged a partner's model in this step

    def __init__(
        self,
        *parts: Any,
        matching: str = "single",
        attempts: int = 1,
        matchmaker: Matchmaker | None = None,
    ) -> None:
        if matching == "oracle" and matchmaker is None:
            raise ConfigError(
                "gossip.matching",
                "'oracle' is the simulator's central matching; robots that match by messages "
                "(ROS nodes) need 'single' or 'retry'",
            )
        self.matching = matching
        self.attempts = attempts if matching == "retry" else 1
        self.matchmaker = matchmaker
        super().__init__(*parts)

    def phases(self) -> dict[PhaseKind, PhaseHandler]:
        return {
            PhaseKind.PROPOSE: self.propose,
            PhaseKind.ACCEPT: self.accept,
            PhaseKind.REPLY: self.reply,
        }

    def handlers(self) -> dict[Kind, MessageHandler]:
        return {
            Kind.PROPOSE: self.on_propose,
            Kind.ACCEPT: self.on_accept,
            Kind.REPLY: self.on_reply,
        }

    def reset(self) -> None:
        """Forget proposals (new round)."""
        self._proposals = {}
        self._partners = []
        self._announced = {}

    def propose(self, phase: Phase, finish: int) -> None:
        if phase.attempt == 0:  # the step's first shot opens its window
            self._partners = self._open(phase, finish)
            self._done = False
            target = self._first_target(phase)
        else:
            free = self._announced.pop(phase.slot - 1, set())
            target = None if self._done else self._retry_target(free)
        self._proposed_to = target
        self._accepted = None
        self._got_accept = False
        if target is not None:
            self.outbox.send(robot_topic(target), Kind.PROPOSE, target, phase.layer)

    def _first_target(self, phase: Phase) -> int | None:
        self._expected = None
        partners = self._partners
        if not partners:
            return None
        if self.matchmaker is not None:
            me = self.membership.id
            other = self.matchmaker.partner(me, phase.layer, self.outbox.round, phase.slot)
            if other is None or other not in partners:
                return None
            if me > other:
                self._expected = other
                return None
            return other
        if self.rng.random() < self.propose_prob:
            return int(partners[self.rng.integers(len(partners))])
        return None

    def _retry_target(self, announced: set[int]) -> int | None:
        """A later shot of ``retry`` for a robot still unmatched: propose to a partner that said
        it is free (or listen); nobody free in range: stay quiet."""
        free = [p for p in self._partners if p in announced]
        if not free:
            return None
        if len(free) == 1:  # one free partner: the lower id asks, the other listens
            return free[0] if self.membership.id < free[0] else None
        if self.rng.random() < self.propose_prob:
            return int(free[self.rng.integers(len(free))])
        return None

    def accept(self, phase: Phase, _: int) -> None:
        proposals = self._proposals.pop(phase.slot - 1, [])
        if self._proposed_to is not None or self._done or not proposals:
            return
        if self.matchmaker is not None:
            if self._expected not in proposals:
                return
            chosen = int(self._expected)
        else:
            chosen = int(proposals[self.rng.integers(len(proposals))])
        self._accepted = chosen
        self.outbox.send(robot_topic(chosen), Kind.ACCEPT, chosen, phase.layer, model=self.model())

    def reply(self, phase: Phase, _: int) -> None:
        if self._proposed_to is not None and self._got_accept:
            target = self._proposed_to
            self.outbox.send(
                robot_topic(target), Kind.REPLY, target, phase.layer, model=self.model()
            )
        elif (
            phase.attempt + 1 < self.attempts
            and self._accepted is None
            and not self._done
            and self._partners
        ):  # another shot follows: say this robot is still free (a proposal to everyone)
            topic = cluster_topic(self.membership.cluster)
            self.outbox.send(topic if phase.layer == Layer.INTRA else INTER_TOPIC, Kind.PROPOSE,
                             layer=phase.layer)  # fmt: skip

    def on_propose(self, msg: Message) -> str | None:
        if not self.membership.accepts(msg.layer, msg.cluster):
            return "wrong_cluster"
        if msg.receiver == BROADCAST:  # "still free" (retry)
            self._announced.setdefault(msg.step, set()).add(msg.sender)
        else:
            self._proposals.setdefault(msg.step, []).append(msg.sender)
        return None

    def on_accept(self, msg: Message) -> str | None:
        if msg.sender != self._proposed_to or not self.window.is_open_for(msg.step):
            return "unexpected"
        self._got_accept = True
        return self._merged(msg)

    def on_reply(self, msg: Message) -> str | None:
        if msg.sender != self._accepted or not self.window.is_open_for(msg.step):
            return "unexpected"
        return self._merged(msg)

    def _merged(self, msg: Message) -> str | None:
        reason = self.merge(msg)
        self._done = self._done or reason is None
        return reason


def make_exchange(
    gossip: GossipConfig,
    parts: Parts,
    rng: np.random.Generator,
    matchmaker: Matchmaker | None = None,
) -> Pairwise | Broadcast:
    """The exchange ``gossip.mode`` asks for; ``parts``: membership, window, outbox, model and
    merge. ``matchmaker``: the simulator's central matching (used by ``matching: oracle``)."""
    if gossip.mode != "pairwise":
        return Broadcast(*parts, rng, gossip.propose_prob)
    central = matchmaker if gossip.matching == "oracle" else None
    return Pairwise(
        *parts, rng, gossip.propose_prob, matching=gossip.matching,
        attempts=gossip.match_attempts, matchmaker=central,
    )  # fmt: skip
