"""Authenticated frames (wire version 2): fleet key, fleet id, replay window, shared vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gossip_learning import wire
from gossip_learning.auth import TRAILER_SIZE, FleetAuth
from gossip_learning.config import load_config
from gossip_learning.errors import WireError
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.wire import Kind, Layer, Message

KEY = "fleet key for the tests"
VECTORS = Path(__file__).parent / "data" / "wire_vectors_auth.json"


def _msg(sender: int = 3) -> Message:
    return Message(Kind.MODEL, sender=sender, round=2, step=5, layer=Layer.INTRA, cluster=1,
                   samples=9, model_version=42, model=np.arange(4, dtype=np.float32))  # fmt: skip


def test_sealed_frames_round_trip_and_cost_24_bytes() -> None:
    tx, rx = FleetAuth(KEY, 7), FleetAuth(KEY, 7)
    plain = wire.encode(_msg())
    sealed = wire.encode(_msg(), tx)
    assert len(sealed) == len(plain) + TRAILER_SIZE == len(plain) + 24 and sealed[2] == 2
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
def test_with_a_fleet_key_every_rogue_frame_is_refused(attack: str) -> None:
    cfg = load_config("config/quickstart.yaml", [
        "swarm.num_robots=12", "learning.epochs=1", "channel.comm_range=200",
        f"defence.fleet_key={KEY}", "faults.rogues=1", f"faults.rogue_attack={attack}",
    ])  # fmt: skip
    sw = Swarm(cfg, "bilayer", 0, load_data(cfg))
    rows = [sw.step()[0] for _ in range(2)]
    sent = sum(r["rogue_frames"] for r in rows)
    refused = sw.network.stats.reasons
    want = "wrong_fleet" if attack == "foreign_fleet" else "unauthenticated"
    assert sent > 0 and refused == {want: sent}
    assert not any(sum(a.inbox.rejected.values()) for a in sw.agents)


def test_a_restarted_robot_is_not_taken_for_a_replay() -> None:
    """Counters restart from zero in a new process: its frames would be replays. A robot process
    starts its counters from the wall clock (16 a second since 2025), above all it used before."""
    from gossip_learning.auth import session_counter_start

    rx = FleetAuth(KEY, 7)
    before = FleetAuth(KEY, 7, counter_start=session_counter_start(1_800_000_000.0))
    for _ in range(100):  # a few frames per second over the run
        wire.decode(wire.encode(_msg(), before), rx)
    naive_restart = FleetAuth(KEY, 7)  # counters from 0 again
    with pytest.raises(WireError) as err:
        wire.decode(wire.encode(_msg(), naive_restart), rx)
    assert err.value.reason == "replay"
    restarted = FleetAuth(KEY, 7, counter_start=session_counter_start(1_800_000_060.0))
    assert wire.decode(wire.encode(_msg(), restarted), rx).sender == _msg().sender
    assert session_counter_start(1_800_000_060.0) - session_counter_start(1_800_000_000.0) == 960
    with pytest.raises(ValueError, match="counter_start"):
        FleetAuth(KEY, 7, counter_start=-1)
