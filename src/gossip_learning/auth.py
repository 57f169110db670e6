"""Authenticated frames (wire version 2): a fleet key, a fleet id and replay protection.

A version-2 frame is a version-1 frame with the version byte set to 2 and a 24-byte trailer
between the payload and the CRC (docs/wire-format.md, "Authenticated frames"):

``header (46 B, version 2) | payload | fleet_id u32 | counter u32 | tag (16 B) | crc32``

``tag`` is HMAC-SHA256, truncated to 16 bytes, keyed with SHA-256 of the fleet key, over every
byte before it. ``counter`` grows by one per frame a sender sends; a receiver keeps, per sender,
the newest counter and a bitmap of the ``window`` before it, and refuses a frame it has seen or
one older than the window (``replay``). Frames of another fleet id are refused (``wrong_fleet``),
a wrong tag is ``bad_tag`` and a version-1 frame is ``unauthenticated``. One fleet key is shared:
it keeps out radios without it, not a robot of the fleet that lies about its id.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
import zlib

from gossip_learning.errors import WireError

VERSION = 2
TAG_SIZE = 16
_TRAILER = struct.Struct("<II")  # fleet_id, counter
TRAILER_SIZE = _TRAILER.size + TAG_SIZE
_HEADER_SIZE = 46
_SENDER = struct.Struct("<I")
_SENDER_OFFSET = 8


#: Counters a robot may use per second of wall-clock time without running ahead of a restart.
COUNTERS_PER_SECOND = 16
_COUNTER_EPOCH = 1_735_689_600  # 2025-01-01 00:00 UTC


def session_counter_start(now: float | None = None) -> int:
    """A counter start for a robot process: wall-clock seconds since 2025 × 16. A robot that
    restarts starts above every counter it used before, as long as it sent fewer than 16 frames
    a second on average (a robot sends a few per second), and until 2033 (32-bit counter)."""
    t = time.time() if now is None else now
    return max(0, int((t - _COUNTER_EPOCH) * COUNTERS_PER_SECOND)) % 0xFFFFFFFF


class FleetAuth:
    """One endpoint's fleet key: seals the frames it sends and opens the frames it hears."""

    def __init__(
        self, key: str | bytes, fleet_id: int, window: int = 64, counter_start: int = 0
    ) -> None:
        """``counter_start``: the counter before a sender's first frame. 0 in a simulation;
        a robot process uses :func:`session_counter_start`, so that after a restart its frames
        are not refused as replays of the ones it sent before."""
        raw = key.encode("utf-8") if isinstance(key, str) else key
        self._key = hashlib.sha256(raw).digest()
        self.fleet_id = fleet_id
        self.window = window
        if not 0 <= counter_start < 0xFFFFFFFF:
            raise ValueError(f"counter_start must be in 0..2^32-2, got {counter_start}")
        self.counter_start = counter_start
        self._sent: dict[int, int] = {}  # sender -> last counter used
        self._seen: dict[int, tuple[int, int]] = {}  # sender -> (newest counter, bitmap)

    def _tag(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()[:TAG_SIZE]

    def seal(self, frame: bytes) -> bytes:
        """The version-2 form of a version-1 ``frame`` (next counter of its sender)."""
        body = bytearray(frame[:-4])
        body[2] = VERSION
        (sender,) = _SENDER.unpack_from(body, _SENDER_OFFSET)
        counter = self._sent.get(sender, self.counter_start) + 1
        if counter > 0xFFFFFFFF:
            raise WireError(f"sender {sender} used up its 2^32 frame counters", "counter")
        self._sent[sender] = counter
        body += _TRAILER.pack(self.fleet_id, counter)
        body += self._tag(bytes(body))
        return bytes(body) + zlib.crc32(body).to_bytes(4, "little")

    def open(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Check a version-2 frame and return its version-1 form; raise :class:`WireError`."""
        raw = bytes(frame)
        if raw[:2] != b"GL":
            raise WireError(f"foreign frame: magic {raw[:2]!r}", "foreign")
        if len(raw) > 2 and raw[2] != VERSION:
            raise WireError(f"version-{raw[2]} frame without a fleet tag", "unauthenticated")
        if len(raw) < _HEADER_SIZE + TRAILER_SIZE + 4:
            raise WireError(f"frame of {len(raw)} bytes is too short to be sealed", "too_short")
        if zlib.crc32(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
            raise WireError("CRC mismatch: frame corrupted in transit", "crc")
        end = len(raw) - 4 - TRAILER_SIZE
        fleet_id, counter = _TRAILER.unpack_from(raw, end)
        if fleet_id != self.fleet_id:
            raise WireError(
                f"frame of fleet {fleet_id}, this is fleet {self.fleet_id}", "wrong_fleet"
            )
        if not hmac.compare_digest(
            self._tag(raw[: end + _TRAILER.size]), raw[end + _TRAILER.size : -4]
        ):
            raise WireError("fleet tag does not match: wrong key or forged frame", "bad_tag")
        (sender,) = _SENDER.unpack_from(raw, _SENDER_OFFSET)
        self._accept_counter(sender, counter)
        body = bytearray(raw[:end])
        body[2] = 1
        return bytes(body) + zlib.crc32(body).to_bytes(4, "little")

    def _accept_counter(self, sender: int, counter: int) -> None:
        newest, bits = self._seen.get(sender, (0, 0))
        if counter > newest:
            shift = counter - newest
            bits = ((bits << shift) | 1) & ((1 << self.window) - 1) if shift < self.window else 1
            self._seen[sender] = (counter, bits)
            return
        age = newest - counter
        if age >= self.window or bits >> age & 1:
            raise WireError(f"frame {counter} of sender {sender} was seen or is too old", "replay")
        self._seen[sender] = (newest, bits | 1 << age)
