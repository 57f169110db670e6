"""One robot's protocol: DK-means, local training, bilayer gossip with cumulative FedAvg.

The agent only publishes and subscribes through a
:class:`~gossip_learning.transports.base.Transport` and is driven phase by phase
(:mod:`gossip_learning.schedule`): by the in-process runner, or by a ROS node's clock. It never
knows which. Every message it cannot use is counted in ``rejected[reason]`` and never merged.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gossip_learning import dkmeans
from gossip_learning.aggregation import CumulativeFedAvg
from gossip_learning.config import ClusteringConfig, GossipConfig
from gossip_learning.schedule import Phase
from gossip_learning.transports.base import (
    BEACON_TOPIC,
    INTER_TOPIC,
    Transport,
    cluster_topic,
    robot_topic,
)
from gossip_learning.wire import (
    BROADCAST,
    DTYPE_NAMES,
    NO_CLUSTER,
    Beacon,
    Kind,
    Layer,
    Message,
    Role,
)

#: Trains a model on the robot's own data: (params, round) -> (new params, training loss).
LocalUpdate = Callable[[np.ndarray, int], tuple[np.ndarray, float]]

FLAT_CLUSTER = 0
MAX_EARLY = 4096  # next-round beacons/proposals kept for a robot whose clock runs behind


_memo: tuple[Message | None, dkmeans.Neighbour | None] = (None, None)


def _neighbour(msg: Message) -> dkmeans.Neighbour:
    """The neighbour-table entry of a beacon. One decoded beacon heard by many robots in one
    process (the in-process medium) is converted once: a one-entry memo on the message object."""
    global _memo
    seen, entry = _memo
    if seen is msg and entry is not None:
        return entry
    b = msg.beacon
    assert b is not None
    entry = dkmeans.Neighbour(
        msg.sender,
        b.x,
        b.y,
        b.role,
        msg.cluster,
        b.head,
        b.neighbours,
        np.asarray(b.label_dist, np.float32),
    )
    _memo = (msg, entry)
    return entry


@dataclass(frozen=True)
class AgentSettings:
    """Protocol knobs shared by every robot of a swarm."""

    method: str
    clustering: ClusteringConfig
    gossip: GossipConfig
    comm_range: float
    model_version: int
    num_params: int


class RobotAgent:
    """The protocol state machine of one robot."""

    def __init__(
        self,
        robot_id: int,
        settings: AgentSettings,
        transport: Transport,
        params: np.ndarray,
        num_samples: int,
        label_dist: np.ndarray,
        seed: int,
        local_update: LocalUpdate | None = None,
    ) -> None:
        if params.shape != (settings.num_params,):
            raise ValueError(f"params shape {params.shape} != ({settings.num_params},)")
        self.id = robot_id
        self.settings = settings
        self.transport = transport
        self.params = params.astype(np.float32, copy=True)
        self.num_samples = max(1, int(num_samples))
        self.label_dist = np.asarray(label_dist, dtype=np.float32)
        self.local_update = local_update
        self.rng = np.random.default_rng(seed)
        self.lock = threading.RLock()
        self.x = 0.0
        self.y = 0.0
        self.round = 0
        self.slot = -1
        self.train_loss = float("nan")
        self._crit = dkmeans.Criterion(settings.clustering, settings.comm_range)
        self._dtype = DTYPE_NAMES[settings.gossip.dtype]
        if settings.method == "flat":
            self.state = dkmeans.ClusterState(Role.MEMBER, FLAT_CLUSTER, -1)
        else:
            is_head = bool(self.rng.random() < settings.clustering.head_prob)
            self.state = dkmeans.initial_state(robot_id, is_head)
        self.pass_no = 0
        self.table: dict[int, dkmeans.Neighbour] = {}
        self._beacons: dict[int, dict[int, dkmeans.Neighbour]] = {}
        self._handover_cluster: int | None = None
        self._proposals: dict[int, list[int]] = {}
        self._proposed_to: int | None = None
        self._accepted: int | None = None
        self._got_accept = False
        self._window: tuple[int, int] | None = None  # (first slot, finish slot) of the open step
        self._head_model: np.ndarray | None = None
        self._acc = CumulativeFedAvg(settings.num_params)
        self._finite = np.empty(settings.num_params, dtype=bool)  # scratch of the model check
        self.peak_bytes = self.params.nbytes + self._acc.nbytes + self._finite.nbytes
        self._step_has_partner = False
        #: (layer, had an eligible partner, completed an exchange) of each gossip step this round
        self.exchanges: list[tuple[Layer, bool, bool]] = []
        self.rejected: Counter[str] = Counter()
        self.merged_total = 0
        self.mix_log: list[tuple[int, dict[int, float]]] = []
        self._topics: set[str] = set()
        self._early: list[Message] = []
        self._listen(BEACON_TOPIC)
        self._listen(robot_topic(robot_id))
        self._sync_topics()

    # ----------------------------------------------------------------- helpers
    def _held(self, incoming: np.ndarray | None = None) -> None:
        """Count the model-sized bytes alive now: own model, accumulator, a held head model and
        the incoming model being merged; keep the peak in ``peak_bytes``."""
        held = self.params.nbytes + self._acc.nbytes + self._finite.nbytes
        if self._head_model is not None:
            held += self._head_model.nbytes
        if incoming is not None:
            held += incoming.nbytes
        self.peak_bytes = max(self.peak_bytes, held)

    def set_position(self, x: float, y: float) -> None:
        """Update the robot's own position (from mobility or odometry)."""
        with self.lock:
            self.x, self.y = float(x), float(y)

    def _listen(self, topic: str) -> None:
        if topic not in self._topics:
            self.transport.subscribe(topic, self.handle)
            self._topics.add(topic)

    def _sync_topics(self) -> None:
        wanted = {BEACON_TOPIC, robot_topic(self.id)}
        if self.state.cluster != NO_CLUSTER:
            wanted.add(cluster_topic(self.state.cluster))
        if self._inter_eligible():
            wanted.add(INTER_TOPIC)
        for t in self._topics - wanted:
            self.transport.unsubscribe(t)
        self._topics &= wanted
        for t in sorted(wanted - self._topics):
            self._listen(t)

    def _inter_eligible(self) -> bool:
        if self.settings.method != "bilayer" or self.state.cluster == NO_CLUSTER:
            return False
        return self.settings.gossip.inter_peers == "border" or self.state.role == Role.HEAD

    def _msg(
        self, kind: Kind, receiver: int = BROADCAST, layer: Layer = Layer.NONE, **kw: Any
    ) -> Message:
        return Message(
            kind=kind,
            sender=self.id,
            receiver=receiver,
            round=self.round,
            step=self.slot,
            layer=layer,
            cluster=self.state.cluster,
            samples=self.num_samples,
            model_version=self.settings.model_version,
            dtype=self._dtype,
            **kw,
        )

    def _beacon(self) -> Message:
        b = Beacon(
            self.x,
            self.y,
            self.state.role,
            self.state.head,
            len(self.table),
            tuple(self.label_dist.tolist()),
        )
        return self._msg(Kind.BEACON, layer=Layer.CLUSTER, beacon=b)

    def _partners(self, layer: Layer) -> list[int]:
        mine = self.state.cluster
        if layer == Layer.INTRA:
            if mine == NO_CLUSTER:
                return []
            return sorted(n.id for n in self.table.values() if n.cluster == mine)
        if not self._inter_eligible():
            return []
        heads_only = self.settings.gossip.inter_peers == "heads"
        return sorted(
            n.id
            for n in self.table.values()
            if n.cluster not in (mine, NO_CLUSTER) and (not heads_only or n.role == Role.HEAD)
        )

    def _accepts_layer(self, layer: Layer, cluster: int) -> bool:
        mine = self.state.cluster
        if layer == Layer.INTRA:
            return mine != NO_CLUSTER and cluster == mine
        if layer == Layer.INTER:
            return self._inter_eligible() and cluster not in (mine, NO_CLUSTER)
        return False

    def _check_model(self, msg: Message) -> bool:
        m = msg.model
        if msg.model_version != self.settings.model_version:
            self.rejected["model_version"] += 1
            return False
        if (
            m is None
            or m.shape != (self.settings.num_params,)
            or not np.isfinite(m, out=self._finite).all()
        ):
            self.rejected["bad_model"] += 1
            return False
        if msg.samples <= 0:
            self.rejected["bad_samples"] += 1
            return False
        return True

    def _merge(self, msg: Message) -> None:
        assert msg.model is not None
        self._held(msg.model)
        if self._acc.add(msg.sender, msg.model, float(msg.samples)):
            self.merged_total += 1
        else:
            self.rejected["duplicate"] += 1

    def _open_window(self, first: int, finish: int) -> None:
        self._acc.reset(self.id, self.params, float(self.num_samples))
        self._window = (first, finish)

    def _in_window(self, step: int) -> bool:
        return (
            self._window is not None
            and self._acc.active
            and self._window[0] <= step < self._window[1]
        )

    # ---------------------------------------------------------------- receiving
    def handle(self, msg: Message) -> None:
        """Take one decoded message from the transport (thread-safe)."""
        with self.lock:
            if (  # fast path for the most frequent message: a current beacon
                msg.kind is Kind.BEACON
                and msg.round == self.round
                and msg.step >= self.slot
                and msg.sender != self.id
                and msg.receiver == BROADCAST
                and msg.beacon is not None
            ):
                self._beacons.setdefault(msg.step, {})[msg.sender] = _neighbour(msg)
                return
            self._handle(msg)

    def _handle(self, msg: Message) -> None:
        if msg.sender == self.id:
            self.rejected["own"] += 1
            return
        if msg.receiver not in (BROADCAST, self.id):
            self.rejected["not_for_me"] += 1
            return
        if msg.round != self.round:
            early = msg.round == self.round + 1 and msg.kind in (Kind.BEACON, Kind.PROPOSE)
            if early and len(self._early) < MAX_EARLY:
                self._early.append(msg)  # a robot whose clock is ahead: keep it for next round
            else:
                self.rejected["stale_round" if msg.round < self.round else "early_round"] += 1
            return
        carries_model = msg.kind in (Kind.ACCEPT, Kind.REPLY, Kind.MODEL)
        if carries_model and not self._check_model(msg):
            return
        if msg.step < self.slot and not carries_model:
            self.rejected["late"] += 1
            return
        kind = msg.kind
        if kind == Kind.BEACON:
            if msg.beacon is None:
                self.rejected["bad_beacon"] += 1
                return
            self._beacons.setdefault(msg.step, {})[msg.sender] = _neighbour(msg)
        elif kind == Kind.HANDOVER:
            if msg.cluster != self.state.cluster or self.state.role == Role.NONE:
                self.rejected["wrong_cluster"] += 1
                return
            self._handover_cluster = msg.cluster
        elif kind == Kind.PROPOSE:
            if not self._accepts_layer(msg.layer, msg.cluster):
                self.rejected["wrong_cluster"] += 1
                return
            self._proposals.setdefault(msg.step, []).append(msg.sender)
        elif kind == Kind.ACCEPT:
            if msg.sender != self._proposed_to or not self._in_window(msg.step):
                self.rejected["unexpected"] += 1
                return
            self._merge(msg)
            self._got_accept = True
        elif kind == Kind.REPLY:
            if msg.sender != self._accepted or not self._in_window(msg.step):
                self.rejected["unexpected"] += 1
                return
            self._merge(msg)
        elif kind == Kind.MODEL:
            self._handle_model(msg)
        else:
            self.rejected["unknown_kind"] += 1

    def _handle_model(self, msg: Message) -> None:
        if msg.layer == Layer.HEAD:
            if self.state.role != Role.MEMBER or msg.cluster != self.state.cluster:
                self.rejected["wrong_cluster"] += 1
                return
            if self.settings.gossip.handoff == "adopt":
                self._head_model = msg.model
                self._held()
            elif self._in_window(msg.step):
                self._merge(msg)
            else:
                self.rejected["late"] += 1
            return
        if not self._accepts_layer(msg.layer, msg.cluster):
            self.rejected["wrong_cluster"] += 1
            return
        if not self._in_window(msg.step):
            self.rejected["late"] += 1
            return
        self._merge(msg)

    # ------------------------------------------------------------------ phases
    def begin_round(self, round_no: int) -> None:
        """Start round ``round_no`` (from 1): forget the last round's messages."""
        with self.lock:
            self.round = round_no
            self.slot = -1
            self._beacons.clear()
            self._proposals.clear()
            self.mix_log = []
            self.exchanges = []
            early, self._early = self._early, []
            for msg in early:
                self._handle(msg)

    def run_phase(self, phase: Phase, finish_slot: int = -1) -> None:
        """Do this robot's part of ``phase``. ``finish_slot`` is the slot of the step's FINISH."""
        with self.lock:
            self.slot = phase.slot
            getattr(self, f"_do_{phase.kind.value}")(phase, finish_slot)

    def _do_beacon(self, phase: Phase, _: int) -> None:
        if self._handover_cluster is not None:
            if self._handover_cluster == self.state.cluster:
                self.state = dkmeans.ClusterState(
                    Role.HEAD, self.state.cluster, self.id, self.pass_no - 1, self.state.founded
                )
            self._handover_cluster = None
        self.transport.publish(BEACON_TOPIC, self._beacon())

    _do_final_beacon = _do_beacon

    def _do_assign(self, phase: Phase, _: int) -> None:
        heard = self._beacons.pop(phase.slot - 1, {})
        self.table = heard
        decision = dkmeans.assign(
            self.id,
            self.state,
            self.x,
            self.y,
            self.label_dist,
            heard,
            self.settings.clustering,
            self._crit,
            self.pass_no,
        )
        self.state = decision.state
        self.pass_no += 1
        if decision.handover_to is not None:
            self.transport.publish(
                robot_topic(decision.handover_to),
                self._msg(Kind.HANDOVER, decision.handover_to, Layer.CLUSTER),
            )

    def _do_train(self, phase: Phase, _: int) -> None:
        finals = [s for s in self._beacons if s < phase.slot]
        if finals:
            self.table = self._beacons.pop(max(finals))
            if self.settings.method == "bilayer":
                self.state = dkmeans.settle(self.state, self.table, self.id)
        self._beacons.clear()
        self._sync_topics()
        if self.local_update is not None:
            self.params, self.train_loss = self.local_update(self.params, self.round)

    def _do_propose(self, phase: Phase, finish: int) -> None:
        self._open_window(phase.slot, finish)
        self._proposed_to = None
        self._accepted = None
        self._got_accept = False
        partners = self._partners(phase.layer)
        self._step_has_partner = bool(partners)
        if partners and self.rng.random() < self.settings.gossip.propose_prob:
            target = int(partners[self.rng.integers(len(partners))])
            self._proposed_to = target
            self.transport.publish(
                robot_topic(target), self._msg(Kind.PROPOSE, target, phase.layer)
            )

    def _do_accept(self, phase: Phase, _: int) -> None:
        proposals = self._proposals.pop(phase.slot - 1, [])
        if self._proposed_to is not None or not proposals:
            return
        chosen = int(proposals[self.rng.integers(len(proposals))])
        self._accepted = chosen
        self.transport.publish(
            robot_topic(chosen), self._msg(Kind.ACCEPT, chosen, phase.layer, model=self.params)
        )

    def _do_reply(self, phase: Phase, _: int) -> None:
        if self._proposed_to is not None and self._got_accept:
            target = self._proposed_to
            self.transport.publish(
                robot_topic(target), self._msg(Kind.REPLY, target, phase.layer, model=self.params)
            )

    def _do_send(self, phase: Phase, finish: int) -> None:
        self._open_window(phase.slot, finish)
        self._step_has_partner = bool(self._partners(phase.layer))
        if self._step_has_partner:
            topic = cluster_topic(self.state.cluster) if phase.layer == Layer.INTRA else INTER_TOPIC
            self.transport.publish(
                topic, self._msg(Kind.MODEL, layer=phase.layer, model=self.params)
            )

    def _close_window(self) -> int:
        """Close the open step; return how many other senders were merged."""
        merged = 0
        if self._acc.active:
            merged = self._acc.merged
            if merged:
                self.mix_log.append((self.slot, self._acc.mixing_row()))
                self._acc.finalise(out=self.params)
            self._acc.active = False
        self._window = None
        return merged

    def _do_finish(self, phase: Phase, _: int) -> None:
        merged = self._close_window()
        self.exchanges.append((phase.layer, self._step_has_partner, merged > 0))

    def _do_head_send(self, phase: Phase, finish: int) -> None:
        self._head_model = None
        if self.settings.gossip.handoff == "merge" and self.state.role == Role.MEMBER:
            self._open_window(phase.slot, finish)
        if self.state.role == Role.HEAD and any(
            n.head == self.id and n.cluster == self.state.cluster for n in self.table.values()
        ):
            msg = self._msg(Kind.MODEL, layer=Layer.HEAD, model=self.params)
            self.transport.publish(cluster_topic(self.state.cluster), msg)

    def _do_head_finish(self, phase: Phase, _: int) -> None:
        if self._head_model is not None:
            np.copyto(self.params, self._head_model)
            self.mix_log.append((self.slot, {self.state.head: 1.0}))
            self._head_model = None
        self._close_window()

    def _do_end(self, phase: Phase, _: int) -> None:
        self._close_window()
        self._proposals.clear()
        self._beacons.clear()

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """A JSON-able summary of this robot now (for monitors and logs)."""
        with self.lock:
            return {
                "id": self.id,
                "round": self.round,
                "x": self.x,
                "y": self.y,
                "role": self.state.role.name.lower(),
                "cluster": self.state.cluster,
                "head": self.state.head,
                "neighbours": len(self.table),
                "samples": self.num_samples,
                "train_loss": self.train_loss,
                "merged_total": self.merged_total,
                "rejected": dict(self.rejected),
                "param_norm": float(np.linalg.norm(self.params)),
            }
