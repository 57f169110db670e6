"""The agent's inbox: which heard messages the protocol may use, and why the others are not.

Every message that is not used is counted in :attr:`Inbox.rejected` under a reason and never
merged. With ``defence.checks`` (the default) :meth:`Inbox.vet` also applies the rules that need no
key: hand-overs and head-layer models only from the head the robot knows (a hand-over also from a
robot whose beacon this round declared it head of the cluster handed over; a head-layer model also,
for a member that names no head, from such a robot), models and proposals only from robots heard
this round, from the cluster their final beacons declared (a robot heard only in an earlier pass
may have changed cluster since; one that names none may have left it at settle), sample counts no
larger than the configured cap or what the sender declared in its beacons, one proposal per sender
and step. Beacons and proposals one round early (a robot whose clock runs ahead) are kept for the
next round, up to :data:`MAX_EARLY`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from operator import attrgetter
from types import MappingProxyType

import numpy as np

from gossip_learning.config import DefenceConfig
from gossip_learning.messages import BROADCAST, NO_CLUSTER, Beacon, Kind, Layer, Message, Role

MAX_EARLY = 4096
MODEL_KINDS = (Kind.ACCEPT, Kind.REPLY, Kind.MODEL)
LEFT = (NO_CLUSTER, Role.MEMBER)  # a member that left its cluster at settle (Inbox.vet)
_SENDER = attrgetter("sender")
_BEACON = attrgetter("beacon")
_NONE: Mapping[int, Beacon] = MappingProxyType({})

#: Frames remembered to spot a sender's second copy; past it the oldest are forgotten (a late
#: copy then meets the usual checks). Fixed: memory does not grow with the neighbours.
COPY_RING = 512


class Inbox:
    """Admission rules for one robot's incoming messages."""

    def __init__(
        self, robot_id: int, model_version: int, num_params: int,
        defence: DefenceConfig | None = None,
    ) -> None:  # fmt: skip
        defence = defence or DefenceConfig()
        self.checks = defence.checks
        self.max_samples = defence.max_samples
        self._proposers: set[tuple[int, int]] = set()  # (step, sender) proposals this round
        self.robot_id = robot_id
        self.model_version = model_version
        self.num_params = num_params
        self.rejected: Counter[str] = Counter()
        self._early: list[Message] = []
        self._finite = np.empty(num_params, dtype=bool)  # scratch of the finiteness check
        self.copies = 0  # second copies of frames dropped (gossip.repeat_loss): not refused
        # is_copy's ring: 64-bit digests, times heard, and the slot (counted) last heard in
        self._copy_at, self._slots = (0, -1), 0
        self._digests = np.zeros(COPY_RING, np.uint64)
        self._heard = np.zeros(COPY_RING, np.int64)
        self._heard_in = np.full(COPY_RING, -2, np.int64)
        self._next = 0

    @property
    def nbytes(self) -> int:
        """Model-sized scratch memory the inbox holds."""
        return self._finite.nbytes

    def reject(self, reason: str) -> None:
        """Count one unused message under ``reason``."""
        self.rejected[reason] += 1

    def is_current_beacon(self, msg: Message, round_no: int, slot: int) -> bool:
        """A beacon of this round, not late, from another robot: kept without further checks."""
        return (
            msg.kind is Kind.BEACON
            and msg.round == round_no
            and msg.step >= slot
            and msg.sender != self.robot_id
            and msg.receiver == BROADCAST
            and msg.beacon is not None
        )

    def current_beacons(
        self, msgs: list[Message], round_no: int, slot: int
    ) -> tuple[list[int], list[Beacon]] | None:
        """(senders, beacons) of a batch of broadcasts sharing kind, round and step if every
        one is a current beacon from another robot, else None (then check them one by one)."""
        first = msgs[0]
        if first.kind is not Kind.BEACON or first.round != round_no or first.step < slot:
            return None
        senders = list(map(_SENDER, msgs))
        beacons = list(map(_BEACON, msgs))
        if self.robot_id in senders or not all(beacons):
            return None
        return senders, beacons

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
        if self.checks and msg.samples > self.max_samples:
            self.reject("too_many_samples")
            return False
        return True

    def screen(
        self,
        msg: Message,
        round_no: int,
        slot: int,
        head: int,
        table: Mapping[int, Beacon],
        earlier: Mapping[int, Beacon] = _NONE,
    ) -> bool:
        """:meth:`admit`, then (with checks on) :meth:`vet`; a refusal is counted. A second
        copy of a frame (:meth:`is_copy`) is dropped first."""
        if self.is_copy(msg, round_no, slot) or not self.admit(msg, round_no, slot):
            return False
        refused = self.vet(msg, head, table, earlier) if self.checks else None
        if refused is not None:
            self.reject(refused)
        return refused is None

    def is_copy(self, msg: Message, round_no: int, slot: int) -> bool:
        """Whether ``msg`` is the second of a frame heard in this slot or the one before (field
        for field, model for model): a sender's copy under ``gossip.repeat_loss``, counted in
        :attr:`copies`. A sender sends a frame at most twice: a third is no copy and meets the
        checks (a flood is refused and counted). A frame of the next round (kept for it) is not
        remembered: it is checked again when its round starts."""
        if (round_no, slot) != self._copy_at:
            self._copy_at, self._slots = (round_no, slot), self._slots + 1
        # a 64-bit digest of the frame's fields and model
        h = hashlib.blake2b(digest_size=8)
        h.update(repr((msg.kind, msg.sender, msg.receiver, msg.round, msg.step, msg.layer,
                       msg.cluster, msg.samples, msg.dtype)).encode())  # fmt: skip
        if msg.model is not None:
            h.update(np.ascontiguousarray(msg.model).data)
        key = np.uint64(int.from_bytes(h.digest(), "little"))
        found = np.flatnonzero((self._digests == key) & (self._heard_in >= self._slots - 1))
        i = int(found[0]) if found.size else self._next
        heard = int(self._heard[i]) + 1 if found.size else 1
        if msg.round <= round_no:
            if not found.size:
                self._next = (self._next + 1) % COPY_RING
            self._digests[i], self._heard[i], self._heard_in[i] = key, heard, self._slots
        self.copies += heard == 2
        return heard == 2

    def vet(
        self,
        msg: Message,
        head: int,
        table: Mapping[int, Beacon],
        earlier: Mapping[int, Beacon] = _NONE,
    ) -> str | None:
        """The rules that need no key (an admitted message): a reason to refuse it, or None.

        ``table`` holds the beacons of the robot's last decision (after the passes: the final
        beacons), ``earlier`` this round's beacons of earlier passes. A sender found only in
        ``earlier`` is known, its cluster unchecked: it may have changed cluster in a later pass
        whose beacon was lost (an intra-cluster message must still name the receiver's cluster).
        A member of ``table`` may name no cluster: it left at settle (its head's beacon lost)."""
        kind = msg.kind
        if kind is Kind.HANDOVER or (kind is Kind.MODEL and msg.layer == Layer.HEAD):
            if msg.sender == head:
                return None
            # a hand-over crosses the receiver's own decision of the same pass (it may have
            # joined a nearer head), and a member that names no head (its head's final beacon
            # was lost) still hears its head's model: the sender must have beaconed this round
            # as head of that cluster
            entry = None
            if kind is Kind.HANDOVER or head < 0:
                entry = table.get(msg.sender, earlier.get(msg.sender))
            headed = entry is not None and entry.role == Role.HEAD and entry.cluster == msg.cluster
            return None if headed else "not_my_head"
        if kind is Kind.PROPOSE or kind in MODEL_KINDS:
            entry = table.get(msg.sender)
            if entry is None:
                entry = earlier.get(msg.sender)
                if entry is None:
                    return "unknown_sender"
            elif entry.cluster != msg.cluster and (msg.cluster, entry.role) != LEFT:
                return "cluster_mismatch"  # not the cluster its final beacon declared
            if kind is Kind.PROPOSE:
                key = (msg.step, msg.sender)
                if key in self._proposers:
                    return "duplicate_proposal"
                self._proposers.add(key)
            elif 0 < entry.samples < msg.samples:
                return "samples_over_declared"
        return None

    def release_early(self) -> list[Message]:
        """The messages kept for the round that starts now (a new round: proposals of the last
        one are forgotten)."""
        self._proposers.clear()
        early, self._early = self._early, []
        return early
