"""Serial framing and command set of the coprocessor firmware (``firmware/core/gl_device.h``).

A packet before COBS is ``cmd u8 | seq u8 | args | crc32 u32`` (little-endian, CRC-32 of the
bytes before it); on the line it is COBS-encoded between two 0x00 delimiters (one before, one
after). A reply is ``cmd | 0x80, seq, status u8, data, crc32`` with the request's ``seq``; a
packet the firmware's link layer rejects gets a reply with cmd 0xFF, seq 0 and the reason as
status. docs/rp2040-link.md has the whole protocol.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum

from gossip_learning.errors import GossipLearningError


class Cmd(IntEnum):
    """Commands (``enum gl_command``)."""

    HELLO = 0x01
    CONFIG = 0x02
    OPT_RESET = 0x03
    LOAD = 0x04
    TRAIN = 0x05
    PREDICT = 0x06
    GET_FRAME = 0x07
    PUT_FRAME = 0x08
    MERGE_RESET = 0x09
    MERGE_FINALISE = 0x0A
    MERGE_DISCARD = 0x0B
    STATUS = 0x0C
    BENCH = 0x0D


LINK_ERROR = 0xFF
PROTO_VERSION = 2  # GL_PROTO_VERSION
MAX_CHUNKS = 64  # GL_MAX_CHUNKS: chunks of one model message the firmware reassembles

# Why the firmware rejected something (``enum gl_status`` in firmware/core/gl_errors.h).
STATUS_NAMES = (
    "ok",
    "short",
    "magic",
    "version",
    "length",
    "crc",
    "code",
    "chunk",
    "width",
    "scale",
    "nonfinite",
    "model_version",
    "model_size",
    "duplicate",
    "reassembly",
    "evicted",
    "not_model",
    "too_big",
    "cobs",
    "serial_crc",
    "serial_short",
    "serial_overflow",
    "command",
    "args",
    "state",
    "senders",
    "weight",
    "ser_timeout",
    "range",
    "flags",
    "diverged",
)
STATUS = {name: code for code, name in enumerate(STATUS_NAMES)}


class ProtocolError(GossipLearningError):
    """A reply that cannot be a reply to what was sent (corrupt, wrong sequence number)."""


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiter)."""
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS packet (without its delimiter); raise ProtocolError if malformed."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > n:
            raise ProtocolError("malformed COBS packet")
        block = data[i : i + code - 1]
        if 0 in block:
            raise ProtocolError("malformed COBS packet")
        out += block
        i += code - 1
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def packet(cmd: int, seq: int, args: bytes = b"") -> bytes:
    """A request as it goes on the line: a delimiter (ends any noise before it), COBS, a
    delimiter."""
    body = bytes([cmd & 0xFF, seq & 0xFF]) + args
    return b"\x00" + cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def parse_reply(encoded: bytes) -> tuple[int, int, int, bytes]:
    """``(cmd, seq, status, data)`` of one reply (its COBS bytes without the delimiter)."""
    raw = cobs_decode(encoded)
    if len(raw) < 7:
        raise ProtocolError(f"reply of {len(raw)} bytes is too short")
    (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
    if zlib.crc32(raw[:-4]) != crc:
        raise ProtocolError("reply CRC mismatch")
    return raw[0], raw[1], raw[2], raw[3:-4]
