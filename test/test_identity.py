"""Per-robot Ed25519 keys (wire version 4): a robot speaks only as itself; keyring, key files,
rotation, the keys CLI and the simulator with insiders and outsiders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cryptography", reason="robot keys need cryptography (.[identity])")

from gossip_learning import wire
from gossip_learning.auth import FleetAuth
from gossip_learning.config import load_config
from gossip_learning.errors import ConfigError, WireError
from gossip_learning.identity import TRAILER_SIZE, RobotAuth, node_overrides
from gossip_learning.keyring import (
    create_fleet,
    key_file,
    load_keyring,
    rotate,
    signing_keys,
)
from gossip_learning.wire import Kind, Layer, Message

ROOT = Path(__file__).resolve().parents[1]


def _msg(sender: int = 3) -> Message:
    return Message(Kind.MODEL, sender=sender, round=2, step=5, layer=Layer.INTRA, cluster=1,
                   samples=9, model_version=42, model=np.arange(4, dtype=np.float32))  # fmt: skip


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    create_fleet(folder, list(range(6)), fleet_id=7)
    return folder


def _auth(folder: Path, *robots: int, fleet_id: int = 7, session: int = 0) -> RobotAuth:
    ring = load_keyring(f"file:{folder / 'keyring.json'}", fleet_id)
    return RobotAuth(ring, signing_keys(f"file:{folder}", ring, list(robots)),
                     counter_start=session << 32)  # fmt: skip


def _reason(frame: bytes, rx: RobotAuth) -> str:
    with pytest.raises(WireError) as err:
        wire.decode(frame, rx)
    return err.value.reason


def test_signed_frames_round_trip_and_cost_80_bytes(keys: Path) -> None:
    tx, rx = _auth(keys, 3), _auth(keys)
    plain, signed = wire.encode(_msg()), wire.encode(_msg(), tx)
    assert len(signed) == len(plain) + TRAILER_SIZE == len(plain) + 80 and signed[2] == 4
    back = wire.decode(signed, rx)
    assert back == _msg() and np.array_equal(back.model, _msg().model)  # type: ignore[arg-type]
    assert _reason(signed, rx) == "replay"  # the counters of version 3 still apply


def test_a_frame_in_another_robots_name_is_refused(keys: Path) -> None:
    """Robot 5 holds a valid key of the fleet and signs a frame claiming to be robot 3: refused,
    and robot 3's own frames still get through."""
    insider, real, rx = _auth(keys, 5), _auth(keys, 3), _auth(keys)
    forged = insider.seal_as(wire.encode(_msg(sender=3)), 5)
    assert _reason(forged, rx) == "bad_signature"
    with pytest.raises(WireError) as err:  # it cannot even ask to sign as robot 3
        wire.encode(_msg(sender=3), insider)
    assert err.value.reason == "no_key"
    assert wire.decode(wire.encode(_msg(sender=5), insider), rx).sender == 5  # as itself: fine
    assert wire.decode(wire.encode(_msg(), real), rx).sender == 3
    flipped = bytearray(wire.encode(_msg(), real))  # a bit of the model, the CRC made to fit
    flipped[50] ^= 1
    flipped[-4:] = zlib.crc32(bytes(flipped[:-4])).to_bytes(4, "little")
    assert _reason(bytes(flipped), rx) == "bad_signature"


def test_unknown_senders_other_fleets_and_other_versions_are_refused(
    keys: Path, tmp_path: Path
) -> None:
    rx = _auth(keys)
    stranger = tmp_path / "stranger"
    create_fleet(stranger, [9], fleet_id=7)  # robot 9 is in no keyring of this fleet
    outsider = _auth(stranger, 9)
    assert _reason(wire.encode(_msg(sender=9), outsider), rx) == "unknown_signer"
    other = tmp_path / "other"
    create_fleet(other, [3], fleet_id=8)
    assert _reason(wire.encode(_msg(), _auth(other, 3, fleet_id=8)), rx) == "wrong_fleet"
    assert _reason(wire.encode(_msg()), rx) == "unauthenticated"
    assert _reason(wire.encode(_msg(), FleetAuth("a fleet key for tests", 7)), rx) == "version"
    signed = wire.encode(_msg(), _auth(keys, 3))
    assert _reason(signed, FleetAuth("a fleet key for tests", 7)) == "version"  # and back


def test_rotation_refuses_the_old_key(keys: Path) -> None:
    before = _auth(keys, 2)  # robot 2's process, started before the rotation
    stale_rx = _auth(keys)  # a verifier that has not got the new keyring yet
    assert rotate(keys, 2) == 2
    rx, after = _auth(keys), _auth(keys, 2)
    assert _reason(wire.encode(_msg(sender=2), before), rx) == "revoked_key"
    assert wire.decode(wire.encode(_msg(sender=2), after), rx).sender == 2
    assert _reason(wire.encode(_msg(sender=2), after), stale_rx) == "unknown_key"
    ring = load_keyring(f"file:{keys / 'keyring.json'}", 7)
    assert ring.current[2].epoch == 2 and 2 not in ring.previous


def test_an_overlapping_rotation_accepts_the_old_key_until_the_new_one_is_heard(
    keys: Path,
) -> None:
    before = _auth(keys, 4)
    rotate(keys, 4, overlap=True)
    rx, after = _auth(keys), _auth(keys, 4, session=1)  # the robot restarted with its new key
    assert wire.decode(wire.encode(_msg(sender=4), before), rx).sender == 4  # overlap
    assert wire.decode(wire.encode(_msg(sender=4), after), rx).sender == 4  # new key heard
    assert _reason(wire.encode(_msg(sender=4), before), rx) == "revoked_key"  # overlap over
    rotate(keys, 4)  # the next rotation drops epoch 2's overlap and epoch 1 for good
    rx = _auth(keys)
    assert _reason(wire.encode(_msg(sender=4), before), rx) == "revoked_key"
    assert _reason(wire.encode(_msg(sender=4), after), rx) == "revoked_key"


def test_a_process_refuses_a_key_that_is_not_in_its_keyring(keys: Path, tmp_path: Path) -> None:
    ring = load_keyring(f"file:{keys / 'keyring.json'}", 7)
    old = tmp_path / "old.key"
    old.write_bytes(key_file(keys, 1).read_bytes())
    old.chmod(0o600)
    rotate(keys, 1)
    ring = load_keyring(f"file:{keys / 'keyring.json'}", 7)
    with pytest.raises(ConfigError, match="not in the keyring") as err:
        signing_keys(f"file:{old}", ring, [1])
    assert err.value.key == "defence.robot_keys"
    with pytest.raises(ConfigError, match=r"no private key for robot\(s\) \[9\]"):
        signing_keys(f"file:{keys}", ring, [0, 9])
    key_file(keys, 0).chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others") as err:
        signing_keys(f"file:{keys / 'robot_0.key'}", ring, [0])
    assert err.value.key == "defence.robot_keys"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r: "{not json", "not JSON"),
        (lambda r: {**r, "format": "something else"}, "not a keyring"),
        (lambda r: {**r, "version": 2}, "version"),
        (lambda r: {**r, "fleet_id": 8}, "fleet 8's"),
        (lambda r: {**r, "robots": {}}, "robots"),
        (lambda r: {**r, "robots": {"x": r["robots"]["0"]}}, "'x' is not a robot id"),
        (
            lambda r: {**r, "robots": {"0": {"epoch": 1, "public_key": "zz"}}},
            r"robots\.0\.public_key",
        ),
        (
            lambda r: {**r, "robots": {"0": {"epoch": -1, "public_key": "00" * 32}}},
            r"robots\.0\.epoch",
        ),
        (lambda r: {**r, "robots": {"0": r["robots"]["0"], "1": r["robots"]["0"]}}, "twice"),
        (
            lambda r: {**r, "robots": {"0": {**r["robots"]["0"], "previous": r["robots"]["0"]}}},
            "previous epoch",
        ),
    ],
)
def test_a_bad_keyring_is_an_error_naming_the_key(edit, match: str, keys: Path) -> None:  # type: ignore[no-untyped-def]
    ring = keys / "keyring.json"
    raw = edit(json.loads(ring.read_text()))
    ring.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    with pytest.raises(ConfigError, match=match) as err:
        load_config(None, [f"defence.keyring=file:{ring}", f"defence.robot_keys=file:{keys}",
                           "defence.fleet_id=7"])  # fmt: skip
    assert err.value.key == "defence.keyring"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["defence.identity=robot_keys"], "defence.keyring"),
        (["defence.identity=robot_keys", "defence.keyring=file:{ring}"], "defence.robot_keys"),
        (["defence.keyring={ring}", "defence.robot_keys=file:{dir}"], "defence.keyring"),
        (["defence.keyring=file:{ring}", "defence.robot_keys={pem}"], "defence.robot_keys"),
        (
            ["defence.keyring=file:/no/such/keyring.json", "defence.robot_keys=file:{dir}"],
            "defence.keyring",
        ),
        (
            ["defence.keyring=file:{ring}", "defence.robot_keys=env:GL_NO_SUCH_KEY_VARIABLE"],
            "defence.robot_keys",
        ),
        (["defence.identity=none", "defence.keyring=file:{ring}"], "defence.keyring"),
        (["defence.identity=fleet_key"], "defence.fleet_key"),
    ],
)
def test_identity_config_errors_name_the_key_and_never_show_a_key(
    overrides: list[str], key: str, keys: Path
) -> None:
    pem = key_file(keys, 0).read_text().replace("\n", "")
    fill = {"ring": keys / "keyring.json", "dir": keys, "pem": pem}
    with pytest.raises(ConfigError) as err:
        load_config(None, [o.format(**fill) for o in overrides] + ["defence.fleet_id=7"])
    assert err.value.key == key and "PRIVATE KEY" not in str(err.value), str(err.value)


def test_a_key_from_the_environment(keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GL_TEST_ROBOT_KEY", key_file(keys, 2).read_text())
    ring = f"defence.keyring=file:{keys / 'keyring.json'}"
    env = "defence.robot_keys=env:GL_TEST_ROBOT_KEY"
    cfg = load_config(None, [ring, env, "defence.fleet_id=7"])
    from gossip_learning.identity import frame_auth

    tx = frame_auth(cfg, robots=[2])
    assert isinstance(tx, RobotAuth) and wire.decode(wire.encode(_msg(2), tx), _auth(keys))


def test_node_parameters_take_file_paths_only_and_both() -> None:
    assert node_overrides("", "") == []
    assert node_overrides("/k/robot_1.key", "/k/keyring.json") == [
        "defence.identity=robot_keys", "defence.keyring=file:/k/keyring.json",
        "defence.robot_keys=file:/k/robot_1.key",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="'keyring_file'"):
        node_overrides("/k/robot_1.key", "")


def test_keys_cli_writes_private_keys_0600_and_rotates(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        return subprocess.run([sys.executable, "-m", "gossip_learning.cli", "keys", *args],
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip

    folder = tmp_path / "fleet_keys"
    made = cli("robots", str(folder), "--robots", "3", "--fleet-id", "5")
    assert made.returncode == 0, made.stderr
    assert (folder.stat().st_mode & 0o777) == 0o700
    for i in range(3):
        assert key_file(folder, i).stat().st_mode & 0o777 == 0o600
    ring = json.loads((folder / "keyring.json").read_text())
    assert ring["fleet_id"] == 5 and set(ring["robots"]) == {"0", "1", "2"}
    old = key_file(folder, 1).read_text()
    rot = cli("rotate", str(folder), "--robot", "1")
    assert rot.returncode == 0 and "epoch 2" in rot.stdout, rot.stderr
    assert key_file(folder, 1).read_text() != old
    assert key_file(folder, 1).stat().st_mode & 0o777 == 0o600
    for text in (made.stdout, rot.stdout, made.stderr, rot.stderr):
        assert "PRIVATE KEY" not in text
    again = cli("robots", str(folder), "--robots", "3")
    assert again.returncode != 0 and "exists" in again.stderr
    bad = cli("rotate", str(folder), "--robot", "7")
    assert bad.returncode != 0 and "--robot 7" in bad.stderr


SIM = ["swarm.num_robots=12", "learning.epochs=1", "channel.comm_range=200"]


def _swarm(keys: Path, *extra: str):  # type: ignore[no-untyped-def]
    from gossip_learning.experiment import Swarm, load_data

    cfg = load_config("config/quickstart.yaml", [*SIM, *extra,
                      f"defence.keyring=file:{keys / 'keyring.json'}",
                      f"defence.robot_keys=file:{keys}"])  # fmt: skip
    return Swarm(cfg, "bilayer", 0, load_data(cfg))


@pytest.mark.parametrize(("insider", "reason"), [(False, "unauthenticated"),
                                                 (True, "bad_signature")])  # fmt: skip
def test_simulated_rogues_speak_only_as_themselves(
    insider: bool, reason: str, tmp_path: Path
) -> None:
    """12 robots with keys; a rogue (id 12) that ACCEPTs in its neighbours' names. Without a key
    every frame is refused as unsigned; with its own key of the fleet, as a bad signature (it
    claims other ids). No honest frame is refused."""
    keys = tmp_path / "keys"
    create_fleet(keys, list(range(13 if insider else 12)), fleet_id=0)
    sw = _swarm(keys, "faults.rogues=1", "faults.rogue_attack=accept_forge")
    rows = [sw.step()[0] for _ in range(2)]
    sent = sum(r["rogue_frames"] for r in rows)
    assert sent > 0 and sw.network.stats.reasons == {reason: sent}


def test_a_simulation_with_robot_keys_equals_one_without(tmp_path: Path) -> None:
    from gossip_learning.experiment import Swarm, load_data

    keys = tmp_path / "keys"
    create_fleet(keys, list(range(12)), fleet_id=0)
    signed = _swarm(keys)
    cfg = load_config("config/quickstart.yaml", SIM)
    plain = Swarm(cfg, "bilayer", 0, load_data(cfg))
    a, b = signed.step()[0], plain.step()[0]
    assert a["acc_mean"] == b["acc_mean"] and a["msgs_sent"] == b["msgs_sent"]
    assert signed.network.stats.bytes_sent > plain.network.stats.bytes_sent
    assert not signed.network.stats.reasons


def test_a_coprocessor_stays_behind_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Robot 1 merges on the firmware (its host build): with robot keys its host verifies and
    signs; every frame that reaches the chip is a version-1 frame (no signature, no key), and
    the swarm ends where the all-host keyed swarm does."""
    from contextlib import ExitStack

    from gossip_learning.config import config_from_dict
    from gossip_learning.coprocessor import CoprocessorAccumulator, CoprocessorTrainer, trainer
    from gossip_learning.experiment import Swarm, load_data
    from gossip_learning.protocol.window import Accumulator
    from rp2040_support import device
    from test_experiment import small

    keys = tmp_path / "keys"
    create_fleet(keys, list(range(6)), fleet_id=0)
    raw = small(experiment={"rounds": 3, "methods": ["bilayer"]}, swarm={"num_robots": 6})
    raw["defence"] = {"keyring": f"file:{keys / 'keyring.json'}", "robot_keys": f"file:{keys}"}
    cfg = config_from_dict(raw)
    data = load_data(cfg)
    seen: list[int] = []
    put = trainer.put_model
    monkeypatch.setattr(trainer, "put_model", lambda c, frames, merge: (
        seen.extend(f[2] for f in frames), put(c, frames, merge))[1])  # fmt: skip
    host = Swarm(cfg, "bilayer", 0, data)
    ref = [host.step()[0]["acc_mean"] for _ in range(3)]
    lc = cfg.learning
    accumulators: dict[int, Accumulator] = {}
    with ExitStack() as stack:
        for i in (1,):  # one host-build chip per process: its state is the library's
            dev = stack.enter_context(device("host"))
            x, y, _ = host.plan.robot_data(i)
            CoprocessorTrainer(  # configures the chip's head; training stays on the host
                dev, host.spec, x, y, 0, i, lr=lc.lr, weight_decay=lc.weight_decay,
                epochs=lc.epochs, batch_size=lc.batch_size, optimizer=lc.optimizer,
            ).configure()  # fmt: skip
            accumulators[i] = CoprocessorAccumulator(dev, host.spec, i)
        mixed = Swarm(cfg, "bilayer", 0, data, None, accumulators)
        accs = [mixed.step()[0]["acc_mean"] for _ in range(3)]
    assert seen and set(seen) == {1}, set(seen)
    assert isinstance(mixed.network.auth, RobotAuth) and not mixed.network.stats.reasons
    assert abs(accs[-1] - ref[-1]) <= 0.01, (accs, ref)


def test_the_length_is_checked_before_the_crc_and_the_signature(
    keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = bytearray(wire.MAX_FRAME + TRAILER_SIZE + 1)
    big[:3] = b"GL\x04"
    rx = _auth(keys)
    hashed: list[int] = []
    monkeypatch.setattr(zlib, "crc32", lambda *a: hashed.append(1) or 0)
    monkeypatch.setattr(rx, "_key_of", lambda *a: hashed.append(1))
    with pytest.raises(WireError) as err:
        rx.open(bytes(big))
    assert err.value.reason == "too_long" and not hashed


def test_robot_keys_never_reach_the_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gossip_learning import cli

    keys = tmp_path / "keys"
    assert cli.main(["keys", "robots", str(keys), "--robots", "8"]) == 0
    out = tmp_path / "res"
    code = cli.main(["run", "config/quickstart.yaml", "-q", "--out", str(out),
                     "--set", f"defence.keyring=file:{keys / 'keyring.json'}",
                     "--set", f"defence.robot_keys=file:{keys}", "--set", "swarm.num_robots=8",
                     "--set", "experiment.rounds=1", "--set", "learning.epochs=1",
                     "--set", "experiment.map_rounds=[1]"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    secrets = [key_file(keys, i).read_text().splitlines()[1] for i in range(8)]  # base64 body
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and f"file:{keys}" in (out / "config.yaml").read_text()
    for p in files:
        assert not any(s.encode() in p.read_bytes() for s in secrets), p
    assert not any(s in printed.out + printed.err for s in secrets)
