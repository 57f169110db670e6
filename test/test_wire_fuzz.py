"""Decoder fuzz: any bytes either decode to a finite, consistent message or raise WireError.

Bounded in time for CI: a fixed number of examples, each with a deadline, derandomised so a run
is reproducible. Mutations start from real frames of every kind (so the CRC-valid paths past the
envelope are reached too: the CRC is recomputed after each mutation).
"""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossip_learning import wire
from gossip_learning.errors import WireError
from gossip_learning.wire import Beacon, DType, Kind, Layer, Message, Role

FUZZ = settings(
    max_examples=400,
    deadline=200,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

SEEDS = [
    wire.encode(Message(Kind.BEACON, sender=3, round=1, layer=Layer.CLUSTER, cluster=3,
                        beacon=Beacon(1.0, 2.0, Role.HEAD, 3, 2, (0.5, 0.5)))),
    wire.encode(Message(Kind.PROPOSE, sender=1, receiver=2, round=1)),
    wire.encode(Message(Kind.MODEL, sender=1, samples=3, model=np.ones(5, np.float32))),
    wire.encode(Message(Kind.ACCEPT, sender=1, samples=3, model=np.ones(5, np.float32),
                        dtype=DType.I8)),
    wire.encode(Message(Kind.STATUS, sender=1, text='{"a": 1}')),
]  # fmt: skip


def _check(data: bytes) -> None:
    try:
        msg = wire.decode(data)
    except WireError as exc:
        assert exc.reason
        return
    if msg.model is not None:
        assert msg.model.dtype == np.float32 and np.isfinite(msg.model).all()
    if msg.beacon is not None:
        assert msg.beacon.id == msg.sender and msg.beacon.cluster == msg.cluster


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    st.integers(-8, 8),
    st.booleans(),
)
def test_mutated_frames_with_a_valid_crc(
    seed: bytes, edits: list[tuple[int, int]], resize: int, fix_crc: bool
) -> None:
    body = bytearray(seed[:-4])
    for off, val in edits:
        if off < len(body):
            body[off] = val
    if resize > 0:
        body += bytes(resize)
    elif resize < 0:
        del body[resize:]
    crc = zlib.crc32(bytes(body)) if fix_crc else int.from_bytes(seed[-4:], "little")
    _check(bytes(body) + crc.to_bytes(4, "little"))
