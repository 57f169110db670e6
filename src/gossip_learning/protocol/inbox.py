"""The agent's inbox: which heard messages the protocol may use, and why the others are not.

Every message that is not used is counted in :attr:`Inbox.rejected` under a reason and never
merged. Beacons and proposals one round early (a robot whose clock runs ahead) are kept for the
next round, up to :data:`MAX_EARLY`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from gossip_learning.messages import BROADCAST, Kind, Message

MAX_EARLY = 4096
MODEL_KINDS = (Kind.ACCEPT, Kind.REPLY, Kind.MODEL)


class Inbox:
    """Admission rules for one robot's incoming messages."""

    def __init__(self, robot_id: int, model_version: int, num_params: int) -> None:
        self.robot_id = robot_id
        self.model_version = model_version
        self.num_params = num_params
        self.rejected: Counter[str] = Counter()
        self._early: list[Message] = []
        self._finite = np.empty(num_params, dtype=bool)  # scratch of the finiteness check

    @property
    def nbytes(self) -> int:
        """Model-sized scratch memory the inbox holds."""
        return self._finite.nbytes

    def reject(self, reason: str) -> None:
        """Count one unused message under ``reason``."""
        self.rejected[reason] += 1

    def admit(self, msg: Message, round_no: int, slot: int) -> bool:
        """Whether ``msg`` may be dispatched now (a refused one is counted or kept for later)."""
        if msg.sender == self.robot_id:
            self.reject("own")
            return False
        if msg.receiver not in (BROADCAST, self.robot_id):
            self.reject("not_for_me")
            return False
        if msg.round != round_no:
            early = msg.round == round_no + 1 and msg.kind in (Kind.BEACON, Kind.PROPOSE)
            if early and len(self._early) < MAX_EARLY:
                self._early.append(msg)
            else:
                self.reject("stale_round" if msg.round < round_no else "early_round")
            return False
        carries_model = msg.kind in MODEL_KINDS
        if carries_model and not self._model_ok(msg):
            return False
        if msg.step < slot and not carries_model:
            self.reject("late")
            return False
        return True

    def _model_ok(self, msg: Message) -> bool:
        m = msg.model
        if msg.model_version != self.model_version:
            self.reject("model_version")
            return False
        if m is None or m.shape != (self.num_params,) or not np.isfinite(m, out=self._finite).all():
            self.reject("bad_model")
            return False
        if msg.samples <= 0:
            self.reject("bad_samples")
            return False
        return True

    def release_early(self) -> list[Message]:
        """The messages kept for the round that starts now."""
        early, self._early = self._early, []
        return early
