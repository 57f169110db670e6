"""A fleet's per-robot Ed25519 keys: the keyring (public), the robots' key files (private).

Keyring (``defence.keyring: file:PATH``; JSON, docs/fleet.md "Per-robot keys")::

    {"format": "gossip-learning keyring", "version": 1, "fleet_id": 7,
     "robots": {"0": {"epoch": 1, "public_key": "<64 hex>"},
                "3": {"epoch": 2, "public_key": "<64 hex>",
                      "previous": {"epoch": 1, "public_key": "<64 hex>"}}}}

A key's id is (robot id, epoch); every signed frame carries the epoch. ``previous`` is there only
after ``gossip-learning keys rotate --overlap``: the robot's old key is then still accepted by a
verifier until that verifier has verified one frame of the robot under the new epoch, and never
after; any other older epoch is refused (``revoked_key``). The keyring holds no secret; whoever
can write it decides who is in the fleet, so it is distributed like the config.

A robot's private key: PKCS#8 PEM, mode 0600, ``robot_<id>.key`` next to the keyring
(``defence.robot_keys: file:PATH`` names one key file or a folder of them; ``env:NAME`` one PEM
key). Which robot a key belongs to is read from the keyring (the robot whose current or previous
public key it is), so a key file given to the wrong robot is an error before any work.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gossip_learning.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT = "gossip-learning keyring"
FORMAT_VERSION = 1
KEYRING_KEY = "defence.keyring"
PRIVATE_KEY = "defence.robot_keys"
KEYRING_FILE = "keyring.json"
MAX_EPOCH = 2**32 - 1


def key_file(folder: str | Path, robot: int) -> Path:
    """Where robot ``robot``'s private key lives in a key folder."""
    return Path(folder) / f"robot_{robot}.key"


@dataclass(frozen=True)
class RobotKey:
    """One public key of a robot."""

    epoch: int
    public: Ed25519PublicKey
    raw: bytes  # the 32 public key bytes


@dataclass(frozen=True)
class Keyring:
    """Robot id -> current key (and the previous one while a rotation overlaps)."""

    fleet_id: int
    current: dict[int, RobotKey]
    previous: dict[int, RobotKey]

    def owner(self, raw: bytes) -> tuple[int, int] | None:
        """(robot, epoch) of the public key ``raw``, current keys first; None if not here."""
        for table in (self.current, self.previous):
            for robot, key in table.items():
                if key.raw == raw:
                    return robot, key.epoch
        return None


def _public(where: str, value: Any) -> RobotKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(value, dict) or set(value) - {"epoch", "public_key", "previous"}:
        raise ConfigError(KEYRING_KEY, f"{where}: expected {{epoch, public_key}}, got {value!r}")
    epoch, hexkey = value.get("epoch"), value.get("public_key")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= MAX_EPOCH:
        raise ConfigError(KEYRING_KEY, f"{where}.epoch: an integer in 0..2^32-1, got {epoch!r}")
    try:
        raw = bytes.fromhex(hexkey) if isinstance(hexkey, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(KEYRING_KEY, f"{where}.public_key: not 64 hex characters")
    return RobotKey(epoch, Ed25519PublicKey.from_public_bytes(raw), raw)


def parse_keyring(raw: Any, fleet_id: int | None = None) -> Keyring:
    """A :class:`Keyring` from the decoded JSON ``raw``; ConfigError naming defence.keyring."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ConfigError(KEYRING_KEY, f"not a keyring: 'format' must be {FORMAT!r}")
    if raw.get("version") != FORMAT_VERSION:
        raise ConfigError(KEYRING_KEY, f"keyring version {raw.get('version')!r}, not 1")
    fid, robots = raw.get("fleet_id"), raw.get("robots")
    if not isinstance(fid, int) or isinstance(fid, bool) or not 0 <= fid <= 2**32 - 1:
        raise ConfigError(KEYRING_KEY, f"fleet_id: an integer in 0..2^32-1, got {fid!r}")
    if fleet_id is not None and fid != fleet_id:
        raise ConfigError(
            KEYRING_KEY, f"the keyring is fleet {fid}'s, defence.fleet_id is {fleet_id}"
        )
    if not isinstance(robots, dict) or not robots:
        raise ConfigError(KEYRING_KEY, "robots: a mapping of robot id to key, got none")
    current: dict[int, RobotKey] = {}
    previous: dict[int, RobotKey] = {}
    for name, entry in robots.items():
        if not (isinstance(name, str) and name.isdigit() and int(name) <= 2**32 - 1):
            raise ConfigError(KEYRING_KEY, f"robots: {name!r} is not a robot id")
        rid = int(name)
        current[rid] = _public(f"robots.{name}", entry)
        if "previous" in entry:
            previous[rid] = _public(f"robots.{name}.previous", entry["previous"])
            if previous[rid].epoch >= current[rid].epoch:
                raise ConfigError(KEYRING_KEY, f"robots.{name}: previous epoch not below epoch")
    raws = [k.raw for k in (*current.values(), *previous.values())]
    if len(set(raws)) != len(raws):
        raise ConfigError(KEYRING_KEY, "one public key is listed twice")
    return Keyring(fid, current, previous)


def _path(source: str, key: str) -> Path:
    if not source.startswith("file:") or not source[5:]:
        where = "file:PATH or env:NAME" if key == PRIVATE_KEY else "file:PATH"
        raise ConfigError(key, f"give where the key is ({where}), never the key itself")
    return Path(source[5:]).expanduser()


def load_keyring(source: str, fleet_id: int | None = None) -> Keyring:
    """The keyring ``source`` (``file:PATH``) names, checked."""
    path = _path(source, KEYRING_KEY)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(KEYRING_KEY, f"cannot read {str(path)!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(KEYRING_KEY, f"{str(path)!r} is not JSON: {exc}") from None
    return parse_keyring(raw, fleet_id)


def _pem_key(data: bytes, where: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(PRIVATE_KEY, f"{where} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(PRIVATE_KEY, f"{where} is not an Ed25519 key")
    return key


def _read_private(path: Path) -> Ed25519PrivateKey:
    try:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(PRIVATE_KEY, f"{str(path)!r} is readable by others: chmod 600 it")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(PRIVATE_KEY, f"cannot read {str(path)!r}: {exc.strerror}") from None
    return _pem_key(data, repr(str(path)))


def private_keys(source: str) -> list[Ed25519PrivateKey]:
    """The private keys ``source`` names: ``file:`` a key file or a folder of
    ``robot_<id>.key``, ``env:NAME`` one PEM key in an environment variable."""
    if source.startswith("env:"):
        value = os.environ.get(source[4:])
        if not source[4:] or value is None:
            raise ConfigError(PRIVATE_KEY, f"environment variable {source[4:]!r} is not set")
        return [_pem_key(value.encode("utf-8"), f"environment variable {source[4:]!r}")]
    path = _path(source, PRIVATE_KEY)
    if path.is_dir():
        return [_read_private(p) for p in sorted(path.glob("robot_*.key"))]
    return [_read_private(path)]


def signing_keys(
    source: str, keyring: Keyring, robots: list[int] | None
) -> dict[int, tuple[Ed25519PrivateKey, int]]:
    """robot -> (private key, epoch) of the keys ``source`` names, each found in ``keyring``;
    every robot of ``robots`` (None: whichever keys are there) must have one."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    out: dict[int, tuple[Ed25519PrivateKey, int]] = {}
    for key in private_keys(source):
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        found = keyring.owner(raw)
        if found is None:
            raise ConfigError(
                PRIVATE_KEY,
                "a private key whose public key is not in the keyring (revoked by a rotation, or "
                "another fleet's)",
            )
        out[found[0]] = (key, found[1])
    missing = sorted(set(robots or ()) - set(out))
    if missing:
        raise ConfigError(PRIVATE_KEY, f"no private key for robot(s) {missing} in the keyring")
    return {r: out[r] for r in robots} if robots is not None else out


# ------------------------------------------------------------------ writing (gossip-learning keys)
def _write_private(path: Path) -> bytes:
    """A fresh Ed25519 key to ``path`` (mode 0600, replaced atomically); its public bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _write_keyring(path: Path, raw: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def create_fleet(folder: str | Path, robots: list[int], fleet_id: int) -> Path:
    """Write ``robot_<id>.key`` (0600) for each of ``robots`` and ``keyring.json`` into
    ``folder`` (made 0700 if new); an existing keyring is never overwritten."""
    out = Path(folder)
    ring = out / KEYRING_FILE
    if ring.exists():
        raise ConfigError("keys", f"{str(ring)!r} exists: rotate single robots with `keys rotate`")
    if not robots or min(robots) < 0 or len(set(robots)) != len(robots):
        raise ConfigError("keys", f"--robots: distinct robot ids >= 0, got {robots}")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    entries = {str(r): {"epoch": 1, "public_key": _write_private(key_file(out, r)).hex()}
               for r in robots}  # fmt: skip
    raw = {"format": FORMAT, "version": FORMAT_VERSION, "fleet_id": fleet_id, "robots": entries}
    _write_keyring(ring, raw)
    return ring


def rotate(folder: str | Path, robot: int, overlap: bool = False) -> int:
    """Give ``robot`` a new key (epoch + 1) in ``folder``: its key file is replaced and the
    keyring updated; the old key is refused from then on, or, with ``overlap``, until a verifier
    has heard the robot under the new epoch. Returns the new epoch."""
    ring = Path(folder) / KEYRING_FILE
    source = f"file:{ring}"
    load_keyring(source)  # checked before anything is changed
    raw = json.loads(ring.read_text(encoding="utf-8"))
    entry = raw["robots"].get(str(robot))
    if entry is None:
        raise ConfigError("keys", f"--robot {robot} is not in {str(ring)!r}")
    new = {"epoch": entry["epoch"] + 1}
    if new["epoch"] > MAX_EPOCH:
        raise ConfigError("keys", f"robot {robot} used up its 2^32 key epochs")
    if overlap:
        new["previous"] = {"epoch": entry["epoch"], "public_key": entry["public_key"]}
    new["public_key"] = _write_private(key_file(folder, robot)).hex()
    raw["robots"][str(robot)] = new
    _write_keyring(ring, raw)
    return int(new["epoch"])


def keys_command(
    action: str, folder: str, robots: int, fleet_id: int, robot: int, overlap: bool
) -> str:
    """``gossip-learning keys robots|rotate``: do it, and say what was written."""
    if action == "robots":
        if not 1 <= robots <= 100_000:
            raise ConfigError("--robots", f"a fleet size in 1..100000, got {robots}")
        if not 0 <= fleet_id <= 2**32 - 1:
            raise ConfigError("--fleet-id", f"an id in 0..2^32-1, got {fleet_id}")
        ring = create_fleet(folder, list(range(robots)), fleet_id)
        return (
            f"wrote {robots} private keys (robot_<id>.key, mode 0600) and {ring} "
            f"(defence.keyring: file:{ring}, defence.robot_keys: file:{folder})"
        )
    if robot < 0:
        raise ConfigError("--robot", "rotate: name the robot whose key to replace")
    epoch = rotate(folder, robot, overlap)
    until = "until it is heard with the new one" if overlap else "from now on"
    return (
        f"robot {robot} has key epoch {epoch} in {key_file(folder, robot)}; its old key is "
        f"refused {until}: copy the keyring to every robot, then the key file to robot {robot}"
    )
