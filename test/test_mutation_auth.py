"""Fleet authentication at its edges: the session counter's origin, wrap and clock; each
refusal's reason and text (cases mutation testing found unguarded)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gossip_learning import wire
from gossip_learning.auth import COUNTERS_PER_SECOND, FleetAuth, session_counter_start
from gossip_learning.errors import WireError
from gossip_learning.wire import Kind, Layer, Message

EPOCH = 1_735_689_600  # 2025-01-01 00:00 UTC


def test_the_session_counter_counts_from_2025() -> None:
    assert session_counter_start(EPOCH) == 0
    assert session_counter_start(EPOCH + 10.0) == 10 * COUNTERS_PER_SECOND
    assert session_counter_start(0.0) == 0  # a clock before 2025 starts at 0, not below


def test_the_session_counter_wraps_into_the_valid_range() -> None:
    top = EPOCH + 0xFFFFFFFF / COUNTERS_PER_SECOND  # exactly 2^32 − 1 counters
    assert session_counter_start(top) == 0
    FleetAuth("k", 1, counter_start=session_counter_start(top - 1 / COUNTERS_PER_SECOND))


def test_the_session_counter_reads_the_clock_by_default() -> None:
    before = session_counter_start(time.time())
    now = session_counter_start()
    assert before <= now <= session_counter_start(time.time())


def _frame(sender: int = 3) -> bytes:
    msg = Message(Kind.MODEL, sender=sender, round=2, step=5, layer=Layer.INTRA, cluster=1,
                  samples=9, model_version=42, model=np.arange(4, dtype=np.float32))  # fmt: skip
    return wire.encode(msg)


def _refusal(frame: bytes, rx: FleetAuth) -> tuple[str, str]:
    with pytest.raises(WireError) as err:
        rx.open(frame)
    return err.value.reason, str(err.value)


def test_every_refusal_names_its_reason_and_says_why() -> None:
    tx, rx = FleetAuth("k", 7), FleetAuth("k", 7)
    sealed = tx.seal(_frame())
    corrupted = bytearray(sealed)
    corrupted[50] ^= 1  # CRC left as it was
    cases = [
        (b"XY" + sealed[2:], "foreign", "foreign frame: magic b'XY'"),
        (_frame(), "unauthenticated", "version-1 frame without a fleet tag"),
        (sealed[:40], "too_short", "frame of 40 bytes is too short to be sealed"),
        (bytes(corrupted), "crc", "CRC mismatch: frame corrupted in transit"),
        (FleetAuth("k", 8).seal(_frame()), "wrong_fleet", "frame of fleet 8, this is fleet 7"),
        (FleetAuth("other", 7).seal(_frame()), "bad_tag",
         "fleet tag does not match: wrong key or forged frame"),
    ]  # fmt: skip
    for frame, reason, text in cases:
        assert _refusal(frame, rx) == (reason, text)
    rx.open(sealed)
    assert _refusal(sealed, rx) == ("replay", "frame 1 of sender 3 was seen or is too old")


def test_a_sender_that_used_up_its_counters_cannot_seal() -> None:
    tx = FleetAuth("k", 7, counter_start=0xFFFFFFFE)
    tx.seal(_frame())  # counter 2^32 − 1: the last one
    with pytest.raises(WireError) as err:
        tx.seal(_frame())
    assert err.value.reason == "counter"
    assert str(err.value) == "sender 3 used up its 2^32 frame counters"


def test_a_key_given_as_bytes_is_the_same_key_as_its_utf8_text() -> None:
    sealed = FleetAuth(b"fleet \xc3\xa9", 7).seal(_frame())
    assert FleetAuth("fleet é", 7).open(sealed) == _frame()
