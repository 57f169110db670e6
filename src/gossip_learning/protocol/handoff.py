"""The heads' hand-off at the end of a round: a head sends its model to its members.

``gossip.handoff``: ``adopt`` (a member takes its head's model), ``merge`` (a member merges it
into its own with cumulative FedAvg) or ``none`` (no hand-off phases are scheduled).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gossip_learning.messages import Kind, Layer, Message, Role
from gossip_learning.protocol.membership import Membership
from gossip_learning.protocol.outbox import Outbox
from gossip_learning.protocol.window import MergeWindow
from gossip_learning.schedule import Phase
from gossip_learning.transports.base import cluster_topic


class HandOff:
    """Head-to-member hand-off of one robot."""

    def __init__(
        self,
        mode: str,
        membership: Membership,
        window: MergeWindow,
        outbox: Outbox,
        model: Callable[[], np.ndarray],
        merge: Callable[[Message], str | None],
    ) -> None:
        self.mode = mode
        self.membership = membership
        self.window = window
        self.outbox = outbox
        self.model = model
        self.merge = merge
        self.held: np.ndarray | None = None  # the head's model, adopted at HEAD_FINISH
        self._held_from = -1  # who sent it (a member that names no head may take one)
        self._conflict = False  # two head models heard in this hand-off: adopt neither

    @property
    def nbytes(self) -> int:
        """Model-sized memory held now."""
        return 0 if self.held is None else self.held.nbytes

    def send(self, phase: Phase, finish: int) -> None:
        """HEAD_SEND: a head with members sends its model; a member in merge mode opens its
        window."""
        self.held = None
        self._conflict = False
        role = self.membership.state.role
        if self.mode == "merge" and role == Role.MEMBER:
            self.window.open(self.model(), float(self.outbox.samples), phase.slot, finish)
        if self.membership.has_members():
            self.outbox.send(
                cluster_topic(self.membership.cluster), Kind.MODEL, layer=Layer.HEAD,
                model=self.model(),
            )  # fmt: skip

    def on_model(self, msg: Message) -> str | None:
        """A HEAD-layer model from this robot's cluster."""
        state = self.membership.state
        if state.role != Role.MEMBER or msg.cluster != state.cluster:
            return "wrong_cluster"
        if self.mode == "adopt":
            if self.held is not None or self._conflict:  # a second head model this hand-off:
                self.held, self._conflict = None, True  # someone forged one; adopt neither
                return "repeat_sender"
            self.held, self._held_from = msg.model, msg.sender
            return None
        if not self.window.is_open_for(msg.step):
            return "late"
        return self.merge(msg)

    def finish(self, slot: int, model: np.ndarray) -> None:
        """HEAD_FINISH: adopt the head's model (into ``model``, in place) or close the merge."""
        if self.held is not None:
            np.copyto(model, self.held)
            self.window.mix_log.append((slot, {self._held_from: 1.0}))
            self.held = None
        self.window.close(slot, model)
