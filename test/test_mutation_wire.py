"""Wire refusals by name: a frame that is well formed up to one rule is refused under that rule's
reason (cases mutation testing found unguarded)."""

from __future__ import annotations

import zlib

import pytest

from gossip_learning import wire
from gossip_learning.errors import WireError
from gossip_learning.messages import Beacon, Kind, Message, Role

STATUS = Message(Kind.STATUS, sender=3, text="{}")
BEACON = Message(Kind.BEACON, sender=3, cluster=3,
                 beacon=Beacon(1.0, 2.0, Role.HEAD, 3, 0, id=3, cluster=3))  # fmt: skip


def _recrc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def _reason(frame: bytes) -> str:
    with pytest.raises(WireError) as err:
        wire.decode(frame)
    return err.value.reason


def test_a_model_encoding_on_a_kind_without_a_model_is_bad_dtype() -> None:
    body = bytearray(wire.encode(STATUS)[:-4])
    body[5] = 1  # dtype F32
    assert _reason(_recrc(bytes(body))) == "bad_dtype"


def test_a_model_kind_without_a_model_cannot_be_encoded() -> None:
    with pytest.raises(WireError) as err:
        wire.encode(Message(Kind.MODEL, sender=3))
    assert err.value.reason == "bad_model"
    assert str(err.value) == "a MODEL message needs a model"


def test_an_unknown_role_in_a_beacon_is_bad_beacon() -> None:
    body = bytearray(wire.encode(BEACON)[:-4])
    body[wire.HEADER_SIZE + 8] = 99  # the role byte after x and y
    assert _reason(_recrc(bytes(body))) == "bad_beacon"


def test_a_frame_longer_than_its_payload_length_is_bad_length() -> None:
    body = wire.encode(STATUS)[:-4]
    assert _reason(_recrc(body + b"\0")) == "bad_length"
