"""What a robot sends (stamped with its round, slot, cluster and model settings) and which
topics it listens to."""

from __future__ import annotations

from typing import Any

from gossip_learning.messages import BROADCAST, DType, Kind, Layer, Message
from gossip_learning.protocol.membership import Membership
from gossip_learning.transports.base import BEACON_TOPIC, BatchHandler, Handler, Transport


class Outbox:
    """Builds and publishes this robot's messages through its transport."""

    def __init__(
        self,
        robot_id: int,
        transport: Transport,
        membership: Membership,
        samples: int,
        model_version: int,
        dtype: DType,
        repeat_loss: float = 1.0,
    ) -> None:
        self.id = robot_id
        self.repeat_loss = repeat_loss  # gossip.repeat_loss
        self.transport = transport
        self.membership = membership
        self.samples = samples
        self.model_version = model_version
        self.dtype = dtype
        self.round = 0
        self.slot = -1

    def send(
        self,
        topic: str,
        kind: Kind,
        receiver: int = BROADCAST,
        layer: Layer = Layer.NONE,
        **fields: Any,
    ) -> None:
        """Publish one message of ``kind`` on ``topic`` (twice: see :meth:`copies`)."""
        msg = Message(
            kind=kind,
            sender=self.id,
            receiver=receiver,
            round=self.round,
            step=self.slot,
            layer=layer,
            cluster=self.membership.cluster,
            samples=self.samples,
            model_version=self.model_version,
            dtype=self.dtype,
            **fields,
        )
        for _ in range(1 if kind is Kind.BEACON else self.copies()):
            self.transport.publish(topic, msg)

    def copies(self) -> int:
        """How many times a frame other than a beacon is sent now: twice in a round in which
        this robot lost more than ``repeat_loss`` of its neighbours' beacons so far (missed,
        then heard again: :attr:`Membership.beacons`; each copy is lost on its own, the
        receiver's inbox drops the second), else once."""
        beacons = self.membership.beacons
        missed = beacons["missed"]
        return 2 if missed > self.repeat_loss * (missed + beacons["heard"]) else 1


class Subscriptions:
    """The topics one robot hears, kept equal to what its membership asks for."""

    def __init__(self, transport: Transport, handler: Handler, beacons: BatchHandler) -> None:
        self.transport = transport
        self.handler = handler
        self.beacons = beacons  # offered for the beacon topic: many broadcasts per phase
        self.topics: set[str] = set()

    def sync(self, wanted: set[str]) -> None:
        """Subscribe to ``wanted`` and to nothing else."""
        for t in self.topics - wanted:
            self.transport.unsubscribe(t)
        for t in sorted(wanted - self.topics):
            if t == BEACON_TOPIC:
                self.transport.subscribe(t, self.handler, self.beacons)
            else:
                self.transport.subscribe(t, self.handler)
        self.topics = set(wanted)
