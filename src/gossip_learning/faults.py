"""Faults the simulator injects: crashed and offline robots, a partition that heals, rogues.

Everything here is drawn from one generator seeded by the run's seed, so a (config, seed) gives
the same faults every time. :class:`FaultPlan` says, round by round, which robots are down and
which links are cut; :class:`Rogue` is a radio among the robots that runs one attack of
``faults.rogue_attack`` (see docs/robustness.md). Rogues speak unauthenticated frames: they do not
hold the fleet key; the ``foreign_fleet`` rogue holds another fleet's key. With per-robot keys
(``defence.identity: robot_keys``) a rogue whose own key is in ``defence.robot_keys`` is an
insider: every frame it sends is signed with that key (``identity.RobotAuth.seal_as``, the
simulator's encoder), so what it sends in its own id verifies and what it sends in another
robot's id does not. The ``insider*`` attacks are what such a robot does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gossip_learning.config import FaultsConfig
from gossip_learning.messages import BROADCAST, NO_CLUSTER, Beacon, Kind, Layer, Message, Role
from gossip_learning.schedule import Phase, PhaseKind
from gossip_learning.transports.base import (
    BEACON_TOPIC,
    INTER_TOPIC,
    cluster_topic,
    robot_topic,
)
from gossip_learning.transports.inprocess import InProcessNetwork
from gossip_learning.wire import encode

MAX_DECLARED = 2**32 - 1  # what the "dominate" rogue claims as its sample count
FLOOD = 20  # proposals per robot and step from the "propose_flood" rogue
CAP_DECLARED = 1_000_000  # what "dominate_cap" claims: defence.max_samples' default
HONEST_RMS = 0.07  # about the RMS weight of an honest quickstart model
# insider_near: the perturbation's norm, in norms of the receiver's model: orthogonal to it, the
# sum is farther than the default dist_ratio (1) allows only past sqrt(1 + 2.7^2) = 2.88 norms,
# under the default norm_ratio (3)
NEAR_SCALE = 2.7


@dataclass
class RoundFaults:
    """What is broken in one round."""

    down: np.ndarray  # bool (N,): robots that are off this round (crashed or offline)
    rejoined: list[int] = field(default_factory=list)  # robots back from a crash this round
    partitioned: bool = False


class FaultPlan:
    """Crashes, per-round offline robots and the partition schedule of one run."""

    def __init__(self, cfg: FaultsConfig, n: int, rng: np.random.Generator) -> None:
        self.cfg, self.n, self.rng = cfg, n, rng
        self._back_at = np.zeros(n, dtype=np.int64)  # round a crashed robot rejoins (0 = up)

    def round(self, r: int) -> RoundFaults:
        """Draw round ``r``'s faults (call once per round, in order)."""
        c = self.cfg
        rejoined = [int(i) for i in np.flatnonzero(self._back_at == r)]
        self._back_at[self._back_at == r] = 0
        up = self._back_at == 0
        crash = up & (self.rng.random(self.n) < c.crash_prob)
        self._back_at[crash] = r + c.crash_rounds
        down = self._back_at > 0
        running = np.flatnonzero(~down)
        k = round(c.offline_fraction * len(running))
        if k:
            down[self.rng.choice(running, k, replace=False)] = True
        part = c.partition_rounds
        return RoundFaults(down, rejoined, bool(part) and part[0] <= r <= part[1])

    @staticmethod
    def cut(down: np.ndarray, positions: np.ndarray, width: float, split: bool) -> np.ndarray:
        """(N, N) links that carry nothing: any link of a robot that is down and, when the
        arena is ``split``, every link between its left and right halves."""
        cut = down[:, None] | down[None, :]
        if split:
            left = positions[:, 0] < width / 2
            cut |= left[:, None] != left[None, :]
        return cut


class Rogue:
    """A radio among the robots that attacks the swarm each phase.

    It hears beacons like a robot (so it knows the clusters, heads and members in its range)
    and sends forged frames through the medium from its own position.
    """

    def __init__(
        self,
        rogue_id: int,
        attack: str,
        network: InProcessNetwork,
        num_params: int,
        model_version: int,
        rng: np.random.Generator,
        encoder: Callable[[Message], bytes] = encode,
    ) -> None:
        self.id, self.attack, self.network = rogue_id, attack, network
        self.num_params, self.model_version, self.rng = num_params, model_version, rng
        self.encoder = encoder  # wire.encode, or another fleet's authenticating encoder
        self.round = 0
        self.sent = 0
        self.forged = 0  # frames sent in another robot's id
        self.heard: dict[int, Beacon] = {}
        self.proposals: list[Message] = []  # PROPOSEs to it since its last ACCEPT phase
        self.accepts: list[Message] = []  # ACCEPTs to it since its last REPLY phase
        self.models: dict[int, np.ndarray] = {}  # the last model each robot sent it
        self.cluster = NO_CLUSTER  # the cluster it poses in (dominate, flood, foreign fleet)
        self.fake_cluster = 0x7F000000 + rogue_id  # an id no robot founds
        endpoint = network.endpoint(rogue_id)
        endpoint.subscribe(BEACON_TOPIC, self._hear)
        if attack.startswith("insider"):  # it answers what is sent to it, like a robot
            endpoint.subscribe(robot_topic(rogue_id), self._hear_own)

    def _hear(self, msg: Message) -> None:
        if msg.beacon is not None and msg.sender != self.id:
            self.heard[msg.sender] = msg.beacon

    def _hear_own(self, msg: Message) -> None:
        if msg.receiver != self.id:
            return
        if msg.model is not None:
            self.models[msg.sender] = msg.model.copy()
        if msg.kind == Kind.PROPOSE:
            self.proposals.append(msg)
        elif msg.kind == Kind.ACCEPT:
            self.accepts.append(msg)

    # ------------------------------------------------------------ the driver's calls
    def begin_round(self, round_no: int) -> None:
        """A new round: what it heard last round is old news."""
        self.round = round_no
        self.heard = {}
        self.proposals, self.accepts = [], []

    def run_phase(self, phase: Phase, finish_slot: int = -1) -> None:
        """Attack in ``phase`` (each kind acts in the phases where it does harm)."""
        getattr(self, "_" + self.attack)(phase)

    def settle_training(self) -> None:
        """Rogues do not train."""

    # -------------------------------------------------------------------- helpers
    def _send(self, topic: str, msg: Message) -> None:
        self.network.inject(self.id, topic, self.encoder(msg))
        self.sent += 1
        self.forged += msg.sender != self.id

    def _say(self, topic: str, kind: Kind, phase: Phase, **kw: object) -> None:
        self._send(topic, self._msg(kind, phase, **kw))

    def _msg(self, kind: Kind, phase: Phase, **kw: object) -> Message:
        fields: dict[str, object] = {
            "sender": self.id,
            "round": self.round,
            "step": phase.slot,
            "samples": 100,
            "model_version": self.model_version,
        }
        fields.update(kw)
        return Message(kind, **fields)  # type: ignore[arg-type]

    def _poison(self, scale: float = 3.0) -> np.ndarray:
        return self.rng.normal(0.0, scale, self.num_params).astype(np.float32)

    def _clusters(self) -> dict[int, int]:
        """cluster -> head of the clusters heard."""
        return {b.cluster: b.head for b in self.heard.values() if b.role == Role.HEAD}

    def _pose(self, phase: Phase, role: Role = Role.MEMBER, samples: int = 100) -> None:
        """Beacon as a member of the first cluster heard (so robots keep it in their table)."""
        clusters = self._clusters()
        if self.cluster not in clusters and clusters:
            self.cluster = min(clusters)
        if self.cluster == NO_CLUSTER:
            return
        head = self.id if role == Role.HEAD else clusters.get(self.cluster, -1)
        self._beacon(phase, role, head, self.cluster, samples, len(self.heard))

    def _beacon(
        self, phase: Phase, role: Role, head: int, cluster: int, samples: int, degree: int
    ) -> None:
        x, y = self.network.positions[self.id]
        b = Beacon(float(x), float(y), role, head, degree)
        self._say(BEACON_TOPIC, Kind.BEACON, phase, layer=Layer.CLUSTER, cluster=cluster,
                  samples=samples, beacon=b)  # fmt: skip

    def _model_to_cluster(self, phase: Phase, model: np.ndarray, samples: int) -> None:
        if self.cluster != NO_CLUSTER:
            self._say(
                cluster_topic(self.cluster),
                Kind.MODEL,
                phase,
                layer=Layer.INTRA,
                cluster=self.cluster,
                samples=samples,
                model=model,
            )

    # -------------------------------------------------------------------- attacks
    def _none(self, phase: Phase) -> None:
        """No attack."""

    def _head_hijack(self, phase: Phase) -> None:
        """A head-layer model naming each cluster heard, at the hand-off."""
        if phase.kind == PhaseKind.HEAD_SEND:
            for cluster in self._clusters():
                self._say(
                    cluster_topic(cluster),
                    Kind.MODEL,
                    phase,
                    layer=Layer.HEAD,
                    cluster=cluster,
                    model=self._poison(),
                )

    def _handover(self, phase: Phase) -> None:
        """A HANDOVER of its own cluster to every member heard, in each DK-means pass."""
        if phase.kind == PhaseKind.ASSIGN:
            for rid, b in self.heard.items():
                if b.role == Role.MEMBER:
                    self._say(
                        robot_topic(rid),
                        Kind.HANDOVER,
                        phase,
                        receiver=rid,
                        layer=Layer.CLUSTER,
                        cluster=b.cluster,
                    )

    def _fake_head(self, phase: Phase) -> None:
        """The head of a cluster that does not exist, loud in every beacon phase."""
        if phase.kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._beacon(phase, Role.HEAD, self.id, self.fake_cluster, 100, 99)

    def _dominate(self, phase: Phase) -> None:
        """A member that claims 2^32-1 samples, beacons and models alike."""
        if phase.kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._pose(phase, samples=MAX_DECLARED)
        elif phase.kind in (PhaseKind.PROPOSE, PhaseKind.SEND) and phase.layer == Layer.INTRA:
            self._model_to_cluster(phase, self._poison(), MAX_DECLARED)

    def _overflow(self, phase: Phase) -> None:
        """A member whose models are finite but 3e38 in every weight."""
        if phase.kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._pose(phase)
        elif phase.kind in (PhaseKind.PROPOSE, PhaseKind.SEND) and phase.layer == Layer.INTRA:
            self._model_to_cluster(phase, np.full(self.num_params, 3e38, np.float32), 100)

    def _impersonate(self, phase: Phase) -> None:
        """In the ACCEPT phase, an ACCEPT to every robot heard in the name of each robot of its
        cluster it heard, first on the air: a proposer takes the forgery for its partner's
        answer and the real one comes second."""
        if phase.kind != PhaseKind.ACCEPT:
            return
        for rid, b in self.heard.items():
            for other, ob in self.heard.items():
                if other != rid and ob.cluster == b.cluster != NO_CLUSTER:
                    self._say(
                        robot_topic(rid),
                        Kind.ACCEPT,
                        phase,
                        sender=other,
                        receiver=rid,
                        layer=phase.layer,
                        cluster=b.cluster,
                        model=self._poison(),
                    )

    def _propose_flood(self, phase: Phase) -> None:
        """A member that sends each robot of its cluster 20 proposals a step, then answers
        the acceptances with a poisoned model."""
        if phase.kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._pose(phase)
        elif phase.kind == PhaseKind.PROPOSE and phase.layer == Layer.INTRA:
            for rid, b in self.heard.items():
                if b.cluster == self.cluster != NO_CLUSTER:
                    for _ in range(FLOOD):
                        self._say(
                            robot_topic(rid),
                            Kind.PROPOSE,
                            phase,
                            receiver=rid,
                            layer=Layer.INTRA,
                            cluster=self.cluster,
                        )
        elif phase.kind == PhaseKind.REPLY and phase.layer == Layer.INTRA:
            for rid, b in self.heard.items():
                if b.cluster == self.cluster != NO_CLUSTER:
                    self._say(
                        robot_topic(rid),
                        Kind.REPLY,
                        phase,
                        receiver=rid,
                        layer=Layer.INTRA,
                        cluster=self.cluster,
                        model=self._poison(),
                    )

    def _foreign_fleet(self, phase: Phase) -> None:
        """A robot of another fleet with the same head architecture: a plausible member of the
        first cluster it hears, whose (foreign) model is broadcast every gossip step."""
        if phase.kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._pose(phase)
        elif phase.kind in (PhaseKind.PROPOSE, PhaseKind.SEND):
            self._model_to_cluster(phase, self._poison(0.5), 100)
            if phase.layer == Layer.INTER:
                self._say(
                    INTER_TOPIC,
                    Kind.MODEL,
                    phase,
                    layer=Layer.INTER,
                    cluster=self.cluster,
                    model=self._poison(0.5),
                )

    # ----------------------------------------- variants of issue 20 (no key: ids anyone writes)
    def _head_forge(self, phase: Phase) -> None:
        """A head-layer model in each heard head's own id, at the hand-off (first on the air)."""
        if phase.kind == PhaseKind.HEAD_SEND:
            for cluster, head in self._clusters().items():
                self._say(cluster_topic(cluster), Kind.MODEL, phase, sender=head,
                          layer=Layer.HEAD, cluster=cluster, model=self._poison(0.07))  # fmt: skip

    def _handover_forge(self, phase: Phase) -> None:
        """A HANDOVER in the member's own head's id to every member heard, each DK-means pass."""
        if phase.kind == PhaseKind.ASSIGN:
            for rid, b in self.heard.items():
                if b.role == Role.MEMBER and b.head >= 0:
                    self._say(robot_topic(rid), Kind.HANDOVER, phase, sender=b.head, receiver=rid,
                              layer=Layer.CLUSTER, cluster=b.cluster)  # fmt: skip

    def _dominate_cap(self, phase: Phase) -> None:
        """``dominate`` at the configured cap (10^6 samples), not past it."""
        if phase.kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._pose(phase, samples=CAP_DECLARED)
        elif phase.kind in (PhaseKind.PROPOSE, PhaseKind.SEND) and phase.layer == Layer.INTRA:
            self._model_to_cluster(phase, self._poison(0.07), CAP_DECLARED)

    def _near_bound(self, phase: Phase) -> None:
        """A member whose models sit just under the fixed norm bound (999 RMS)."""
        if phase.kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._pose(phase)
        elif phase.kind in (PhaseKind.PROPOSE, PhaseKind.SEND) and phase.layer == Layer.INTRA:
            self._model_to_cluster(phase, self._poison(999.0), 100)

    def _accept_forge(self, phase: Phase) -> None:
        """``impersonate`` declaring what each named robot declared in its beacons (the sample
        check passes), with a model of honest size."""
        if phase.kind != PhaseKind.ACCEPT:
            return
        for rid, b in self.heard.items():
            for other, ob in self.heard.items():
                if other != rid and ob.cluster == b.cluster != NO_CLUSTER:
                    self._say(robot_topic(rid), Kind.ACCEPT, phase, sender=other, receiver=rid,
                              layer=phase.layer, cluster=b.cluster, samples=max(1, ob.samples),
                              model=self._poison(0.07))  # fmt: skip

    # ------------------------------- insiders (issue 20): a fleet robot that holds its own key
    def _insider(self, phase: Phase) -> None:
        """A member that lies only as itself: it beacons 10^6 samples, proposes to every member
        of its cluster once a step, accepts every proposal and replies to every acceptance, each
        time with an honest-norm random model declaring 10^6 samples (and broadcasts one in the
        SEND phases of broadcast gossip)."""
        self._as_itself(phase, lambda _: self._poison(HONEST_RMS))

    def _insider_near(self, phase: Phase) -> None:
        """``insider`` whose model for robot r is the last model r sent it plus a random
        perturbation orthogonal to it, ``NEAR_SCALE`` times its norm: inside the default
        relative bounds (honest-norm random until r has sent it a model)."""
        self._as_itself(phase, self._near)

    def _insider_forge(self, phase: Phase) -> None:
        """``insider`` plus ``accept_forge`` and ``handover_forge``: frames in other robots' ids,
        signed with its own key (with robot keys each is refused as ``bad_signature``)."""
        self._insider(phase)
        self._accept_forge(phase)
        self._handover_forge(phase)

    def _as_itself(self, phase: Phase, model_for: Callable[[int], np.ndarray]) -> None:
        """The pairwise exchange as a member of its cluster, every model from ``model_for``
        (receiver -> model) declaring 10^6 samples."""
        kind = phase.kind
        if kind in (PhaseKind.BEACON, PhaseKind.FINAL_BEACON):
            self._pose(phase, samples=CAP_DECLARED)
        elif kind == PhaseKind.ACCEPT:
            asked, self.proposals = self.proposals, []
            for rid in dict.fromkeys(m.sender for m in asked if m.layer == phase.layer):
                self._answer(Kind.ACCEPT, phase, rid, model_for(rid))
        elif kind == PhaseKind.REPLY:
            got, self.accepts = self.accepts, []
            for rid in dict.fromkeys(m.sender for m in got if m.layer == phase.layer):
                self._answer(Kind.REPLY, phase, rid, model_for(rid))
        elif phase.layer != Layer.INTRA or self.cluster == NO_CLUSTER:
            return
        elif kind == PhaseKind.SEND:
            self._model_to_cluster(phase, self._poison(HONEST_RMS), CAP_DECLARED)
        elif kind == PhaseKind.PROPOSE and phase.attempt == 0:
            for rid, b in self.heard.items():
                if b.cluster == self.cluster:
                    self._say(robot_topic(rid), Kind.PROPOSE, phase, receiver=rid,
                              layer=Layer.INTRA, cluster=self.cluster)  # fmt: skip

    def _answer(self, kind: Kind, phase: Phase, rid: int, model: np.ndarray) -> None:
        self._say(robot_topic(rid), kind, phase, receiver=rid, layer=phase.layer,
                  cluster=self.cluster, samples=CAP_DECLARED, model=model)  # fmt: skip

    def _near(self, rid: int) -> np.ndarray:
        """Robot ``rid``'s last model plus ``NEAR_SCALE`` of its norm, orthogonally."""
        own = self.models.get(rid)
        if own is None:
            return self._poison(HONEST_RMS)
        base = own.astype(np.float64)
        noise = self.rng.normal(0.0, 1.0, base.size)
        square = float(base @ base)
        if square > 0:
            noise -= float(noise @ base) / square * base
        noise *= NEAR_SCALE * np.sqrt(square) / max(float(np.linalg.norm(noise)), 1e-30)
        return (base + noise).astype(np.float32)


__all__ = ["BROADCAST", "FaultPlan", "Rogue", "RoundFaults"]
