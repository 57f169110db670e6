"""Authenticated frames (wire version 3): fleet secret from a file or the environment, scrypt
key, fleet id, 64-bit session counters and replay window, shared vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gossip_learning import wire
from gossip_learning.auth import TRAILER_SIZE, FleetAuth
from gossip_learning.config import load_config
from gossip_learning.errors import ConfigError, WireError
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.wire import Kind, Layer, Message

KEY = "fleet key for the tests"
VECTORS = Path(__file__).parent / "data" / "wire_vectors_auth.json"


def _msg(sender: int = 3) -> Message:
    return Message(Kind.MODEL, sender=sender, round=2, step=5, layer=Layer.INTRA, cluster=1,
                   samples=9, model_version=42, model=np.arange(4, dtype=np.float32))  # fmt: skip


def test_sealed_frames_round_trip_and_cost_28_bytes() -> None:
    tx, rx = FleetAuth(KEY, 7), FleetAuth(KEY, 7)
    plain = wire.encode(_msg())
    sealed = wire.encode(_msg(), tx)
    assert len(sealed) == len(plain) + TRAILER_SIZE == len(plain) + 28 and sealed[2] == 3
    back = wire.decode(sealed, rx)
    assert back == _msg() and np.array_equal(back.model, _msg().model)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda m: wire.encode(m), "unauthenticated"),  # no key
        (lambda m: wire.encode(m, FleetAuth("another fleet's key!", 7)), "bad_tag"),
        (lambda m: wire.encode(m, FleetAuth(KEY, 8)), "wrong_fleet"),
    ],
)
def test_frames_without_this_fleets_key_are_refused(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WireError) as err:
        wire.decode(make(_msg()), FleetAuth(KEY, 7))
    assert err.value.reason == reason


def test_a_flipped_bit_under_a_fixed_crc_fails_the_tag() -> None:
    import zlib

    sealed = bytearray(wire.encode(_msg(), FleetAuth(KEY, 7)))
    sealed[50] ^= 1  # a model byte
    sealed[-4:] = zlib.crc32(bytes(sealed[:-4])).to_bytes(4, "little")
    with pytest.raises(WireError) as err:
        wire.decode(bytes(sealed), FleetAuth(KEY, 7))
    assert err.value.reason == "bad_tag"


def test_replays_are_refused_and_late_frames_inside_the_window_accepted() -> None:
    tx, rx = FleetAuth(KEY, 7, window=4), FleetAuth(KEY, 7, window=4)
    frames = [wire.encode(_msg(), tx) for _ in range(8)]
    wire.decode(frames[0], rx)
    wire.decode(frames[6], rx)
    wire.decode(frames[4], rx)  # late, within the window: accepted once
    for again in (frames[4], frames[6], frames[0], frames[1]):  # seen, seen, old, too old
        with pytest.raises(WireError) as err:
            wire.decode(again, rx)
        assert err.value.reason == "replay"
    wire.decode(frames[7], rx)
    other = wire.encode(_msg(sender=4), tx)  # counters are per sender
    assert wire.decode(other, rx).sender == 4


def test_shared_vectors_for_authenticated_frames() -> None:
    vectors = json.loads(VECTORS.read_text())
    for v in vectors["vectors"]:
        rx = FleetAuth(vectors["key"], vectors["fleet_id"], vectors["window"])
        msg = wire.decode(bytes.fromhex(v["hex"]), rx)
        assert wire.encode(msg).hex() == v["v1_hex"], v["name"]
        tx = FleetAuth(vectors["key"], vectors["fleet_id"])
        tx._sent[msg.sender] = v["counter"] - 1
        assert wire.encode(msg, tx).hex() == v["hex"], v["name"]


@pytest.mark.parametrize("attack", ["fake_head", "impersonate", "foreign_fleet", "head_hijack"])
def test_with_a_fleet_key_every_rogue_frame_is_refused(
    attack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GL_TEST_FLEET_KEY", KEY)
    cfg = load_config("config/quickstart.yaml", [
        "swarm.num_robots=12", "learning.epochs=1", "channel.comm_range=200",
        "defence.fleet_key=env:GL_TEST_FLEET_KEY", "faults.rogues=1",
        f"faults.rogue_attack={attack}", "defence.fleet_id=4294967295",  # the largest id
    ])  # fmt: skip
    sw = Swarm(cfg, "bilayer", 0, load_data(cfg))
    rows = [sw.step()[0] for _ in range(2)]
    sent = sum(r["rogue_frames"] for r in rows)
    refused = sw.network.stats.reasons
    want = "wrong_fleet" if attack == "foreign_fleet" else "unauthenticated"
    assert sent > 0 and refused == {want: sent}
    assert not any(sum(a.inbox.rejected.values()) for a in sw.agents)


def test_a_restarted_robot_is_not_taken_for_a_replay(tmp_path: Path) -> None:
    """Counters restart from zero in a new process: its frames would be replays. A robot process
    starts a new session (high 32 bits of the counter): the wall-clock seconds since 2025, or one
    more than the session it persisted, whichever is larger, so a clock set back at boot is no
    replay either."""
    from gossip_learning.auth import session_counter_start

    rx = FleetAuth(KEY, 7)
    state = tmp_path / "session"
    before = FleetAuth(KEY, 7, counter_start=session_counter_start(1_800_000_000.0, state))
    first = wire.encode(_msg(), before)
    wire.decode(first, rx)
    for _ in range(99):
        wire.decode(wire.encode(_msg(), before), rx)
    for _ in range(5):  # more sessions than a receiver tracks: the oldest ages out
        restarted = FleetAuth(KEY, 7, counter_start=session_counter_start(1_700_000_000.0, state))
        assert wire.decode(wire.encode(_msg(), restarted), rx).sender == _msg().sender
    start = session_counter_start(1_700_000_000.0, state)
    assert start >> 32 == 1_800_000_000 - 1_735_689_600 + 6  # clock set back: state wins
    naive_restart = FleetAuth(KEY, 7)  # counters from 0 again
    with pytest.raises(WireError) as err:
        wire.decode(wire.encode(_msg(), naive_restart), rx)
    assert err.value.reason == "replay"
    with pytest.raises(WireError) as err:  # a frame of the first session, played again
        wire.decode(first, rx)
    assert err.value.reason == "replay"
    with pytest.raises(ValueError, match="counter_start"):
        FleetAuth(KEY, 7, counter_start=-1)


def test_far_future_counters_in_a_robots_name_do_not_silence_it() -> None:
    """A key holder sends 20 frames in robot 3's name with counters far ahead (each a session
    of its own, up to 2^64-2): robot 3's own frames are still accepted afterwards."""
    rx, real, forger = FleetAuth(KEY, 7), FleetAuth(KEY, 7), FleetAuth(KEY, 7)
    for _ in range(30):
        wire.decode(wire.encode(_msg(), real), rx)
    for k in range(20):
        forger._sent[3] = (1 << 64) - 2 - (k << 32)
        wire.decode(wire.encode(_msg(), forger), rx)
    for _ in range(10):
        assert wire.decode(wire.encode(_msg(), real), rx).sender == 3


def test_the_length_is_checked_before_the_crc_and_the_tag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hmac
    import zlib

    big = bytearray(wire.MAX_FRAME + TRAILER_SIZE + 1)
    big[:3] = b"GL\x03"
    hashed: list[int] = []
    monkeypatch.setattr(zlib, "crc32", lambda *a: hashed.append(1) or 0)
    monkeypatch.setattr(hmac, "new", lambda *a, **k: hashed.append(1))
    with pytest.raises(WireError) as err:
        FleetAuth(KEY, 7).open(bytes(big))
    assert err.value.reason == "too_long" and not hashed


def test_the_key_is_derived_with_scrypt_salted_by_the_fleet_id() -> None:
    import hashlib

    from gossip_learning.auth import SALT, derive_key

    assert derive_key(KEY.encode(), 7) == hashlib.scrypt(
        KEY.encode(), salt=SALT + (7).to_bytes(4, "little"), n=1 << 14, r=8, p=1, dklen=32
    )
    assert derive_key(KEY.encode(), 7) != derive_key(KEY.encode(), 8)
    assert FleetAuth(KEY, 7)._key != hashlib.sha256(KEY.encode()).digest()


@pytest.mark.parametrize("secret", ["short", "aaaaaaaaaaaaaaaaaaaa", "abababababababababab"])
def test_weak_secrets_are_refused(secret: str, tmp_path: Path) -> None:
    (tmp_path / "k").write_text(secret)
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"defence.fleet_key=file:{tmp_path / 'k'}"])
    assert err.value.key == "defence.fleet_key" and secret not in str(err.value)


def test_a_secret_written_in_the_config_or_on_the_command_line_is_refused() -> None:
    for value in (KEY, "12345678901234567890", "[1, 2]"):
        with pytest.raises(ConfigError) as err:
            load_config(None, [f"defence.fleet_key={value}"])
        assert err.value.key == "defence.fleet_key" and value not in str(err.value)
    with pytest.raises(ConfigError, match="not set"):
        load_config(None, ["defence.fleet_key=env:GL_NO_SUCH_VARIABLE_SET"])
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(None, ["defence.fleet_key=file:/no/such/key/file"])


def test_the_secret_never_reaches_the_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gossip_learning import cli

    key_file = tmp_path / "fleet.key"
    assert cli.main(["keys", "new", str(key_file)]) == 0
    assert key_file.stat().st_mode & 0o777 == 0o600
    secret = key_file.read_text().strip()
    assert len(secret) == 64
    assert cli.main(["keys", "new", str(key_file)]) == 2  # kept unless --force
    assert key_file.read_text().strip() == secret
    out = tmp_path / "res"
    code = cli.main(["run", "config/quickstart.yaml", "-q", "--out", str(out), "--set",
                     f"defence.fleet_key=file:{key_file}", "--set", "swarm.num_robots=8",
                     "--set", "experiment.rounds=1", "--set", "learning.epochs=1",
                     "--set", "experiment.map_rounds=[1]"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and (out / "config.yaml").read_text().count(f"file:{key_file}") == 1
    for p in files:
        assert secret.encode() not in p.read_bytes(), p
    assert secret not in printed.out + printed.err
    assert cli.main(["keys", "new", str(key_file), "--force"]) == 0  # rotation
    assert key_file.read_text().strip() != secret
