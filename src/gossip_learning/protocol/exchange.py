"""How models are exchanged in a gossip step: a strategy per ``gossip.mode``.

* :class:`~.pairwise.Pairwise` — push-pull on a matching (PROPOSE, ACCEPT with model, REPLY with
  model; see :mod:`.pairwise`).
* :class:`Broadcast` — each robot SENDs its model once; every in-range partner merges it.

Both open the step's merge window in their first phase; the agent closes it at FINISH.
:func:`~.pairwise.make_exchange` builds the one a config asks for.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gossip_learning.messages import Kind, Layer, Message
from gossip_learning.protocol.membership import Membership
from gossip_learning.protocol.outbox import Outbox
from gossip_learning.protocol.window import MergeWindow
from gossip_learning.schedule import Phase, PhaseKind
from gossip_learning.transports.base import INTER_TOPIC, cluster_topic

PhaseHandler = Callable[[Phase, int], None]
#: Handles one admitted message; returns a rejection reason, or None when it was used.
MessageHandler = Callable[[Message], "str | None"]
#: What an exchange works with: membership, merge window, outbox, the model, the merge.
Parts = tuple[
    Membership, MergeWindow, Outbox, Callable[[], np.ndarray], Callable[[Message], "str | None"]
]


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
