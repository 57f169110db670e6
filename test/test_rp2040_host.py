"""The coprocessor firmware's C core, host build (the machine's gcc, loaded with ctypes): the
shared wire vectors byte for byte, the trainer and aggregator against Python, every malformed
frame rejected and counted, and fuzzed input never crashing it. The same commands on the
emulated RP2040 are in test_rp2040_emulator.py."""

from __future__ import annotations

import contextlib
import ctypes
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossip_learning import wire
from gossip_learning.aggregation import CumulativeFedAvg
from gossip_learning.coprocessor import protocol
from gossip_learning.coprocessor.client import Coprocessor, CoprocessorError
from gossip_learning.coprocessor.trainer import (
    CoprocessorAccumulator,
    CoprocessorTrainer,
    model_frames,
)
from gossip_learning.learner import HeadSpec, init_params
from gossip_learning.learning.numpy_trainer import NumpyTrainer
from gossip_learning.messages import Beacon, DType, Kind, Layer, Message, Role
from gossip_learning.training import training_seed
from rp2040_support import host_device, host_library

VECTORS = json.loads((Path(__file__).parent / "data" / "wire_vectors.json").read_text())
SPEC = HeadSpec("linear", 160, 10)
SMALL = HeadSpec("linear", 16, 4)  # one frame of it fits a serial packet
# Firmware training vs NumpyTrainer: the same float32 operations, in another summation order
# (BLAS). SGD steps are linear in the gradient, so the difference stays at rounding; Adam divides
# by sqrt(v) + eps, which magnifies last-bit gradient differences of parameters whose gradients
# are tiny (measured: 1.1e-5 after 4 steps at lr 0.01, docs/results/rp2040.json).
PARAM_ATOL = {"sgd": 1e-6, "adam": 5e-5}
LOSS_RTOL = 1e-5


class Header(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_uint8),
        ("layer", ctypes.c_uint8),
        ("dtype", ctypes.c_uint8),
        ("version", ctypes.c_uint8),
        ("flags", ctypes.c_uint16),
        ("sender", ctypes.c_uint32),
        ("receiver", ctypes.c_uint32),
        ("round", ctypes.c_uint32),
        ("step", ctypes.c_uint16),
        ("chunk_index", ctypes.c_uint16),
        ("chunk_count", ctypes.c_uint16),
        ("cluster", ctypes.c_int32),
        ("samples", ctypes.c_uint32),
        ("model_version", ctypes.c_uint32),
        ("scale", ctypes.c_float),
        ("payload_len", ctypes.c_uint32),
    ]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    c = ctypes.CDLL(str(host_library()))
    c.gl_frame_encode.restype = ctypes.c_size_t
    c.gl_frame_encode.argtypes = [
        ctypes.POINTER(Header), ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
        ctypes.c_size_t,
    ]  # fmt: skip
    c.gl_frame_parse.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(Header),
        ctypes.POINTER(ctypes.c_void_p),
    ]  # fmt: skip
    c.gl_model_scale.restype = ctypes.c_float
    c.gl_model_scale.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    c.gl_model_encode.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint8, ctypes.c_float,
        ctypes.c_char_p,
    ]  # fmt: skip
    c.gl_model_bytes.restype = ctypes.c_size_t
    c.gl_model_bytes.argtypes = [ctypes.c_uint8, ctypes.c_size_t]
    c.gl_model_encode_range.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint8, ctypes.c_size_t, ctypes.c_size_t,
        ctypes.c_char_p,
    ]  # fmt: skip
    c.gl_model_get.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint8, ctypes.c_float,
        ctypes.POINTER(ctypes.c_float),
    ]  # fmt: skip
    c.gl_beacon_encode.restype = ctypes.c_size_t
    c.gl_beacon_encode.argtypes = [
        ctypes.c_float, ctypes.c_float, ctypes.c_uint8, ctypes.c_int32, ctypes.c_uint16,
        ctypes.c_void_p, ctypes.c_uint16, ctypes.c_char_p, ctypes.c_size_t,
    ]  # fmt: skip
    c.gl_cobs_encode.restype = ctypes.c_size_t
    c.gl_cobs_encode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    c.gl_cobs_decode.restype = ctypes.c_long
    c.gl_cobs_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    c.gl_crc32.restype = ctypes.c_uint32
    c.gl_crc32.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    return c


def _c_encode(lib: ctypes.CDLL, v: dict, raw: bytes) -> bytes:  # type: ignore[type-arg]
    """Encode vector ``v`` with the C core from its decoded fields (as Python decodes them)."""
    frame = wire.parse_frame(raw)
    msg = wire.decode(raw)
    h = Header(
        kind=int(frame.kind), layer=int(frame.layer), dtype=int(frame.dtype), flags=0,
        sender=v["sender"], receiver=v["receiver"], round=v["round"], step=v["step"],
        chunk_index=0, chunk_count=1, cluster=v["cluster"], samples=v["samples"],
        model_version=v["model_version"], scale=1.0,
    )  # fmt: skip
    payload = b""
    if msg.model is not None:
        model = np.asarray(v["model"], dtype=np.float32)
        dt = int(frame.dtype)
        h.scale = lib.gl_model_scale(model.ctypes.data, model.size) if dt == DType.I8 else 1.0
        size = lib.gl_model_bytes(dt, model.size)
        buf = ctypes.create_string_buffer(size)
        assert lib.gl_model_encode_range(model.ctypes.data, model.size, dt, 0, size, buf) == 0
        payload = buf.raw
    elif msg.beacon is not None:
        b = msg.beacon
        dist = np.asarray(b.label_dist, dtype=np.float32)
        buf = ctypes.create_string_buffer(256)
        n = lib.gl_beacon_encode(
            b.x, b.y, int(b.role), b.head, b.neighbours, dist.ctypes.data, dist.size, buf, 256
        )
        payload = buf.raw[:n]
    out = ctypes.create_string_buffer(len(payload) + 64)
    n = lib.gl_frame_encode(ctypes.byref(h), payload, len(payload), out, len(out))
    return out.raw[:n]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_wire_vectors_identical_bytes(lib: ctypes.CDLL, v: dict) -> None:  # type: ignore[type-arg]
    raw = bytes.fromhex(v["hex"])
    assert _c_encode(lib, v, raw) == raw
    h = Header()
    ptr = ctypes.c_void_p()
    assert lib.gl_frame_parse(raw, len(raw), ctypes.byref(h), ctypes.byref(ptr)) == 0
    assert (h.sender, h.receiver, h.round, h.step) == (
        v["sender"],
        v["receiver"],
        v["round"],
        v["step"],
    )
    assert (h.cluster, h.samples, h.model_version) == (
        v["cluster"],
        v["samples"],
        v["model_version"],
    )
    assert Kind(h.kind).name == v["kind"] and h.payload_len == len(raw) - wire.OVERHEAD


def test_fp16_conversion_matches_numpy_everywhere(lib: ctypes.CDLL) -> None:
    """Every float16 value back and forth, plus float32 values on the rounding boundaries."""
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)].astype(np.float32)
    rng = np.random.default_rng(1)
    mids = (finite[:-1] + finite[1:]) / 2  # exact ties between neighbours (round to even)
    extra = rng.normal(0, 300, 20_000).astype(np.float32)
    tiny = rng.normal(0, 1e-6, 20_000).astype(np.float32)
    values = np.concatenate([finite, mids, extra, tiny, [70000.0, -1e9, 65519.0, 65520.0]])
    values = values.astype(np.float32)
    buf = ctypes.create_string_buffer(values.size * 2)
    assert lib.gl_model_encode(values.ctypes.data, 0, values.size, 2, 1.0, buf) == 0
    with np.errstate(over="ignore"):
        assert buf.raw == values.astype("<f2").tobytes()


def test_int8_matches_numpy(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(2)
    for scale_of in (1.0, 1e-3, 37.0):
        model = (rng.normal(size=1610) * scale_of).astype(np.float32)
        msg = Message(kind=Kind.MODEL, sender=1, model=model, dtype=DType.I8)
        ref = wire.encode(msg)
        frame = wire.parse_frame(ref)
        scale = lib.gl_model_scale(model.ctypes.data, model.size)
        assert np.float32(scale) == np.float32(frame.scale)
        buf = ctypes.create_string_buffer(model.size)
        assert lib.gl_model_encode(model.ctypes.data, 0, model.size, 3, scale, buf) == 0
        assert buf.raw == frame.payload


def test_int8_block_matches_numpy_in_any_byte_range(lib: ctypes.CDLL) -> None:
    """The C block encoding is wire.py's byte for byte, whole or cut at any offsets (chunks),
    and gl_model_get reads back every value wire.py decodes."""
    rng = np.random.default_rng(5)
    for n in (1, 63, 64, 65, 200, 1610):
        model = (rng.normal(size=n) * rng.choice([1e-3, 1.0, 40.0], n)).astype(np.float32)
        if n % 2 == 0:
            model[: min(n, 64)] = 0.0  # an all-zero block (scale 1 on the wire)
        payload = wire.parse_frame(_model_frame(model)).payload
        size = lib.gl_model_bytes(int(DType.I8_BLOCK), n)
        assert size == len(payload) == n + 4 * -(-n // 64)
        buf = ctypes.create_string_buffer(size)
        assert lib.gl_model_encode_range(model.ctypes.data, n, 4, 0, size, buf) == 0
        assert buf.raw == payload
        for b0, b1 in ((0, 1), (3, 70), (67, 69), (size - 5, size), (size // 2, size)):
            if b1 > size or b0 < 0:
                assert lib.gl_model_encode_range(model.ctypes.data, n, 4, 0, b1, buf) == 23
                continue
            part = ctypes.create_string_buffer(max(1, b1 - b0))
            assert lib.gl_model_encode_range(model.ctypes.data, n, 4, b0, b1, part) == 0
            assert part.raw[: b1 - b0] == payload[b0:b1], (n, b0, b1)
        decoded = wire.decode(_model_frame(model)).model
        v = ctypes.c_float()
        for i in range(n):
            assert lib.gl_model_get(payload, i, 4, 1.0, ctypes.byref(v)) == 0
            assert np.float32(v.value) == decoded[i]
        bad = bytearray(payload)
        struct.pack_into("<f", bad, 0, 0.0)  # a block scale of 0: refused, not read as zeros
        assert lib.gl_model_get(bytes(bad), 0, 4, 1.0, ctypes.byref(v)) == 9  # GL_E_SCALE
    assert lib.gl_model_bytes(9, 10) == 0  # unknown dtype


def _model_frame(model: np.ndarray) -> bytes:
    return wire.encode(Message(kind=Kind.MODEL, sender=1, model=model, dtype=DType.I8_BLOCK))


def test_crc_and_cobs_agree_with_python(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(3)
    for n in (0, 1, 253, 254, 255, 508, 1000):
        for zeros in (False, True):
            data = rng.integers(0 if zeros else 1, 256, n, dtype=np.uint8).tobytes()
            assert lib.gl_crc32(0, data, len(data)) == zlib.crc32(data)
            out = ctypes.create_string_buffer(n + n // 254 + 2)
            m = lib.gl_cobs_encode(data, len(data), out, len(out))
            assert out.raw[:m] == protocol.cobs_encode(data)
            back = ctypes.create_string_buffer(max(1, n))
            assert lib.gl_cobs_decode(out.raw, m, back, len(back)) == n
            assert back.raw[:n] == data


def _trainer_vs_numpy(dev: Coprocessor, optimizer: str, n: int, batch: int, lr: float) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(n, SPEC.in_dim)).astype(np.float32)
    y = rng.integers(0, SPEC.num_classes, n)
    p0 = init_params(SPEC, 7)
    kw = {"lr": lr, "weight_decay": 1e-4, "epochs": 2, "batch_size": batch, "optimizer": optimizer}
    tr = CoprocessorTrainer(dev, SPEC, X, y, seed=11, robot_id=5, **kw)  # type: ignore[arg-type]
    got, loss = tr.train(p0, 3)
    ref, ref_loss = NumpyTrainer(SPEC, **kw).train(p0, X, y, training_seed(11, 3, 5))  # type: ignore[arg-type]
    assert np.abs(ref - p0).max() > 100 * PARAM_ATOL[optimizer]  # it did learn something
    np.testing.assert_allclose(got, ref, rtol=0, atol=PARAM_ATOL[optimizer])
    assert loss == pytest.approx(ref_loss, rel=LOSS_RTOL)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_matches_numpy_trainer(optimizer: str) -> None:
    with host_device() as dev:
        _trainer_vs_numpy(dev, optimizer, n=300, batch=128, lr=0.01)


def test_merge_is_bit_identical_to_python_and_skips_repeat_senders() -> None:
    rng = np.random.default_rng(5)
    own = rng.normal(size=SPEC.num_params()).astype(np.float32)
    others = [rng.normal(size=SPEC.num_params()).astype(np.float32) for _ in range(3)]
    ref = CumulativeFedAvg(SPEC.num_params())
    with host_device() as dev:
        dev.configure(160, 10, "adam", 1e-3, 0.0, SPEC.version(), 4)
        acc = CoprocessorAccumulator(dev, SPEC, robot_id=4)
        for a in (ref, acc):
            a.reset(4, own, 37.0)
            assert a.add(1, others[0], 12.0) and a.add(2, others[1], 250.0)
            assert not a.add(1, others[2], 9.0)  # repeat sender: nothing merged
            assert a.merged == 2
        assert acc.mixing_row() == pytest.approx(ref.mixing_row())
        out_ref = own.copy()
        out = own.copy()
        ref.finalise(out_ref)
        acc.finalise(out)
        np.testing.assert_array_equal(out, out_ref)
        # the MCU itself refuses a repeat sender (the host-side check bypassed)
        dev.merge_reset(37)
        for f in model_frames(others[0], 1, SPEC.version(), 512, 12):
            dev.put_frame(f, merge=True)
        with pytest.raises(CoprocessorError, match="duplicate"):
            for f in model_frames(others[2], 1, SPEC.version(), 512, 9):
                dev.put_frame(f, merge=True)
        assert dev.status()["rejects.duplicate"] == 1


@pytest.mark.parametrize("dtype", ["f32", "f16", "int8", "int8_block"])
@pytest.mark.parametrize("mtu", [512, 101, 0])
def test_get_frames_equal_python_chunks(dtype: str, mtu: int) -> None:
    """The MCU's chunked frames are wire.encode_frames' bytes (mtu 0: one frame, if it fits)."""
    params = init_params(SPEC, 9)
    with host_device() as dev:
        dev.configure(160, 10, "sgd", 1e-3, 0.0, SPEC.version(), 8)
        for f in model_frames(params, 8, SPEC.version(), 512):
            dev.put_frame(f, merge=False)
        msg = Message(
            kind=Kind.MODEL, sender=8, round=4, step=2, layer=Layer.INTRA, cluster=3, samples=60,
            model_version=SPEC.version(), model=params, dtype=wire.DTYPE_NAMES[dtype],
        )  # fmt: skip
        max_payload = mtu - wire.OVERHEAD if mtu else 0
        ref = wire.encode_frames(msg, max_payload)
        hdr = {"round_no": 4, "step": 2, "layer": 2, "cluster": 3, "samples": 60}
        if mtu == 0 and len(ref[0]) > 2048:
            with pytest.raises(CoprocessorError, match="too_big"):
                dev.get_frames(dtype, max_payload, **hdr)
            return
        assert dev.get_frames(dtype, max_payload, **hdr) == ref


def test_chunks_in_any_order_reassemble() -> None:
    params = init_params(SPEC, 10)
    frames = model_frames(params, 3, SPEC.version(), 200)  # 43 chunks of 150 bytes
    rng = np.random.default_rng(0)
    order = rng.permutation(len(frames))
    order = np.concatenate([[len(frames) - 1], order[order != len(frames) - 1]])  # last first
    with host_device() as dev:
        dev.configure(160, 10, "sgd", 1e-3, 0.0, SPEC.version(), 3)
        done = [dev.put_frame(frames[i], merge=False)[0] for i in order]
        assert done == [False] * (len(frames) - 1) + [True]
        asm = wire.Reassembler()
        got = [asm.feed(f) for f in dev.get_frames("f32", 462)]
        assert got[-1] is not None and got[-1].model is not None
        np.testing.assert_array_equal(got[-1].model, params)


def _bad_frames() -> list[tuple[str, bytes]]:
    """(reason, frame) for every rule of docs/wire-format.md the MCU checks."""
    v = SMALL.version()
    model = init_params(SMALL, 1)
    good = model_frames(model, 2, v, 0)[0]

    def recrc(b: bytes | bytearray) -> bytes:
        b = bytes(b[:-4])
        return b + struct.pack("<I", zlib.crc32(b))

    def field(off: int, fmt: str, value: object) -> bytes:
        b = bytearray(good)
        struct.pack_into(fmt, b, off, value)
        return recrc(b)

    flipped = bytearray(good)
    flipped[60] ^= 0x40
    nan = model.copy()
    nan[5] = np.nan
    i8 = wire.encode(
        Message(kind=Kind.MODEL, sender=2, model=model, dtype=DType.I8, model_version=v)
    )
    chunks = model_frames(model, 2, v, 150)
    i8_chunks = wire.encode_frames(
        Message(kind=Kind.MODEL, sender=2, model=model, dtype=DType.I8, model_version=v), 30
    )
    other_scale = bytearray(i8_chunks[1])
    struct.pack_into("<f", other_scale, 38, 2 * wire.parse_frame(i8_chunks[1]).scale)
    other_samples = bytearray(chunks[1])
    struct.pack_into("<I", other_samples, 30, 99)
    other_count = bytearray(chunks[1])
    struct.pack_into("<H", other_count, 24, len(chunks) + 1)
    return [
        ("short", good[:49]),
        ("magic", b"XX" + good[2:]),
        ("version", field(2, "<B", 2)),
        ("length", good + b"\x00"),
        ("crc", bytes(flipped)),
        ("code", field(3, "<B", 9)),
        ("code", field(5, "<B", 7)),
        ("flags", field(6, "<H", 1)),
        ("chunk", field(22, "<H", 1)),
        ("chunk", field(24, "<H", 0)),
        (
            "width",
            recrc(
                good[:42]
                + struct.pack("<I", 4 * SMALL.num_params() - 1)
                + good[46:-5]
                + b"\0\0\0\0"
            ),
        ),
        ("scale", recrc(bytearray(i8[:38]) + struct.pack("<f", 0.0) + i8[42:])),
        ("nonfinite", model_frames(nan, 2, v, 0)[0]),
        ("model_version", model_frames(model, 2, v + 1, 0)[0]),
        ("model_size", model_frames(model[:-1], 2, v, 0)[0]),
        (
            "not_model",
            wire.encode(
                Message(
                    kind=Kind.BEACON,
                    sender=2,
                    beacon=Beacon(0.0, 0.0, Role.NONE, -1, 0, (0.5, 0.5)),
                    model_version=v,
                )
            ),
        ),
        ("reassembly", chunks[0]),  # then chunks[1] with another count: see the test
        ("reassembly_second", recrc(other_count)),
        ("reassembly", i8_chunks[0]),  # then an int8 chunk of another scale
        ("reassembly_second", recrc(other_scale)),
        ("reassembly", chunks[0]),  # then a chunk with another sample count
        ("reassembly_second", recrc(other_samples)),
    ]


def test_malformed_frames_rejected_and_counted_by_reason() -> None:
    with host_device() as dev:
        check_rejections(dev)


def check_rejections(dev: Coprocessor) -> None:
    """Every malformed frame refused with its reason and counted; a good frame still works."""
    dev.configure(16, 4, "sgd", 1e-3, 0.0, SMALL.version(), 3)
    expected: dict[str, int] = {}
    for reason, frame in _bad_frames():
        if reason == "reassembly":
            assert dev.put_frame(frame, merge=False) == (False, pytest.approx(0, abs=1e12))
            continue
        name = "reassembly" if reason == "reassembly_second" else reason
        with pytest.raises(CoprocessorError) as err:
            dev.put_frame(frame, merge=False)
        assert err.value.reason == name, (reason, err.value.reason)
        expected[name] = expected.get(name, 0) + 1
    # a merge before MERGE_RESET, a zero weight, an unknown command, bad arguments
    good = model_frames(init_params(SMALL, 1), 2, SMALL.version(), 0)[0]
    with pytest.raises(CoprocessorError, match="state"):
        dev.put_frame(good, merge=True)
    dev.merge_reset(10)
    zero = model_frames(init_params(SMALL, 1), 6, SMALL.version(), 0, samples=0)[0]
    with pytest.raises(CoprocessorError, match="weight"):
        dev.put_frame(zero, merge=True)
    dev.merge_discard()
    with pytest.raises(CoprocessorError, match="command"):
        dev.call(0x42)  # type: ignore[arg-type]
    with pytest.raises(CoprocessorError, match="args"):
        dev.call(protocol.Cmd.TRAIN, b"\x00")
    # link layer: corrupt CRC, malformed COBS, too short, too long
    dev.send_raw(protocol.packet(1, 1, b"")[:-2] + b"\x07\x00")
    assert dev.read_reply()[:3] == (protocol.LINK_ERROR, 0, protocol.STATUS["serial_crc"])
    dev.send_raw(b"\x05\x01\x00")
    assert dev.read_reply()[2] == protocol.STATUS["cobs"]
    dev.send_raw(protocol.cobs_encode(b"\x01\x02\x03") + b"\x00")
    assert dev.read_reply()[2] == protocol.STATUS["serial_short"]
    dev.send_raw(b"\x01" * 5000 + b"\x00")
    assert dev.read_reply()[2] == protocol.STATUS["serial_overflow"]
    s = dev.status()
    for name, count in expected.items():
        assert s[f"rejects.{name}"] == count, name
    for name in ("state", "weight", "command", "args", "serial_crc", "cobs", "serial_short",
                 "serial_overflow"):  # fmt: skip
        assert s[f"rejects.{name}"] == 1, name
    assert dev.put_frame(good, merge=False)[0]  # still works


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=700), cut=st.integers(0, 700))
def test_fuzzed_frames_and_packets_never_crash(lib: ctypes.CDLL, data: bytes, cut: int) -> None:
    h = Header()
    ptr = ctypes.c_void_p()
    lib.gl_frame_parse(data, len(data), ctypes.byref(h), ctypes.byref(ptr))
    out = ctypes.create_string_buffer(800)
    lib.gl_cobs_decode(data, len(data), out, len(out))
    with host_device() as dev:
        dev.send_raw(data[:cut] + b"\x00")  # garbage on the line: at most a link-error reply
        dev.drain()
        dev.call(protocol.Cmd.CONFIG, struct.pack("<HHBddIII", 160, 10, 0, 1e-3, 0.0, 1, 1, 1))
        # a valid packet carrying a fuzzed (or mutated) frame
        good = model_frames(init_params(SPEC, 0), 2, 1, 300)[0]
        mutated = bytearray(good)
        for i, b in enumerate(data[:16]):
            mutated[(b * 7 + i) % len(mutated)] ^= (cut + i) & 0xFF
        for frame in (data, bytes(mutated)):
            with contextlib.suppress(CoprocessorError):
                dev.put_frame(frame, merge=bool(cut & 1))
        assert dev.hello().name == "gossip_learning-rp2040"


def test_wire_test_vectors_exist() -> None:
    assert {v["kind"] for v in VECTORS} >= {"BEACON", "MODEL", "ACCEPT"}
