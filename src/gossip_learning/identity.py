"""Per-robot identity: every frame signed with its sender's own Ed25519 key (wire version 4).

``defence.identity`` picks who may speak for a robot: ``none`` (version-1 frames), ``fleet_key``
(any holder of the shared secret, :mod:`gossip_learning.auth`, version 3) or ``robot_keys``: a
version-4 frame is the version-1 frame with the version byte set to 4 and an 80-byte trailer
before the CRC (docs/wire-format.md, "Signed frames")::

    header (46 B, version 4) | payload | fleet_id u32 | counter u64 | epoch u32 | sig (64 B) | crc32

``sig`` is Ed25519 over every byte before it, made with the private key of the robot the header
names as sender, at key ``epoch`` (:mod:`gossip_learning.keyring`). A verifier looks the sender up
in its keyring and refuses a frame of a robot not in it (``unknown_signer``), of an epoch newer
than its keyring knows (``unknown_key``: its keyring is stale), of an older epoch than the
robot's current one (``revoked_key``; the ``previous`` epoch of an overlapping rotation is
accepted until this verifier has verified one frame of the robot under the new epoch), or whose
signature does not verify (``bad_signature``). The counter, fleet id, size and CRC rules are
those of version 3 (the replay tracking is :class:`~gossip_learning.auth.FleetAuth`'s). So a
robot of the fleet can speak only as itself; the coprocessor behind a host never sees a key (its
host signs and verifies, the link carries version-1 frames).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gossip_learning.auth import FleetAuth, check_envelope, read_secret
from gossip_learning.errors import ConfigError, WireError
from gossip_learning.keyring import Keyring, RobotKey, load_keyring, signing_keys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gossip_learning.config import Config

VERSION = 4
SIG_SIZE = 64
_TRAILER = struct.Struct("<IQI")  # fleet_id, counter, key epoch
TRAILER_SIZE = _TRAILER.size + SIG_SIZE
_SENDER = struct.Struct("<I")
_SENDER_OFFSET = 8


class RobotAuth(FleetAuth):
    """One process's robot keys: signs the frames of the robots it speaks for and verifies
    every frame it hears against the keyring. Counters and replay windows as :class:`FleetAuth`
    (which it is, so the transports and ``wire.encode``/``decode`` take it unchanged)."""

    def __init__(
        self,
        keyring: Keyring,
        signers: dict[int, tuple[Ed25519PrivateKey, int]],
        window: int = 64,
        counter_start: int = 0,
    ) -> None:
        """``signers``: robot -> (private key, epoch) (:func:`keyring.signing_keys`); a process
        that only listens passes none. No shared secret: :class:`FleetAuth`'s is not built."""
        if not 0 <= counter_start < 1 << 64:
            raise ValueError(f"counter_start must be in 0..2^64-1, got {counter_start}")
        self.keyring = keyring
        self.fleet_id = keyring.fleet_id
        self.window = window
        self.counter_start = counter_start
        self._signers = dict(signers)
        self._sent: dict[int, int] = {}
        self._seen: dict[int, dict[int, list[int]]] = {}
        self._renewed: set[int] = set()  # robots verified under their current epoch

    def seal(self, frame: bytes) -> bytes:
        """The version-4 form of a version-1 ``frame``, signed with its sender's key."""
        (sender,) = _SENDER.unpack_from(frame, _SENDER_OFFSET)
        return self.seal_as(frame, sender)

    def seal_as(self, frame: bytes, signer: int) -> bytes:
        """``frame`` signed with robot ``signer``'s key whoever its header names (what a robot
        of the fleet that lies about its id can do; the verifier then refuses it)."""
        if signer not in self._signers:
            raise WireError(f"this process holds no key of robot {signer}", "no_key")
        key, epoch = self._signers[signer]
        body = bytearray(frame[:-4])
        body[2] = VERSION
        body += _TRAILER.pack(self.fleet_id, self._next_counter(body), epoch)
        body += key.sign(bytes(body))
        return bytes(body) + zlib.crc32(body).to_bytes(4, "little")

    def open(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Check a version-4 frame and return its version-1 form; raise :class:`WireError`."""
        raw = check_envelope(frame, VERSION, TRAILER_SIZE, "signature")
        end = len(raw) - 4 - TRAILER_SIZE
        fleet_id, counter, epoch = _TRAILER.unpack_from(raw, end)
        if fleet_id != self.fleet_id:
            raise WireError(
                f"frame of fleet {fleet_id}, this is fleet {self.fleet_id}", "wrong_fleet"
            )
        (sender,) = _SENDER.unpack_from(raw, _SENDER_OFFSET)
        key = self._key_of(sender, epoch)
        from cryptography.exceptions import InvalidSignature

        try:
            key.public.verify(raw[end + _TRAILER.size : -4], raw[: end + _TRAILER.size])
        except InvalidSignature:
            raise WireError(
                f"signature does not verify for robot {sender}: forged or another robot's key",
                "bad_signature",
            ) from None
        self._accept_counter(sender, counter)
        if epoch == self.keyring.current[sender].epoch:
            self._renewed.add(sender)  # the overlap of a rotation ends here
        body = bytearray(raw[:end])
        body[2] = 1
        return bytes(body) + zlib.crc32(body).to_bytes(4, "little")

    def _key_of(self, sender: int, epoch: int) -> RobotKey:
        current = self.keyring.current.get(sender)
        if current is None:
            raise WireError(f"robot {sender} is not in the keyring", "unknown_signer")
        if epoch == current.epoch:
            return current
        if epoch > current.epoch:
            raise WireError(
                f"robot {sender}'s key epoch {epoch} is newer than the keyring's", "unknown_key"
            )
        previous = self.keyring.previous.get(sender)
        if previous is not None and epoch == previous.epoch and sender not in self._renewed:
            return previous
        raise WireError(f"robot {sender}'s key epoch {epoch} was rotated out", "revoked_key")


def mode(cfg: Config) -> str:
    """The identity ``cfg`` asks for (``auto``: robot_keys when a keyring is set, else fleet_key
    when a fleet key is, else none)."""
    d = cfg.defence
    if d.identity == "auto":
        return "robot_keys" if d.keyring else "fleet_key" if d.fleet_key else "none"
    return d.identity


def check(cfg: Config) -> None:
    """Config errors of the identity keys, naming the key (keys read, nothing kept)."""
    d = cfg.defence
    how = mode(cfg)
    if how == "fleet_key":
        if not d.fleet_key:
            raise ConfigError("defence.fleet_key", "identity fleet_key needs file:PATH or env:NAME")
        read_secret(d.fleet_key)
    elif d.fleet_key:
        raise ConfigError("defence.fleet_key", f"is set but defence.identity is {how}")
    if how != "robot_keys":
        for key, value in (("keyring", d.keyring), ("robot_keys", d.robot_keys)):
            if value:
                raise ConfigError(f"defence.{key}", f"is set but defence.identity is {how}")
        return
    if not d.keyring:
        raise ConfigError("defence.keyring", "identity robot_keys needs the keyring: file:PATH")
    if not d.robot_keys:
        raise ConfigError("defence.robot_keys", "identity robot_keys needs file:PATH or env:NAME")
    signing_keys(d.robot_keys, load_keyring(d.keyring, d.fleet_id), None)


def frame_auth(
    cfg: Config, counter_start: int = 0, robots: Iterable[int] | None = None
) -> FleetAuth | None:
    """What seals and opens this process's frames: None (version 1), a :class:`FleetAuth` or a
    :class:`RobotAuth` holding the keys of ``robots`` (each must have one)."""
    d = cfg.defence
    how = mode(cfg)
    if how == "none":
        return None
    if how == "fleet_key":
        return FleetAuth(read_secret(d.fleet_key), d.fleet_id, d.replay_window, counter_start)
    keyring = load_keyring(d.keyring, d.fleet_id)
    ids = sorted(robots) if robots is not None else None
    return RobotAuth(keyring, signing_keys(d.robot_keys, keyring, ids), d.replay_window,
                     counter_start)  # fmt: skip


def insider(cfg: Config, robot: int) -> RobotAuth | None:
    """Robot ``robot``'s own signer if ``defence.robot_keys`` holds its key (an insider that
    signs whatever it sends with it), else None (a radio without a key)."""
    if mode(cfg) != "robot_keys":
        return None
    d = cfg.defence
    keyring = load_keyring(d.keyring, d.fleet_id)
    own = signing_keys(d.robot_keys, keyring, None)
    return RobotAuth(keyring, {robot: own[robot]}) if robot in own else None


def node_overrides(robot_key_file: str, keyring_file: str) -> list[str]:
    """Config overrides for a ROS node's ``robot_key_file``/``keyring_file`` parameters (file
    paths; the keys stay in the files): both or neither."""
    if bool(robot_key_file) != bool(keyring_file):
        name = "keyring_file" if robot_key_file else "robot_key_file"
        raise ValueError(f"parameter {name!r}: robot keys need robot_key_file and keyring_file")
    if not robot_key_file:
        return []
    return [
        "defence.identity=robot_keys",
        f"defence.keyring=file:{keyring_file}",
        f"defence.robot_keys=file:{robot_key_file}",
    ]
