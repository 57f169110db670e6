"""Authenticated frames (wire version 3): a fleet key, a fleet id and replay protection.

A version-3 frame is a version-1 frame with the version byte set to 3 and a 28-byte trailer
between the payload and the CRC (docs/wire-format.md, "Authenticated frames"):

``header (46 B, version 3) | payload | fleet_id u32 | counter u64 | tag (16 B) | crc32``

``tag`` is HMAC-SHA256, truncated to 16 bytes, over every byte before it, keyed with
scrypt(secret, salt = ``SALT`` + fleet id, n = 2^14, r = 8, p = 1): a passphrase costs an attacker
who records frames a slow derivation per guess, and the same secret gives unrelated keys in two
fleets. The secret comes from a file or an environment variable (``defence.fleet_key:
file:PATH`` or ``env:NAME``), never from the config or the command line, and a weak one (under 16
bytes, or fewer than 8 distinct bytes) is refused.

``counter`` is 64 bits: the sender's *session* in the high 32 bits (0 in a simulation; a robot
process: one more than the last session it persisted, and at least the wall-clock seconds since
2025, :func:`session_counter_start`), its frame number within the session in the low 32. A
receiver keeps, per sender, up to :data:`SESSIONS` sessions, each with its newest counter and a
bitmap of the ``window`` before it, and refuses a frame it has seen, one older than the window,
or one of a new session older than every session it keeps (``replay``). A new session opens a
new track; with :data:`SESSIONS` tracks the one with the fewest frames is dropped: a burst of
frames with a far-future counter in a robot's name no longer silences the robot, whose own
session keeps its track (an insider with the shared key who outsends the robot in four sessions
still can). Frames of another fleet id are refused (``wrong_fleet``), a wrong tag is
``bad_tag``, a version-1 frame ``unauthenticated``, an old version-2 frame ``version``. The
frame's length is checked before its CRC and its tag. One fleet key is shared: it keeps out
radios without it, not a robot of the fleet that lies about its id.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import struct
import time
import zlib
from pathlib import Path

from gossip_learning.errors import ConfigError, WireError

VERSION = 3
TAG_SIZE = 16
_TRAILER = struct.Struct("<IQ")  # fleet_id, counter
TRAILER_SIZE = _TRAILER.size + TAG_SIZE
_HEADER_SIZE = 46
_SENDER = struct.Struct("<I")
_SENDER_OFFSET = 8
_MAX_FRAME = 16 * 1024 * 1024  # wire.MAX_FRAME (wire imports this module)
#: Sessions a receiver tracks per sender.
SESSIONS = 4
SALT = b"gossip-learning fleet key v3/"
MIN_SECRET = 16
MIN_DISTINCT = 8
_SEQ_BITS = 32
_COUNTER_EPOCH = 1_735_689_600  # 2025-01-01 00:00 UTC
KEY_SOURCES = ("file:", "env:")


@functools.lru_cache(maxsize=8)
def derive_key(secret: bytes, fleet_id: int) -> bytes:
    """The 32-byte HMAC key of ``secret`` in fleet ``fleet_id`` (scrypt, the fleet id in the
    salt; about 0.1 s, once per process and fleet)."""
    import hashlib  # here, not at import: OpenSSL is 3-4 MB of a robot process without a key
    import sys

    if sys.modules.get("_hashlib", True) is None:  # kept out (nodes.process.lean_imports)
        del sys.modules["_hashlib"]
        hashlib = importlib.reload(hashlib)  # scrypt is OpenSSL's only
    salt = SALT + fleet_id.to_bytes(4, "little")
    return hashlib.scrypt(secret, salt=salt, n=1 << 14, r=8, p=1, dklen=32)


def check_secret(secret: bytes, key: str = "defence.fleet_key") -> None:
    """Refuse a weak secret with a :class:`ConfigError` naming ``key`` (never the secret)."""
    if len(secret) < MIN_SECRET:
        raise ConfigError(
            key,
            f"the fleet secret is {len(secret)} bytes: use at least {MIN_SECRET} "
            "(`gossip-learning keys new FILE` writes a random one)",
        )
    if len(set(secret)) < MIN_DISTINCT:
        raise ConfigError(
            key, f"the fleet secret has fewer than {MIN_DISTINCT} distinct characters: too weak"
        )


def read_secret(source: str, key: str = "defence.fleet_key") -> bytes:
    """The fleet secret that ``source`` (``file:PATH`` or ``env:NAME``) points at, checked."""
    where = source.partition(":")[2]
    if source.startswith("file:"):
        path = Path(where).expanduser()
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            msg = f"cannot read the key file {str(path)!r}: {exc.strerror}"
            raise ConfigError(key, msg) from None
    elif source.startswith("env:"):
        value = os.environ.get(where)
        if not where or value is None:
            raise ConfigError(key, f"environment variable {where!r} is not set")
        secret = value.encode("utf-8").strip()
    else:
        raise ConfigError(
            key,
            "give where the key is, not the key: file:PATH or env:NAME (a key in a config or on "
            "a command line ends up in results and logs)",
        )
    check_secret(secret, key)
    return secret


def write_secret(path: str | Path, replace: bool = False) -> None:
    """Write a fresh random secret (32 bytes, hex) to ``path``, readable by its owner only;
    an existing file is kept unless ``replace`` (rotation: every robot needs the new file)."""
    p = Path(path)
    if p.exists() and not replace:
        raise ConfigError("keys", f"{str(p)!r} exists: pass --force to replace (rotate) it")
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.replace(tmp, p)


def session_counter_start(now: float | None = None, state: str | Path | None = None) -> int:
    """Where a robot process starts its 64-bit counters: its session in the high 32 bits, frame
    0 in the low. The session is one more than the one persisted in ``state`` (a file the robot
    owns; updated here) and at least the wall-clock seconds since 2025, so a restart is never
    taken for a replay, with a clock set back (a persisted session) or no state file (a clock
    that moves forward)."""
    t = time.time() if now is None else now
    session = max(0, int(t - _COUNTER_EPOCH))
    if state is not None:
        path = Path(state)
        with contextlib.suppress(OSError, ValueError):
            session = max(session, int(path.read_text().strip() or 0) + 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{session}\n")
    return (session & 0xFFFFFFFF) << _SEQ_BITS


def check_envelope(
    frame: bytes | bytearray | memoryview, version: int, trailer_size: int, tag: str
) -> bytes:
    """The bytes of ``frame`` if its size, magic, version (``version``, with a
    ``trailer_size``-byte trailer) and CRC are right, checked in that order, the size before any
    byte is hashed; else :class:`WireError` (``tag``: what a version-1 frame lacks)."""
    if len(frame) > _MAX_FRAME + trailer_size:  # before any byte is hashed
        raise WireError(f"frame of {len(frame)} bytes is over MAX_FRAME", "too_long")
    raw = bytes(frame)
    if raw[:2] != b"GL":
        raise WireError(f"foreign frame: magic {raw[:2]!r}", "foreign")
    if len(raw) > 2 and raw[2] == 1:
        raise WireError(f"version-1 frame without a {tag}", "unauthenticated")
    if len(raw) > 2 and raw[2] != version:
        raise WireError(f"authenticated frame of version {raw[2]}, this is {version}",
                        "version")  # fmt: skip
    if len(raw) < _HEADER_SIZE + trailer_size + 4:
        raise WireError(f"frame of {len(raw)} bytes is too short to be sealed", "too_short")
    if zlib.crc32(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
        raise WireError("CRC mismatch: frame corrupted in transit", "crc")
    return raw


class FleetAuth:
    """One endpoint's fleet key: seals the frames it sends and opens the frames it hears."""

    def __init__(
        self, key: str | bytes, fleet_id: int, window: int = 64, counter_start: int = 0
    ) -> None:
        """``key``: the fleet secret (checked: :func:`check_secret`). ``counter_start``: the
        counter before a sender's first frame. 0 in a simulation; a robot process uses
        :func:`session_counter_start`."""
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        check_secret(raw)
        if not 0 <= fleet_id <= 0xFFFFFFFF:
            raise ValueError(f"fleet_id must be in 0..2^32-1, got {fleet_id}")
        self._key = derive_key(raw, fleet_id)
        self.fleet_id = fleet_id
        self.window = window
        if not 0 <= counter_start < 1 << 64:
            raise ValueError(f"counter_start must be in 0..2^64-1, got {counter_start}")
        self.counter_start = counter_start
        self._sent: dict[int, int] = {}  # sender -> last counter used
        # sender -> session -> [newest counter, bitmap, frames accepted]
        self._seen: dict[int, dict[int, list[int]]] = {}

    def _tag(self, data: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(self._key, data, hashlib.sha256).digest()[:TAG_SIZE]

    def seal(self, frame: bytes) -> bytes:
        """The version-3 form of a version-1 ``frame`` (next counter of its sender)."""
        body = bytearray(frame[:-4])
        body[2] = VERSION
        body += _TRAILER.pack(self.fleet_id, self._next_counter(body))
        body += self._tag(bytes(body))
        return bytes(body) + zlib.crc32(body).to_bytes(4, "little")

    def _next_counter(self, body: bytes | bytearray) -> int:
        """The next counter of the sender that the frame ``body`` names (used up: WireError)."""
        (sender,) = _SENDER.unpack_from(body, _SENDER_OFFSET)
        counter = self._sent.get(sender, self.counter_start) + 1
        if counter >= 1 << 64:
            raise WireError(f"sender {sender} used up its 2^64 frame counters", "counter")
        self._sent[sender] = counter
        return counter

    def open(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Check a version-3 frame and return its version-1 form; raise :class:`WireError`."""
        raw = check_envelope(frame, VERSION, TRAILER_SIZE, "fleet tag")
        end = len(raw) - 4 - TRAILER_SIZE
        fleet_id, counter = _TRAILER.unpack_from(raw, end)
        if fleet_id != self.fleet_id:
            raise WireError(
                f"frame of fleet {fleet_id}, this is fleet {self.fleet_id}", "wrong_fleet"
            )
        import hmac

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
        session, seq = counter >> _SEQ_BITS, counter & 0xFFFFFFFF
        tracks = self._seen.setdefault(sender, {})
        track = tracks.get(session)
        if track is None:
            if tracks and session < min(tracks):  # older than every session kept
                raise WireError(f"frame of sender {sender}'s old session {session}", "replay")
            if len(tracks) >= SESSIONS:  # drop the session with the fewest frames (the newest
                # of equals): a burst of forged far-future sessions drops its own, not the
                # sender's real session, which has many frames
                del tracks[min(tracks, key=lambda s: (tracks[s][2], -s))]
            tracks[session] = [seq, 1, 1]
            return
        newest, bits, uses = track
        if seq > newest:
            shift = seq - newest
            bits = ((bits << shift) | 1) & ((1 << self.window) - 1) if shift < self.window else 1
            tracks[session] = [seq, bits, uses + 1]
            return
        age = newest - seq
        if age >= self.window or bits >> age & 1:
            raise WireError(f"frame {counter} of sender {sender} was seen or is too old", "replay")
        tracks[session] = [newest, bits | 1 << age, uses + 1]
