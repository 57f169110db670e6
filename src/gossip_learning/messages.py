"""The protocol's vocabulary: message kinds, layers, roles, and the decoded message itself.

These are domain types: the agent and the algorithms speak them; :mod:`gossip_learning.wire`
turns them into bytes and back (it imports this module, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

BROADCAST = 0xFFFFFFFF
NO_CLUSTER = -1


class Kind(IntEnum):
    """What a message is for."""

    BEACON = 1  # pose + cluster state, broadcast every DK-means pass
    HANDOVER = 2  # a head hands headship of its cluster to the addressed member
    PROPOSE = 3  # pairwise gossip: ask the addressee to exchange models
    ACCEPT = 4  # pairwise gossip: the addressee agrees and sends its model
    REPLY = 5  # pairwise gossip: the proposer answers with its model
    MODEL = 6  # one-to-many model broadcast (layer tells intra / inter / head hand-off)
    STATUS = 7  # per-round robot status for a monitor (payload: UTF-8 JSON)


class Layer(IntEnum):
    """Which layer of the protocol a message belongs to."""

    NONE = 0
    CLUSTER = 1
    INTRA = 2
    INTER = 3
    HEAD = 4


class Role(IntEnum):
    """A robot's role in DK-means."""

    NONE = 0  # in no cluster (a singleton)
    MEMBER = 1
    HEAD = 2


class DType(IntEnum):
    """How model parameters are encoded on the wire."""

    NONE = 0
    F32 = 1
    F16 = 2
    I8 = 3
    I8_BLOCK = 4  # int8, one fp32 scale per block of 64 values (wire.I8_BLOCK)


DTYPE_NAMES = {
    "f32": DType.F32,
    "f16": DType.F16,
    "int8": DType.I8,
    "int8_block": DType.I8_BLOCK,
}


@dataclass(frozen=True, slots=True)
class Beacon:
    """A robot's pose and DK-means state as its neighbours hear it.

    ``id``, ``cluster`` and ``samples`` repeat the sender, cluster and sample count of the
    message that carried the beacon (the decoder fills them in from the header), so a heard
    beacon is a complete neighbour-table entry: one decoded beacon can be shared by every robot
    that hears it.
    """

    x: float
    y: float
    role: Role
    head: int
    neighbours: int
    label_dist: tuple[float, ...] = ()
    id: int = field(default=-1, compare=False)
    cluster: int = field(default=NO_CLUSTER, compare=False)
    samples: int = field(default=0, compare=False)  # the sample count its frame declared


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded protocol message. ``model`` is float32 after decoding."""

    kind: Kind
    sender: int
    receiver: int = BROADCAST
    round: int = 0
    step: int = 0
    layer: Layer = Layer.NONE
    cluster: int = NO_CLUSTER
    samples: int = 0
    model_version: int = 0
    beacon: Beacon | None = None
    model: np.ndarray | None = field(default=None, compare=False)
    dtype: DType = DType.F32
    text: str = ""
