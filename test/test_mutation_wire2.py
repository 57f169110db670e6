"""Wire behaviour that mutation testing found unguarded (issue 17): every refusal's reason and
message, the edges of the size and chunk limits, float32 quantisation as the firmware does it,
scales on the wire, and the Reassembler's bookkeeping."""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from gossip_learning import wire
from gossip_learning.errors import WireError
from gossip_learning.messages import Beacon, DType, Kind, Message, Role

STATUS = Message(Kind.STATUS, sender=3, text="{}")
MAX_TEXT = wire.MAX_FRAME - wire.OVERHEAD  # the longest payload one frame carries


def _beacon(x: float = 1.0, y: float = 2.0, dist: tuple[float, ...] = (0.5, 0.5)) -> Message:
    return Message(Kind.BEACON, sender=3, cluster=3, samples=17,
                   beacon=Beacon(x, y, Role.HEAD, 3, 2, dist))  # fmt: skip


def _model(values: list[float] | np.ndarray, dtype: DType, **kw: int) -> Message:
    return Message(Kind.MODEL, sender=1, samples=1, model=np.asarray(values), dtype=dtype, **kw)


def _patched(frame: bytes, at: int, raw: bytes) -> bytes:
    """``frame`` with ``raw`` written at byte ``at`` and a fresh CRC."""
    body = bytearray(frame[:-4])
    body[at : at + len(raw)] = raw
    return bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "little")


def _with_payload(frame: bytes, payload: bytes) -> bytes:
    """``frame``'s header with another payload (length field and CRC fixed)."""
    header = bytearray(frame[: wire.HEADER_SIZE])
    header[42:46] = len(payload).to_bytes(4, "little")
    body = bytes(header) + payload
    return body + zlib.crc32(body).to_bytes(4, "little")


def _error(call: Callable[[], object]) -> WireError:
    with pytest.raises(WireError) as err:
        call()
    return err.value


def _i8_frame(scale: float) -> bytes:
    """An int8 model frame with ``scale`` in its header."""
    return _patched(wire.encode(_model([1.0, -0.5, 0.25], DType.I8)), 38, struct.pack("<f", scale))


def _block_frame(scale: float) -> bytes:
    """An int8_block model frame whose only block has ``scale`` (and a value of 127)."""
    frame = wire.encode(_model([1.0, -0.5], DType.I8_BLOCK))
    return _patched(frame, wire.HEADER_SIZE, struct.pack("<f", scale))


def _short_dist_beacon() -> bytes:
    """A beacon frame whose label distribution is one float shorter than its count says."""
    frame = wire.encode(_beacon())
    return _with_payload(frame, wire.parse_frame(frame).payload[:-4])


HEAD_NOT_SENDER = Message(Kind.BEACON, sender=7, cluster=7,
                          beacon=Beacon(1.0, 2.0, Role.HEAD, 8, 0))  # fmt: skip


# --------------------------------------------------------------- each refusal: reason + message
REFUSALS: dict[str, tuple[Callable[[], object], str, str]] = {
    "unknown kind": (
        lambda: wire.decode(_patched(wire.encode(STATUS), 3, b"\xc8")),
        "unknown_code",
        "unknown code in header: 200 is not a valid Kind",
    ),
    "reserved flags set": (
        lambda: wire.decode(_patched(wire.encode(STATUS), 6, b"\x01")),
        "reserved_flags",
        "reserved flags 0x0001 set (must be 0)",
    ),
    "chunk index equal to count": (
        lambda: wire.decode(_patched(wire.encode(STATUS), 22, struct.pack("<HH", 1, 1))),
        "bad_chunk",
        "bad chunk numbering 1/1",
    ),
    "model encoding on a status": (
        lambda: wire.decode(_patched(wire.encode(STATUS), 5, b"\x01")),
        "bad_dtype",
        "STATUS with model encoding F32",
    ),
    "f32 payload not whole numbers": (
        lambda: wire.decode(_with_payload(wire.encode(_model([1.0], DType.F32)), bytes(5))),
        "bad_length",
        "model payload of 5 bytes is not a whole number of F32",
    ),
    "f32 payload with a NaN": (
        lambda: wire.decode(wire.encode(_model([1.0, np.nan], DType.F32))),
        "non_finite",
        "model carries non-finite numbers (inf or NaN)",
    ),
    "int8 block overflowing to inf": (
        lambda: wire.decode(_block_frame(3e38)),
        "non_finite",
        "model carries non-finite numbers (inf or NaN)",
    ),
    "int8 block with a zero scale": (
        lambda: wire.decode(_block_frame(0.0)),
        "non_finite",
        "int8_block model with a scale that is not finite and positive",
    ),
    "int8 with a zero scale": (
        lambda: wire.decode(_i8_frame(0.0)),
        "non_finite",
        "int8 model with invalid scale 0.0",
    ),
    "int8 with an infinite scale": (
        lambda: wire.decode(_i8_frame(np.inf)),
        "non_finite",
        "int8 model with invalid scale inf",
    ),
    "int8 with a NaN scale": (
        lambda: wire.decode(_i8_frame(np.nan)),
        "non_finite",
        "int8 model with invalid scale nan",
    ),
    "model with no encoding": (
        lambda: wire.encode(_model([1.0], DType.NONE)),
        "bad_dtype",
        f"cannot encode a model with dtype {DType.NONE!r}",
    ),
    "decoder given no model encoding": (
        lambda: wire._decode_model(b"", DType.NONE, 1.0),  # header checks keep frames from it
        "bad_dtype",
        "unknown model dtype code 0",
    ),
    "beacon message without a beacon": (
        lambda: wire.encode(Message(Kind.BEACON, sender=3)),
        "bad_beacon",
        "a BEACON message needs a beacon",
    ),
    "status not UTF-8": (
        lambda: wire.decode(_with_payload(wire.encode(STATUS), b"\xff\xfe")),
        "bad_status",
        "status payload is not UTF-8",
    ),
    "beacon payload too short": (
        lambda: wire.decode(_with_payload(wire.encode(_beacon()), bytes(10))),
        "bad_beacon",
        "beacon payload of 10 bytes is too short",
    ),
    "beacon distribution shorter than its count": (
        lambda: wire.decode(_short_dist_beacon()),
        "bad_beacon",
        "beacon label distribution length does not match its count",
    ),
    "beacon with a NaN x": (
        lambda: wire.decode(wire.encode(_beacon(x=np.nan))),
        "non_finite",
        "beacon carries non-finite numbers",
    ),
    "beacon with a NaN y": (
        lambda: wire.decode(wire.encode(_beacon(y=np.nan))),
        "non_finite",
        "beacon carries non-finite numbers",
    ),
    "beacon with a NaN in its distribution": (
        lambda: wire.decode(wire.encode(_beacon(dist=(0.5, np.nan)))),
        "non_finite",
        "beacon carries non-finite numbers",
    ),
    "beacon with an unknown role": (
        lambda: wire.decode(_patched(wire.encode(_beacon()), wire.HEADER_SIZE + 8, b"\x63")),
        "bad_beacon",
        "unknown role code 99",
    ),
    "beacon head that is not its sender": (
        lambda: wire.decode(wire.encode(HEAD_NOT_SENDER)),
        "bad_beacon",
        "beacon of robot 7: role HEAD with head 8 and cluster 7 is not a DK-means state",
    ),
    "one chunk of several to decode": (
        lambda: wire.decode(wire.encode_frames(STATUS, max_payload=1)[0]),
        "chunk",
        "frame is one chunk of several: feed it to a Reassembler",
    ),
    "a frame too long to encode": (
        lambda: wire.encode(Message(Kind.STATUS, sender=3, text="a" * (MAX_TEXT + 1))),
        "too_long",
        f"a frame of {MAX_TEXT + 1} payload bytes is over MAX_FRAME ({wire.MAX_FRAME}): "
        "send it in chunks",
    ),
    "more chunks than the header numbers": (
        lambda: wire.encode_frames(Message(Kind.STATUS, sender=3, text="a" * 65536), 1),
        "undecodable",
        "65536 chunks exceed the 65535 a frame can number",
    ),
    "a frame too long to decode": (
        lambda: wire.decode(bytes(wire.MAX_FRAME + 1)),
        "too_long",
        f"frame of {wire.MAX_FRAME + 1} bytes is over MAX_FRAME ({wire.MAX_FRAME})",
    ),
    "a frame shorter than the envelope": (
        lambda: wire.decode(bytes(10)),
        "too_short",
        f"frame of 10 bytes is shorter than the {wire.OVERHEAD}-byte envelope",
    ),
    "a foreign magic": (
        lambda: wire.decode(b"XYZ" + wire.encode(STATUS)[3:]),
        "foreign",
        "foreign frame: magic b'XY', expected b'GL'",
    ),
    "another wire version": (
        lambda: wire.decode(_patched(wire.encode(STATUS), 2, b"\x09")),
        "version",
        "unsupported wire version 9 (this build speaks 1)",
    ),
    "a corrupted frame": (
        lambda: wire.decode(wire.encode(STATUS)[:-1] + b"\x00"),
        "crc",
        "CRC mismatch: frame corrupted in transit",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_every_refusal_names_its_reason_and_says_what_is_wrong(case: str) -> None:
    call, reason, message = REFUSALS[case]
    err = _error(call)
    assert (err.reason, str(err)) == (reason, message)


def test_an_out_of_range_field_says_so() -> None:
    err = _error(lambda: wire.encode(Message(Kind.PROPOSE, sender=-5)))
    assert str(err).startswith("field out of range for the wire format: ")


def test_an_unknown_dtype_code_says_which() -> None:
    err = _error(lambda: wire.decode(_patched(wire.encode(STATUS), 5, b"\x07")))
    assert err.reason == "unknown_code"
    assert str(err) == "unknown code in header: 7 is not a valid DType"


# ------------------------------------------------------------------------ size and chunk limits
def test_a_frame_of_exactly_max_frame_bytes_goes_both_ways() -> None:
    msg = Message(Kind.STATUS, sender=3, text="a" * MAX_TEXT)
    frame = wire.encode(msg)
    assert len(frame) == wire.MAX_FRAME
    assert wire.decode(frame).text == msg.text


def test_a_payload_over_max_frame_travels_in_chunks() -> None:
    msg = Message(Kind.STATUS, sender=3, text="a" * wire.MAX_FRAME)
    frames = wire.encode_frames(msg, max_payload=wire.MAX_FRAME // 2)
    assert len(frames) == 2
    r = wire.Reassembler()
    assert r.feed(frames[0]) is None
    back = r.feed(frames[1])
    assert back is not None and back.text == msg.text


def test_one_byte_chunks_and_the_65535_chunk_limit() -> None:
    assert len(wire.encode_frames(Message(Kind.STATUS, sender=3, text="abc"), 1)) == 3
    frames = wire.encode_frames(Message(Kind.STATUS, sender=3, text="a" * 0xFFFF), 1)
    assert len(frames) == 0xFFFF
    last = wire.parse_frame(frames[-1])
    assert (last.chunk_index, last.chunk_count) == (0xFFFE, 0xFFFF)


def test_non_model_frames_carry_scale_one() -> None:
    for msg in (STATUS, _beacon(), Message(Kind.PROPOSE, sender=3)):
        assert wire.parse_frame(wire.encode(msg)).scale == 1.0


def test_a_beacon_carries_its_frames_sample_count() -> None:
    back = wire.decode(wire.encode(_beacon()))
    assert back.beacon is not None and back.beacon.samples == 17


# ----------------------------------------------------------------------- quantisation and scales
# rint(v / s) differs for these two float32 values when divided in float64 (-85) instead of in
# float32 (-84) as the RP2040 firmware does (rintf(v / scale), firmware/core/gl_wire.c).
PEAK, TIE = np.float32("1.4554425"), np.float32("-0.96838504")


@pytest.mark.parametrize("as_type", [np.float32, np.float64])
def test_int8_quantises_with_a_float32_division_as_the_firmware(as_type: type) -> None:
    values = np.array([PEAK, TIE], dtype=as_type)
    one = wire.parse_frame(wire.encode(_model(values, DType.I8))).payload
    assert np.frombuffer(one, np.int8).tolist() == [127, -84]
    block = wire.parse_frame(wire.encode(_model(values, DType.I8_BLOCK))).payload
    assert np.frombuffer(block[4:], np.int8).tolist() == [127, -84]


def test_an_empty_int8_model_round_trips_with_scale_one() -> None:
    frame = wire.encode(_model(np.zeros(0, np.float32), DType.I8))
    assert wire.parse_frame(frame).scale == 1.0
    back = wire.decode(frame).model
    assert back is not None and back.shape == (0,)


def test_the_smallest_normal_scale_is_kept() -> None:
    tiny = np.finfo(np.float32).tiny
    value = np.float32(127 * np.float64(tiny))  # peak / 127 == tiny exactly
    frame = wire.encode(_model([value], DType.I8))
    assert wire.parse_frame(frame).scale == tiny
    back = wire.decode(frame).model
    assert back is not None and back[0] == value


def test_an_odd_number_of_int8_values_round_trips() -> None:
    values = np.array([1.0, -0.5, 0.25, 0.125, 2.0], np.float32)
    back = wire.decode(wire.encode(_model(values, DType.I8))).model
    assert back is not None and back.shape == (5,)
    np.testing.assert_allclose(back, values, atol=2.0 / 254)


@pytest.mark.parametrize("dtype", [DType.F32, DType.F16, DType.I8, DType.I8_BLOCK])
def test_decoded_models_are_float32(dtype: DType) -> None:
    back = wire.decode(wire.encode(_model([1.0, -0.5], dtype))).model
    assert back is not None and back.dtype == np.float32


def test_encoding_and_refusing_overflow_or_nan_raise_no_numpy_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for values, dtype in (([1e6], DType.F16), ([np.nan, 1.0], DType.I8),
                              ([np.inf, 1.0], DType.I8), ([np.nan], DType.I8_BLOCK)):  # fmt: skip
            wire.encode(_model(values, dtype))
        for frame in (_block_frame(3e38), _i8_frame(3e38)):
            assert _error(lambda f=frame: wire.decode(f)).reason == "non_finite"


# ---------------------------------------------------------------------------------- Reassembler
def test_a_two_chunk_message_is_reassembled() -> None:
    msg = Message(Kind.STATUS, sender=3, text="abcd")
    a, b = wire.encode_frames(msg, max_payload=2)
    r = wire.Reassembler()
    assert r.feed(b) is None
    back = r.feed(a)
    assert back is not None and back.text == "abcd"


def test_interleaved_chunks_of_two_senders_both_reassemble() -> None:
    one = wire.encode_frames(Message(Kind.STATUS, sender=3, text="abcd"), 2)
    two = wire.encode_frames(Message(Kind.STATUS, sender=4, text="wxyz"), 2)
    r = wire.Reassembler()
    assert r.feed(one[0]) is None and r.feed(two[0]) is None
    assert r.pending == 2
    back_one, back_two = r.feed(one[1]), r.feed(two[1])
    assert back_one is not None and back_one.text == "abcd"
    assert back_two is not None and back_two.text == "wxyz"


def test_chunks_that_disagree_are_refused_by_name() -> None:
    a = wire.encode_frames(Message(Kind.STATUS, sender=3, text="abcd"), 2)
    b = wire.encode_frames(Message(Kind.STATUS, sender=3, samples=9, text="abcd"), 2)
    r = wire.Reassembler()
    r.feed(a[0])
    err = _error(lambda: r.feed(b[1]))
    assert err.reason == "bad_chunk"
    assert str(err) == "chunks of one message disagree on a header field"
    assert r.pending == 0


@pytest.mark.parametrize("limit", [None, 2])
def test_the_reassembler_keeps_max_pending_and_drops_the_oldest(limit: int | None) -> None:
    r = wire.Reassembler() if limit is None else wire.Reassembler(limit)
    keep = 64 if limit is None else limit
    chunked = [wire.encode_frames(Message(Kind.STATUS, sender=s, text="ab"), 1)
               for s in range(keep + 1)]  # fmt: skip
    for frames in chunked:
        assert r.feed(frames[0]) is None
    assert r.pending == keep
    assert r.feed(chunked[0][1]) is None  # its first chunk was dropped: it starts over
    back = r.feed(chunked[-1][1])
    assert back is not None and back.sender == keep
