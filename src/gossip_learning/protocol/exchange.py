"""How models are exchanged in a gossip step: a strategy per ``gossip.mode``.

* :class:`Pairwise` — push-pull on a distributed random matching: PROPOSE to a random in-range
  partner (with probability ``propose_prob``), a robot that did not propose ACCEPTs one proposal
  and sends its model, the proposer REPLYs with its own; both merge what they received.
* :class:`Broadcast` — each robot SENDs its model once; every in-range partner merges it.

Both open the step's merge window in their first phase; the agent closes it at FINISH.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gossip_learning.messages import Kind, Layer, Message
from gossip_learning.protocol.membership import Membership
from gossip_learning.protocol.outbox import Outbox
from gossip_learning.protocol.window import MergeWindow
from gossip_learning.schedule import Phase, PhaseKind
from gossip_learning.transports.base import INTER_TOPIC, cluster_topic, robot_topic

PhaseHandler = Callable[[Phase, int], None]
#: Handles one admitted message; returns a rejection reason, or None when it was used.
MessageHandler = Callable[[Message], "str | None"]


class _Exchange:
    """What both strategies share: the parts they work with and the window's opening."""

    def __init__(
        self,
        membership: Membership,
        window: MergeWindow,
        outbox: Outbox,
        model: Callable[[], np.ndarray],
        merge: Callable[[Message], str | None],
        rng: np.random.Generator,
        propose_prob: float,
    ) -> None:
        self.membership = membership
        self.window = window
        self.outbox = outbox
        self.model = model
        self.merge = merge
        self.rng = rng
        self.propose_prob = propose_prob
        self.reset()

    def reset(self) -> None:
        """Forget the last round's state."""

    def on_model(self, msg: Message) -> str | None:
        """An intra- or inter-cluster MODEL broadcast."""
        if not self.membership.accepts(msg.layer, msg.cluster):
            return "wrong_cluster"
        return self._merge_if_open(msg)

    def _open(self, phase: Phase, finish: int) -> list[int]:
        self.window.open(self.model(), float(self.outbox.samples), phase.slot, finish)
        partners = self.membership.partners(phase.layer)
        self.window.has_partner = bool(partners)
        return partners

    def _merge_if_open(self, msg: Message) -> str | None:
        if not self.window.is_open_for(msg.step):
            return "late"
        return self.merge(msg)


class Pairwise(_Exchange):
    """Push-pull exchange with one matched partner per step."""

    _proposals: dict[int, list[int]]
    _proposed_to: int | None = None
    _accepted: int | None = None
    _got_accept = False

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

    def propose(self, phase: Phase, finish: int) -> None:
        partners = self._open(phase, finish)
        self._proposed_to = None
        self._accepted = None
        self._got_accept = False
        if partners and self.rng.random() < self.propose_prob:
            target = int(partners[self.rng.integers(len(partners))])
            self._proposed_to = target
            self.outbox.send(robot_topic(target), Kind.PROPOSE, target, phase.layer)

    def accept(self, phase: Phase, _: int) -> None:
        proposals = self._proposals.pop(phase.slot - 1, [])
        if self._proposed_to is not None or not proposals:
            return
        chosen = int(proposals[self.rng.integers(len(proposals))])
        self._accepted = chosen
        self.outbox.send(robot_topic(chosen), Kind.ACCEPT, chosen, phase.layer, model=self.model())

    def reply(self, phase: Phase, _: int) -> None:
        if self._proposed_to is not None and self._got_accept:
            target = self._proposed_to
            self.outbox.send(
                robot_topic(target), Kind.REPLY, target, phase.layer, model=self.model()
            )

    def on_propose(self, msg: Message) -> str | None:
        if not self.membership.accepts(msg.layer, msg.cluster):
            return "wrong_cluster"
        self._proposals.setdefault(msg.step, []).append(msg.sender)
        return None

    def on_accept(self, msg: Message) -> str | None:
        if msg.sender != self._proposed_to or not self.window.is_open_for(msg.step):
            return "unexpected"
        self._got_accept = True
        return self.merge(msg)

    def on_reply(self, msg: Message) -> str | None:
        if msg.sender != self._accepted or not self.window.is_open_for(msg.step):
            return "unexpected"
        return self.merge(msg)


class Broadcast(_Exchange):
    """One transmission per robot and step, heard by every in-range partner."""

    def phases(self) -> dict[PhaseKind, PhaseHandler]:
        return {PhaseKind.SEND: self.send}

    def handlers(self) -> dict[Kind, MessageHandler]:
        return {}

    def send(self, phase: Phase, finish: int) -> None:
        if self._open(phase, finish):
            topic = (
                cluster_topic(self.membership.cluster)
                if phase.layer == Layer.INTRA
                else INTER_TOPIC
            )
            self.outbox.send(topic, Kind.MODEL, layer=phase.layer, model=self.model())
