"""Versioned binary envelope for every message the protocol sends.

The same bytes travel over both transports that exist: the in-process transport and the rclpy
transport (``std_msgs/UInt8MultiArray`` on ROS 2 topics), and the RP2040 coprocessor firmware
(``firmware/core/gl_wire.c``, docs/rp2040.md). Layout (little-endian), see docs/wire-format.md:

``header (46 B) | payload (payload_len B) | crc32 (4 B, over header + payload)``

The payload is a beacon (pose, cluster state, label distribution) or a model (flat parameter
vector in fp32, fp16, int8 with one scale, or int8 with one scale per block of 64 values).
:func:`encode_frames` can cut a large model into chunks, each a full frame with its own CRC, and
:class:`Reassembler` puts them back together; the coprocessor link chunks models, the
in-process and rclpy transports send one frame per message.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gossip_learning.auth import FleetAuth
from gossip_learning.errors import WireError
from gossip_learning.messages import (
    BROADCAST,
    DTYPE_NAMES,
    NO_CLUSTER,
    Beacon,
    DType,
    Kind,
    Layer,
    Message,
    Role,
)

__all__ = [
    "BROADCAST",
    "DTYPE_NAMES",
    "HEADER_SIZE",
    "MAX_FRAME",
    "NO_CLUSTER",
    "OVERHEAD",
    "Beacon",
    "DType",
    "FleetAuth",
    "Frame",
    "Kind",
    "Layer",
    "Message",
    "Reassembler",
    "Role",
    "decode",
    "encode",
    "encode_frames",
    "frame_receiver",
    "parse_frame",
]

MAGIC = b"GL"
VERSION = 1

_HEADER = struct.Struct("<2sBBBBHIIIHHHiIIfI")
_CRC = struct.Struct("<I")
_BEACON = struct.Struct("<ffBiiHH")
HEADER_SIZE = _HEADER.size
OVERHEAD = HEADER_SIZE + _CRC.size
MAX_FRAME = 16 * 1024 * 1024
MODEL_KINDS = (Kind.ACCEPT, Kind.REPLY, Kind.MODEL)
EMPTY_KINDS = (Kind.HANDOVER, Kind.PROPOSE)
I8_BLOCK = 64  # values per block of DType.I8_BLOCK: f32 scale, then up to 64 int8
_BLOCK_BYTES = 4 + I8_BLOCK
_F32_TINY = np.float32(np.finfo(np.float32).tiny)


def _int8_scales(peak: np.ndarray) -> np.ndarray:
    """max|w| / 127 per block in float32 (as the firmware: double division, rounded once),
    1.0 for an all-zero or tiny block so that every scale on the wire is finite, positive and
    the same on every platform."""
    scale = (peak.astype(np.float64) / 127.0).astype(np.float32)
    # 1.0 where that is not a normal float (0, or subnormal: the RP2040 flushes those to 0)
    return np.where(scale >= _F32_TINY, scale, np.float32(1.0)).astype(np.float32)


def _quantise(vec: np.ndarray, scale: np.ndarray | np.float32) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.clip(np.rint(vec / scale), -127, 127).astype(np.int8)


def _encode_blocks(vec: np.ndarray) -> bytes:
    """DType.I8_BLOCK: for each block of 64 values (the last may be shorter) its scale as
    little-endian f32, then its values as int8 with ``value = q * scale``."""
    n = vec.size
    blocks = -(-n // I8_BLOCK)
    padded = np.zeros(blocks * I8_BLOCK, dtype=np.float32)
    padded[:n] = vec
    rows = padded.reshape(blocks, I8_BLOCK)
    scales = _int8_scales(np.max(np.abs(rows), axis=1) if blocks else np.zeros(0, np.float32))
    q = _quantise(rows, scales[:, None])
    out = np.empty((blocks, _BLOCK_BYTES), dtype=np.uint8)
    out[:, :4] = scales.astype("<f4").view(np.uint8).reshape(blocks, 4)
    out[:, 4:] = q.view(np.uint8)
    tail = blocks * I8_BLOCK - n  # padding of the last block, not sent
    return out.tobytes()[: out.size - tail]


def _decode_blocks(payload: bytes) -> np.ndarray:
    full, rest = divmod(len(payload), _BLOCK_BYTES)
    if 0 < rest <= 4:
        raise WireError(
            f"int8_block payload of {len(payload)} bytes ends in a block without values",
            "bad_length",
        )
    n = full * I8_BLOCK + (rest - 4 if rest else 0)
    blocks = -(-n // I8_BLOCK)
    raw = np.zeros(blocks * _BLOCK_BYTES, dtype=np.uint8)
    raw[: len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    table = raw.reshape(blocks, _BLOCK_BYTES)
    scales = table[:, :4].copy().view("<f4").ravel()
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise WireError(
            "int8_block model with a scale that is not finite and positive", "non_finite"
        )
    with np.errstate(over="ignore"):
        vals = table[:, 4:].view(np.int8).astype(np.float32) * scales[:, None]
    return vals.ravel()[:n]


def _encode_model(model: np.ndarray, dtype: DType) -> tuple[bytes, float]:
    vec = np.ascontiguousarray(model, dtype=np.float32).ravel()
    if dtype == DType.F32:
        return vec.astype("<f4").tobytes(), 1.0
    if dtype == DType.F16:
        with np.errstate(over="ignore"):  # out of fp16 range: inf on the wire, refused there
            return vec.astype("<f2").tobytes(), 1.0
    if dtype == DType.I8:
        peak = np.max(np.abs(vec)) if vec.size else np.float32(0.0)
        scale = _int8_scales(np.asarray([peak], dtype=np.float32))[0]
        return _quantise(vec, scale).tobytes(), float(scale)
    if dtype == DType.I8_BLOCK:
        return _encode_blocks(vec), 1.0
    raise WireError(f"cannot encode a model with dtype {dtype!r}", "bad_dtype")


def _decode_model(payload: bytes, dtype: DType, scale: float) -> np.ndarray:
    if dtype == DType.I8_BLOCK:
        vec = _decode_blocks(payload)
        if not np.isfinite(vec).all():
            raise WireError("model carries non-finite numbers (inf or NaN)", "non_finite")
        return vec
    if dtype == DType.F32:
        width, np_type = 4, "<f4"
    elif dtype == DType.F16:
        width, np_type = 2, "<f2"
    elif dtype == DType.I8:
        width, np_type = 1, "i1"
    else:
        raise WireError(f"unknown model dtype code {int(dtype)}", "bad_dtype")
    if len(payload) % width:
        raise WireError(
            f"model payload of {len(payload)} bytes is not a whole number of {dtype.name}",
            "bad_length",
        )
    vec = np.frombuffer(payload, dtype=np_type).astype(np.float32)
    if dtype == DType.I8:
        if not np.isfinite(scale) or scale <= 0:
            raise WireError(f"int8 model with invalid scale {scale}", "non_finite")
        with np.errstate(over="ignore"):
            vec *= np.float32(scale)
    if not np.isfinite(vec).all():
        raise WireError("model carries non-finite numbers (inf or NaN)", "non_finite")
    return vec


def _encode_payload(msg: Message) -> tuple[bytes, DType, float]:
    if msg.kind == Kind.BEACON:
        if msg.beacon is None:
            raise WireError("a BEACON message needs a beacon", "bad_beacon")
        b = msg.beacon
        head = _BEACON.pack(b.x, b.y, int(b.role), b.head, 0, b.neighbours, len(b.label_dist))
        dist = np.asarray(b.label_dist, dtype="<f4").tobytes()
        return head + dist, DType.NONE, 1.0
    if msg.kind in (Kind.ACCEPT, Kind.REPLY, Kind.MODEL):
        if msg.model is None:
            raise WireError(f"a {msg.kind.name} message needs a model", "bad_model")
        data, scale = _encode_model(msg.model, msg.dtype)
        return data, msg.dtype, scale
    if msg.kind == Kind.STATUS:
        return msg.text.encode("utf-8"), DType.NONE, 1.0
    return b"", DType.NONE, 1.0


def _frame(
    msg: Message, dtype: DType, scale: float, index: int, count: int, payload: bytes
) -> bytes:
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        int(msg.kind),
        int(msg.layer),
        int(dtype),
        0,
        msg.sender,
        msg.receiver,
        msg.round,
        msg.step,
        index,
        count,
        msg.cluster,
        msg.samples,
        msg.model_version,
        scale,
        len(payload),
    )
    body = header + payload
    return body + _CRC.pack(zlib.crc32(body))


def encode_frames(msg: Message, max_payload: int = 0) -> list[bytes]:
    """Encode ``msg`` as one frame, or as chunks of at most ``max_payload`` payload bytes."""
    try:
        payload, dtype, scale = _encode_payload(msg)
        if min(len(payload), max_payload if max_payload > 0 else MAX_FRAME) + OVERHEAD > MAX_FRAME:
            raise WireError(
                f"a frame of {len(payload)} payload bytes is over MAX_FRAME ({MAX_FRAME}): "
                "send it in chunks",
                "too_long",
            )
        if max_payload <= 0 or len(payload) <= max_payload:
            return [_frame(msg, dtype, scale, 0, 1, payload)]
        pieces = [payload[i : i + max_payload] for i in range(0, len(payload), max_payload)]
        if len(pieces) > 0xFFFF:
            raise WireError(f"{len(pieces)} chunks exceed the 65535 a frame can number")
        return [_frame(msg, dtype, scale, i, len(pieces), p) for i, p in enumerate(pieces)]
    except struct.error as exc:
        raise WireError(f"field out of range for the wire format: {exc}") from exc


def encode(msg: Message, auth: FleetAuth | None = None) -> bytes:
    """Encode ``msg`` as a single frame; with ``auth``, an authenticated (version-2) one."""
    frame = encode_frames(msg)[0]
    return frame if auth is None else auth.seal(frame)


@dataclass(frozen=True, slots=True)
class Frame:
    """A checked frame before its payload is interpreted."""

    kind: Kind
    layer: Layer
    dtype: DType
    sender: int
    receiver: int
    round: int
    step: int
    chunk_index: int
    chunk_count: int
    cluster: int
    samples: int
    model_version: int
    scale: float
    payload: bytes


def frame_receiver(data: bytes | bytearray | memoryview) -> int | None:
    """The receiver a frame's header names, read before any check (every wire version keeps the
    header in the clear), or None when ``data`` is too short or does not start with the magic:
    for a transport that passes over other robots' frames on a shared topic without decoding
    them. :func:`decode` still checks everything of a frame that is kept."""
    if len(data) < HEADER_SIZE or bytes(data[:2]) != MAGIC:
        return None
    return int(_HEADER.unpack_from(data, 0)[7])


def parse_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Check magic, version, length and CRC of one frame; raise :class:`WireError` if bad."""
    if len(data) > MAX_FRAME:
        raise WireError(f"frame of {len(data)} bytes is over MAX_FRAME ({MAX_FRAME})", "too_long")
    raw = bytes(data)
    if len(raw) < OVERHEAD:
        raise WireError(
            f"frame of {len(raw)} bytes is shorter than the {OVERHEAD}-byte envelope", "too_short"
        )
    if raw[:2] != MAGIC:
        raise WireError(f"foreign frame: magic {raw[:2]!r}, expected {MAGIC!r}", "foreign")
    fields = _HEADER.unpack_from(raw, 0)
    version = fields[1]
    if version != VERSION:
        raise WireError(
            f"unsupported wire version {version} (this build speaks {VERSION})", "version"
        )
    payload_len = fields[16]
    if len(raw) != OVERHEAD + payload_len:
        raise WireError(
            f"frame length {len(raw)} does not match payload length {payload_len}", "bad_length"
        )
    (crc,) = _CRC.unpack_from(raw, HEADER_SIZE + payload_len)
    if zlib.crc32(raw[: HEADER_SIZE + payload_len]) != crc:
        raise WireError("CRC mismatch: frame corrupted in transit", "crc")
    return _checked_header(fields, raw[HEADER_SIZE : HEADER_SIZE + payload_len])


def _checked_header(fields: tuple[Any, ...], payload: bytes) -> Frame:
    """The header rules past the envelope: known codes, reserved bits clear, chunk numbering,
    a payload only where the kind has one and a model encoding only on model kinds."""
    try:
        kind, layer, dtype = Kind(fields[2]), Layer(fields[3]), DType(fields[4])
    except ValueError as exc:
        raise WireError(f"unknown code in header: {exc}", "unknown_code") from exc
    if fields[5] != 0:
        raise WireError(f"reserved flags 0x{fields[5]:04x} set (must be 0)", "reserved_flags")
    index, count = fields[10], fields[11]
    if count < 1 or index >= count:
        raise WireError(f"bad chunk numbering {index}/{count}", "bad_chunk")
    if kind in EMPTY_KINDS and payload:
        raise WireError(
            f"{kind.name} carries no payload, got {len(payload)} bytes", "unexpected_payload"
        )
    if (kind in MODEL_KINDS) != (dtype != DType.NONE):
        raise WireError(f"{kind.name} with model encoding {dtype.name}", "bad_dtype")
    return Frame(
        kind=kind,
        layer=layer,
        dtype=dtype,
        sender=fields[6],
        receiver=fields[7],
        round=fields[8],
        step=fields[9],
        chunk_index=index,
        chunk_count=count,
        cluster=fields[12],
        samples=fields[13],
        model_version=fields[14],
        scale=fields[15],
        payload=payload,
    )


def _check_roles(role: Role, head: int, frame: Frame) -> None:
    """A beacon's DK-means state must be one DK-means can be in: a head heads itself and a
    cluster, a member is in a cluster, a robot in no cluster has no cluster id."""
    if role == Role.HEAD:
        ok = head == frame.sender and frame.cluster != NO_CLUSTER
    elif role == Role.MEMBER:
        ok = frame.cluster != NO_CLUSTER
    else:
        ok = frame.cluster == NO_CLUSTER
    if not ok:
        raise WireError(
            f"beacon of robot {frame.sender}: role {role.name} with head {head} and cluster "
            f"{frame.cluster} is not a DK-means state",
            "bad_beacon",
        )


def _message_from(frame: Frame, payload: bytes) -> Message:
    beacon = None
    model = None
    text = ""
    if frame.kind == Kind.BEACON:
        if len(payload) < _BEACON.size:
            raise WireError(f"beacon payload of {len(payload)} bytes is too short", "bad_beacon")
        x, y, role, head, _, neighbours, num_classes = _BEACON.unpack_from(payload, 0)
        if len(payload) != _BEACON.size + 4 * num_classes:
            raise WireError(
                "beacon label distribution length does not match its count", "bad_beacon"
            )
        dist = np.frombuffer(payload, dtype="<f4", offset=_BEACON.size, count=num_classes)
        if not (np.isfinite(x) and np.isfinite(y) and np.all(np.isfinite(dist))):
            raise WireError("beacon carries non-finite numbers", "non_finite")
        try:
            role_v = Role(role)
        except ValueError as exc:
            raise WireError(f"unknown role code {role}", "bad_beacon") from exc
        _check_roles(role_v, head, frame)
        beacon = Beacon(
            float(x),
            float(y),
            role_v,
            head,
            neighbours,
            tuple(float(v) for v in dist),
            id=frame.sender,
            cluster=frame.cluster,
            samples=frame.samples,
        )
    elif frame.kind in (Kind.ACCEPT, Kind.REPLY, Kind.MODEL):
        model = _decode_model(payload, frame.dtype, frame.scale)
    elif frame.kind == Kind.STATUS:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError("status payload is not UTF-8", "bad_status") from exc
    return Message(
        kind=frame.kind,
        sender=frame.sender,
        receiver=frame.receiver,
        round=frame.round,
        step=frame.step,
        layer=frame.layer,
        cluster=frame.cluster,
        samples=frame.samples,
        model_version=frame.model_version,
        beacon=beacon,
        model=model,
        dtype=frame.dtype if frame.dtype != DType.NONE else DType.F32,
        text=text,
    )


def decode(data: bytes | bytearray | memoryview, auth: FleetAuth | None = None) -> Message:
    """Decode a single-chunk frame into a :class:`Message`; raise :class:`WireError` if bad.
    With ``auth`` only authenticated (version-2) frames of its fleet are accepted."""
    frame = parse_frame(data if auth is None else auth.open(data))
    if frame.chunk_count != 1:
        raise WireError("frame is one chunk of several: feed it to a Reassembler", "chunk")
    return _message_from(frame, frame.payload)


class Reassembler:
    """Put chunked frames back together; keeps at most ``max_pending`` partial messages."""

    def __init__(self, max_pending: int = 64) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple[int, int, int, int, int], dict[int, Frame]] = {}

    def feed(self, data: bytes | bytearray | memoryview) -> Message | None:
        """Add one frame; return the whole message once its last chunk is in, else ``None``."""
        frame = parse_frame(data)
        if frame.chunk_count == 1:
            return _message_from(frame, frame.payload)
        key = (frame.sender, int(frame.kind), frame.round, frame.step, int(frame.layer))
        parts = self._pending.setdefault(key, {})
        first = next(iter(parts.values()), None)
        if first is not None and replace(first, chunk_index=0, payload=b"") != replace(
            frame, chunk_index=0, payload=b""
        ):
            del self._pending[key]
            raise WireError("chunks of one message disagree on a header field", "bad_chunk")
        parts[frame.chunk_index] = frame
        if len(parts) < frame.chunk_count:
            while len(self._pending) > self.max_pending:
                self._pending.pop(next(iter(self._pending)))
            return None
        del self._pending[key]
        payload = b"".join(parts[i].payload for i in range(frame.chunk_count))
        return _message_from(frame, payload)

    @property
    def pending(self) -> int:
        """Number of messages still missing chunks."""
        return len(self._pending)
