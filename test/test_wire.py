"""Wire envelope: round trips, integrity checks, chunking and the shared test vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gossip_learning import wire
from gossip_learning.errors import WireError
from gossip_learning.wire import Beacon, DType, Kind, Layer, Message, Role

VECTORS = Path(__file__).parent / "data" / "wire_vectors.json"


def _model(n: int = 37, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n).astype(np.float32)


def _beacon_msg() -> Message:
    b = Beacon(12.5, 80.25, Role.HEAD, 7, 4, (0.5, 0.25, 0.25))
    return Message(
        Kind.BEACON, sender=7, round=3, step=2, layer=Layer.CLUSTER, cluster=7168, beacon=b
    )


def test_beacon_round_trip() -> None:
    msg = _beacon_msg()
    back = wire.decode(wire.encode(msg))
    assert back == msg
    assert back.beacon is not None and back.beacon.label_dist == (0.5, 0.25, 0.25)


@pytest.mark.parametrize("kind", [Kind.ACCEPT, Kind.REPLY, Kind.MODEL])
def test_model_round_trip_f32_is_exact(kind: Kind) -> None:
    m = _model()
    msg = Message(
        kind,
        sender=1,
        receiver=2,
        round=5,
        step=9,
        layer=Layer.INTRA,
        cluster=3,
        samples=120,
        model_version=0xDEADBEEF,
        model=m,
    )
    back = wire.decode(wire.encode(msg))
    assert back == msg  # header fields
    assert back.model is not None and np.array_equal(back.model, m)


def test_f16_and_int8_are_close_and_smaller() -> None:
    m = _model(1000)
    sizes = {}
    for dt, tol in ((DType.F32, 0), (DType.F16, 2e-3), (DType.I8, 0.02)):
        frame = wire.encode(Message(Kind.MODEL, sender=1, samples=1, model=m, dtype=dt))
        sizes[dt] = len(frame)
        back = wire.decode(frame).model
        assert back is not None
        assert np.max(np.abs(back - m)) <= tol * max(1.0, float(np.max(np.abs(m))))
    assert sizes[DType.F32] == wire.OVERHEAD + 4000
    assert sizes[DType.F16] == wire.OVERHEAD + 2000
    assert sizes[DType.I8] == wire.OVERHEAD + 1000


def test_every_flipped_byte_is_caught() -> None:
    frame = bytearray(wire.encode(_beacon_msg()))
    for i in range(len(frame)):
        bad = bytearray(frame)
        bad[i] ^= 0x40
        with pytest.raises(WireError):
            wire.decode(bytes(bad))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: b"XY" + f[2:], "foreign"),
        (lambda f: f[:10], "shorter"),
        (lambda f: f + b"\x00", "length"),
        (lambda f: f[:2] + b"\x09" + f[3:], "version"),
    ],
)
def test_bad_frames_say_what_is_wrong(mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WireError, match=needle):
        wire.decode(mutate(wire.encode(_beacon_msg())))


def test_chunking_and_reassembly_in_any_order() -> None:
    m = _model(3000)
    msg = Message(
        Kind.MODEL, sender=4, round=2, step=1, layer=Layer.INTER, cluster=9, samples=50, model=m
    )
    frames = wire.encode_frames(msg, max_payload=1000)
    assert len(frames) == 12
    assert all(len(f) <= 1000 + wire.OVERHEAD for f in frames)
    with pytest.raises(WireError, match="Reassembler"):
        wire.decode(frames[0])
    r = wire.Reassembler()
    order = np.random.default_rng(0).permutation(len(frames))
    outs = [r.feed(frames[i]) for i in order]
    assert all(o is None for o in outs[:-1])
    done = outs[-1]
    assert done is not None and done.model is not None
    assert np.array_equal(done.model, m)
    assert r.pending == 0


def test_out_of_range_field_is_a_wire_error() -> None:
    with pytest.raises(WireError):
        wire.encode(Message(Kind.PROPOSE, sender=-5))


def test_shared_test_vectors() -> None:
    """Fixed bytes any other implementation must match (the RP2040 firmware checks them too)."""
    vectors = json.loads(VECTORS.read_text())
    assert len(vectors) >= 4
    for v in vectors:
        frame = bytes.fromhex(v["hex"])
        msg = wire.decode(frame)
        assert msg.kind.name == v["kind"]
        for key in ("sender", "receiver", "round", "step", "cluster", "samples", "model_version"):
            assert getattr(msg, key) == v[key], key
        if "model" in v:
            assert msg.model is not None
            np.testing.assert_allclose(
                msg.model, np.array(v["model"], dtype=np.float32), atol=v["atol"]
            )
        if "beacon" in v:
            assert msg.beacon is not None
            assert [msg.beacon.x, msg.beacon.y, int(msg.beacon.role), msg.beacon.head] == v[
                "beacon"
            ]
        assert wire.encode(msg) == frame, f"{v['name']}: re-encoding changed the bytes"


# ----------------------------------------------------------------- strictness (issue 11)
def _model_frame(model: np.ndarray, dtype: DType = DType.F32) -> bytes:
    return wire.encode(Message(Kind.MODEL, sender=1, samples=1, model=model, dtype=dtype))


def _reframe(frame: bytes, **patch: int) -> bytes:
    """``frame`` with header bytes patched (offset -> byte) and a fresh CRC."""
    import zlib

    body = bytearray(frame[:-4])
    for off, val in patch.items():
        body[int(off[1:])] = val
    return bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "little")


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("dtype", [DType.F32, DType.F16])
def test_non_finite_models_are_refused_by_the_decoder(bad: float, dtype: DType) -> None:
    m = _model(8)
    m[3] = bad
    with pytest.raises(WireError, match="non-finite") as err:
        wire.decode(_model_frame(m, dtype))
    assert err.value.reason == "non_finite"


def test_an_f16_overflow_is_refused_not_turned_into_inf() -> None:
    with pytest.raises(WireError) as err:
        wire.decode(_model_frame(np.full(4, 1e6, np.float32), DType.F16))
    assert err.value.reason == "non_finite"


def test_reserved_flags_are_refused() -> None:
    frame = wire.encode(_beacon_msg())
    with pytest.raises(WireError, match="flags") as err:
        wire.decode(_reframe(frame, o6=1))
    assert err.value.reason == "reserved_flags"


@pytest.mark.parametrize("kind", [Kind.HANDOVER, Kind.PROPOSE])
def test_a_payload_on_an_empty_kind_is_refused(kind: Kind) -> None:
    frame = wire.encode(Message(Kind.STATUS, sender=1, text="xyz"))
    with pytest.raises(WireError, match="payload") as err:
        wire.decode(_reframe(frame, o3=int(kind)))
    assert err.value.reason == "unexpected_payload"


def test_frames_over_max_frame_are_refused_both_ways() -> None:
    big = np.zeros(wire.MAX_FRAME // 4, np.float32)
    with pytest.raises(WireError, match="MAX_FRAME"):
        wire.encode(Message(Kind.MODEL, sender=1, samples=1, model=big))
    frame = wire.encode(Message(Kind.MODEL, sender=1, samples=1, model=big[:-16]))
    over = frame[:-4] + bytes(64) + frame[-4:]
    with pytest.raises(WireError) as err:
        wire.decode(over)
    assert err.value.reason == "too_long"


@pytest.mark.parametrize("field", ["receiver", "dtype", "samples", "cluster"])
def test_reassembler_never_splices_chunks_of_different_messages(field: str) -> None:
    from dataclasses import replace

    m = _model(200)
    msg = Message(Kind.MODEL, sender=4, receiver=2, round=2, step=1, layer=Layer.INTER,
                  cluster=9, samples=50, model=m)  # fmt: skip
    other = replace(msg, **{field: {"receiver": 3, "dtype": DType.F16, "samples": 51,
                                    "cluster": 8}[field]})  # fmt: skip
    a = wire.encode_frames(msg, max_payload=100)
    b = wire.encode_frames(other, max_payload=100 if field != "dtype" else 50)
    r = wire.Reassembler()
    assert r.feed(a[0]) is None
    with pytest.raises(WireError, match="disagree"):
        for f in b[1:]:
            r.feed(f)


@pytest.mark.parametrize(
    ("role", "head", "cluster"),
    [(Role.HEAD, 8, 7), (Role.HEAD, 7, -1), (Role.MEMBER, 3, -1), (Role.NONE, -1, 4)],
)
def test_a_beacon_with_an_impossible_dkmeans_state_is_refused(
    role: Role, head: int, cluster: int
) -> None:
    b = Beacon(1.0, 2.0, role, head, 3)
    frame = wire.encode(Message(Kind.BEACON, sender=7, layer=Layer.CLUSTER, cluster=cluster,
                                beacon=b))  # fmt: skip
    with pytest.raises(WireError) as err:
        wire.decode(frame)
    assert err.value.reason == "bad_beacon"


# ------------------------------------------------------ int8 with one scale per block (issue 12)
def _layered_model() -> np.ndarray:
    """Values whose size differs by layer, as in a trained head: 0.01 … 3 across the vector."""
    rng = np.random.default_rng(7)
    return (rng.normal(size=2000) * np.repeat([0.01, 0.1, 1.0, 3.0], 500)).astype(np.float32)


def test_int8_block_layout_is_scale_then_values_per_64() -> None:
    m = _layered_model()[:130]  # blocks of 64, 64 and 2 values
    payload = wire.parse_frame(_model_frame(m, DType.I8_BLOCK)).payload
    assert len(payload) == 130 + 4 * 3
    for k, (start, count) in enumerate(((0, 64), (64, 64), (128, 2))):
        at = 68 * k
        (scale,) = np.frombuffer(payload, "<f4", 1, at)
        assert scale == np.float32(np.abs(m[start : start + count]).max() / 127.0)
        q = np.frombuffer(payload, np.int8, count, at + 4)
        np.testing.assert_array_equal(q, np.rint(m[start : start + count] / scale))


def test_int8_block_is_more_accurate_than_one_scale_for_6_percent_more_bytes() -> None:
    m = _layered_model()
    err, size = {}, {}
    for dt in (DType.I8, DType.I8_BLOCK):
        frame = _model_frame(m, dt)
        back = wire.decode(frame).model
        assert back is not None
        err[dt] = float(np.sqrt(np.mean((back - m) ** 2)))
        size[dt] = len(frame) - wire.OVERHEAD
    assert size[DType.I8_BLOCK] == size[DType.I8] + 4 * 32  # 32 blocks, the last of 16
    assert err[DType.I8_BLOCK] < 0.6 * err[DType.I8]
    small = slice(0, 500)  # the smallest layer: one scale rounds most of it to 0
    back = wire.decode(_model_frame(m, DType.I8)).model
    assert back is not None and np.count_nonzero(back[small]) < 50
    back = wire.decode(_model_frame(m, DType.I8_BLOCK)).model
    assert back is not None and np.count_nonzero(back[small]) > 450


@pytest.mark.parametrize("n", [0, 1, 64, 65])
def test_int8_block_round_trip_sizes_and_chunks(n: int) -> None:
    m = _model(n)
    msg = Message(Kind.MODEL, sender=1, samples=1, model=m, dtype=DType.I8_BLOCK)
    back = wire.decode(wire.encode(msg)).model
    assert back is not None and back.shape == (n,)
    assert np.max(np.abs(back - m), initial=0.0) <= np.abs(m).max(initial=0.0) / 254 + 1e-7
    r = wire.Reassembler()
    outs = [r.feed(f) for f in wire.encode_frames(msg, max_payload=7)]
    assert outs[-1] is not None and np.array_equal(outs[-1].model, back)


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_int8_block_payload_ending_in_a_bare_scale_is_refused(cut: int) -> None:
    frame = _model_frame(_model(64), DType.I8_BLOCK)  # 68 bytes: add 1..4 bytes of a 2nd block
    body = bytearray(frame[:-4]) + bytes([0x3F] * cut)
    struct_len = len(body) - wire.HEADER_SIZE
    body[42:46] = struct_len.to_bytes(4, "little")
    import zlib

    with pytest.raises(WireError, match="without values") as err:
        wire.decode(bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "little"))
    assert err.value.reason == "bad_length"


@pytest.mark.parametrize("scale", [0.0, -1.0, np.inf, np.nan])
def test_int8_block_bad_block_scale_is_refused(scale: float) -> None:
    frame = bytearray(_model_frame(_model(100), DType.I8_BLOCK))
    frame[wire.HEADER_SIZE + 68 : wire.HEADER_SIZE + 72] = np.float32(scale).tobytes()
    import zlib

    body = bytes(frame[:-4])
    with pytest.raises(WireError, match="scale") as err:
        wire.decode(body + zlib.crc32(body).to_bytes(4, "little"))
    assert err.value.reason == "non_finite"


def test_frame_receiver_reads_the_header_of_every_version_and_nothing_else() -> None:
    """What the ROS transports read to pass over another robot's mail in a shared inbox."""
    from gossip_learning.auth import FleetAuth

    msg = Message(Kind.PROPOSE, sender=3, receiver=11)
    sealed = wire.encode(msg, FleetAuth(b"a fleet key that is long enough!", 7))
    assert wire.frame_receiver(wire.encode(msg)) == 11
    assert wire.frame_receiver(sealed) == 11
    beacon = Message(Kind.BEACON, sender=1, beacon=Beacon(0.0, 0.0, Role.NONE, -1, 1))
    assert wire.frame_receiver(wire.encode(beacon)) == wire.BROADCAST
    assert wire.frame_receiver(b"\x00garbage") is None
    assert wire.frame_receiver(b"XX" + wire.encode(msg)[2:]) is None  # not a frame
    header = wire.encode(msg)[: wire.HEADER_SIZE]  # the header is all it needs
    assert wire.frame_receiver(header) == 11 and wire.frame_receiver(header[:-1]) is None
