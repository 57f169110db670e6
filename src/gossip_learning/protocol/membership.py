"""DK-means membership of one robot: beacons heard, cluster state, head hand-over, topics.

The decisions are :mod:`gossip_learning.dkmeans`; this part keeps the state between phases
(beacons per pass, neighbour table, pass counters, a pending HANDOVER) and from round to round:
each round's passes start from the last round's clusters, not from fresh random heads.
"""

from __future__ import annotations

from collections import ChainMap, Counter
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from gossip_learning import dkmeans
from gossip_learning.config import ClusteringConfig
from gossip_learning.messages import NO_CLUSTER, Beacon, Layer, Message, Role
from gossip_learning.transports.base import BEACON_TOPIC, INTER_TOPIC, cluster_topic, robot_topic

FLAT_CLUSTER = 0


class Membership:
    """Cluster state and neighbour table of robot ``robot_id``."""

    def __init__(
        self, robot_id: int, method: str, clustering: ClusteringConfig, comm_range: float,
        inter_peers: str, rng: np.random.Generator,
    ) -> None:  # fmt: skip
        self.id, self.method, self.cfg, self.inter_peers = robot_id, method, clustering, inter_peers
        self._crit = dkmeans.Criterion(clustering, comm_range)
        if method == "flat":
            self.state = dkmeans.ClusterState(Role.MEMBER, FLAT_CLUSTER, -1)
        else:
            self.state = dkmeans.initial_state(robot_id, bool(rng.random() < clustering.head_prob))
        self.pass_no = 0  # passes since the start (for a head's age)
        self.table: dict[int, Beacon] = {}  # with beacons missed lately (beacon_memory)
        self._missed: dict[int, int] = {}  # sender -> beacons missed in a row, kept in table
        self._fresh: dict[int, Beacon] = {}  # the beacons heard for the last decision
        self._heard: dict[int, dict[int, Beacon]] = {}  # step -> sender -> beacon
        self._seen: dict[int, Beacon] = {}  # this round's newest beacon per sender, any pass
        self._handover: int | None = None
        self._handover_from = -1
        self._took_over: tuple[int, int] | None = None  # (old head, cluster) of a hand-over
        self.forged_handovers = 0  # headships given back: the old head still headed
        self.begin_round()

    @property
    def cluster(self) -> int:
        """This robot's cluster id (NO_CLUSTER if none)."""
        return self.state.cluster

    def reboot(self) -> None:
        """Forget everything a restarted robot loses: its cluster, neighbours and hand-over."""
        if self.method != "flat":
            self.state = dkmeans.initial_state(self.id, False)
        self.table, self._missed, self._fresh = {}, {}, {}
        self._handover = self._took_over = None
        self.begin_round()

    def begin_round(self) -> None:
        """Forget the beacons of the last round."""
        self._heard, self._seen = {}, {}
        self.round_pass = 0  # passes this round (the last one only assigns)
        self._stale = False  # no final beacon heard: the table is the last pass's
        self.beacons: Counter[str] = Counter()  # this round: "heard"; "missed", then heard again

    @property
    def senders(self) -> tuple[Mapping[int, Beacon], Mapping[int, Beacon]]:
        """Who a message may come from, for :meth:`Inbox.vet`: (the beacons whose clusters are
        current: the final beacons heard, or during the passes those of the last decision; this
        round's newest beacon per robot from earlier passes). A robot whose final beacon was
        lost (kept in the table by ``beacon_memory``) is then no ``unknown_sender`` (one never
        heard this round still is), but its earlier beacon may name a cluster it has left
        since. With no final beacon heard at all, the table's beacons count as earlier ones."""
        if self._stale:
            return {}, ChainMap(self._seen, self.table)
        return (self._fresh if self._missed else self.table), self._seen

    def end_round(self) -> None:
        """Drop whatever was heard after the last decision."""
        self._heard.clear()

    # ----------------------------------------------------------------- hearing
    def hear(self, step: int, sender: int, cluster: int, beacon: Beacon) -> None:
        """Keep ``sender``'s ``beacon`` (sent in ``step`` from ``cluster``) for the ASSIGN or
        TRAIN that reads that step. A decoded beacon already names its sender and cluster and
        is kept as it is (shared with every robot that heard it)."""
        if beacon.id != sender or beacon.cluster != cluster:
            beacon = replace(beacon, id=sender, cluster=cluster)
        self._heard.setdefault(step, {})[sender] = beacon

    def hear_all(self, step: int, senders: list[int], beacons: list[Beacon]) -> None:
        """Keep many decoded beacons of ``step`` (each already names its sender and cluster)."""
        self._heard.setdefault(step, {}).update(zip(senders, beacons, strict=True))

    def on_beacon(self, msg: Message) -> str | None:
        """A BEACON message (the agent's fast path calls :meth:`hear` directly)."""
        if msg.beacon is None:
            return "bad_beacon"
        self.hear(msg.step, msg.sender, msg.cluster, msg.beacon)
        return None

    def on_handover(self, msg: Message) -> str | None:
        """A HANDOVER of a cluster to this robot (taken over at its next beacon).

        The head chose this robot on the pass's beacons, in which it was a member of the head's
        cluster; in the same pass this robot may have joined a nearer head. It still takes the
        headship if the sender beaconed as head of that cluster this pass, else the cluster
        would be left with no head (the old head is already a member naming this robot).
        """
        sender = self.table.get(msg.sender)
        headed = sender is not None and sender.role == Role.HEAD and sender.cluster == msg.cluster
        mine = msg.cluster == self.state.cluster and self.state.role != Role.NONE
        if msg.cluster == NO_CLUSTER or not (headed or mine):
            return "wrong_cluster"
        self._handover, self._handover_from = msg.cluster, msg.sender
        return None

    def _undo_forged_handover(self) -> None:
        """Give a headship taken over back if the old head still beacons as head of that cluster:
        a real head that hands over becomes a member, a forged HANDOVER leaves it head."""
        took, self._took_over = self._took_over, None
        if took is None or self.state.role != Role.HEAD or self.state.cluster != took[1]:
            return
        old = self.table.get(took[0])
        if old is not None and old.role == Role.HEAD and old.cluster == took[1]:
            self.state = dkmeans.ClusterState(Role.MEMBER, took[1], took[0], -1, self.state.founded)
            self.forged_handovers += 1

    # ------------------------------------------------------------------ phases
    def beacon(self, x: float, y: float, label_dist: tuple[float, ...]) -> Beacon:
        """Take over a handed-over headship, then say who this robot is."""
        if self._handover is not None:
            self.state = dkmeans.ClusterState(
                Role.HEAD, self._handover, self.id, self.pass_no - 1, self.state.founded
            )
            self._took_over = (self._handover_from, self._handover)
            self._handover = None
        s = self.state
        return Beacon(
            x, y, s.role, s.head, len(self.table), label_dist, id=self.id, cluster=s.cluster
        )

    def assign(self, slot: int, x: float, y: float, label_dist: np.ndarray) -> int | None:
        """One DK-means pass on the beacons of ``slot - 1``; return who to hand headship to."""
        heard = self._heard.pop(slot - 1, {})
        self._seen.update(heard)
        self._take(heard)
        self._undo_forged_handover()
        self.round_pass += 1
        last = self.cfg.passes > 1 and self.round_pass >= self.cfg.passes
        decision = dkmeans.assign(
            self.id, self.state, x, y, label_dist, self.table, self.cfg, self._crit,
            self.pass_no, last,
        )  # fmt: skip
        self.state = decision.state
        self.pass_no += 1
        return decision.handover_to

    def _take(self, heard: dict[int, Beacon]) -> None:
        """The table after a pass: ``heard`` and the neighbours missed lately."""
        self._fresh, keep = heard, self.cfg.beacon_memory
        self.beacons.update(heard=len(heard), missed=sum(self._missed.get(k, 0) for k in heard))
        self.table, self._missed = dkmeans.remember(self.table, self._missed, heard, keep)

    def settle(self, slot: int) -> None:
        """After the passes: the final beacons become the table; a bilayer member whose head is
        gone rejoins or leaves its cluster (:func:`dkmeans.settle`)."""
        finals = [s for s in self._heard if s < slot]
        self._stale = not finals
        if finals:
            self._take(self._heard.pop(max(finals)))
            self._undo_forged_handover()
            if self.method == "bilayer":
                kept = self.cfg.passes > 1  # the last pass only assigned
                self.state = dkmeans.settle(self.state, self.table, self.id, kept)
        self._heard.clear()

    # --------------------------------------------------------------- gossiping
    def inter_eligible(self) -> bool:
        """Whether this robot gossips on the inter-cluster layer."""
        if self.method != "bilayer" or self.state.cluster == NO_CLUSTER:
            return False
        return self.inter_peers != "heads" or self.state.role == Role.HEAD

    def partners(self, layer: Layer) -> list[int]:
        """In-range robots this robot may exchange with on ``layer``, by id."""
        mine = self.state.cluster
        if layer == Layer.INTRA:
            if not self._intra():
                return []
            return sorted(n.id for n in self.table.values() if n.cluster == mine)
        if not self.inter_eligible():
            return []
        heads_only = self.inter_peers == "heads"
        return sorted(
            n.id
            for n in self.table.values()
            if n.cluster not in (mine, NO_CLUSTER) and (not heads_only or n.role == Role.HEAD)
        )

    def accepts(self, layer: Layer, cluster: int) -> bool:
        """Whether a ``layer`` message from a robot of ``cluster`` is for this robot."""
        mine = self.state.cluster
        if layer == Layer.INTRA:
            return self._intra() and cluster == mine
        if layer == Layer.INTER:
            return self.inter_eligible() and cluster not in (mine, NO_CLUSTER)
        return False

    def _intra(self) -> bool:
        """Whether this robot gossips on the intra layer (``clustering.unclustered_gossip``)."""
        return self.state.cluster != NO_CLUSTER or self.cfg.unclustered_gossip

    def has_members(self) -> bool:
        """A head with at least one member in range that names it."""
        return self.state.role == Role.HEAD and any(
            n.head == self.id and n.cluster == self.state.cluster for n in self.table.values()
        )

    def topics(self) -> set[str]:
        """The topics this robot must hear now."""
        wanted = {BEACON_TOPIC, robot_topic(self.id)}
        if self._intra():
            wanted.add(cluster_topic(self.state.cluster))
        if self.inter_eligible():
            wanted.add(INTER_TOPIC)
        return wanted
