"""Fleet-key files and session counters, pinned (cases a full mutation run of
gossip_learning.auth found unguarded): a key file is written once, owner-only, and replaced only
when asked; a session starts at the clock's seconds since 2025, or one past the persisted one,
and a garbled or missing state file never stops a robot."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path

import pytest

from gossip_learning.auth import (
    _COUNTER_EPOCH,
    _MAX_FRAME,
    TRAILER_SIZE,
    FleetAuth,
    read_secret,
    session_counter_start,
    write_secret,
)
from gossip_learning.errors import ConfigError, WireError
from gossip_learning.messages import Kind, Message
from gossip_learning.wire import encode


def test_a_key_file_is_written_once_owner_only_and_replaced_only_when_asked() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fleet.key"
        write_secret(path)
        first = path.read_text()
        assert re.fullmatch(r"[0-9a-f]{64}\n", first)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(ConfigError) as err:
            write_secret(path)
        assert err.value.key == "keys"
        assert str(err.value) == (
            f"config key 'keys': {str(path)!r} exists: pass --force to replace (rotate) it"
        )
        assert path.read_text() == first
        write_secret(str(path), replace=True)
        assert path.read_text() != first
        assert sorted(os.listdir(d)) == ["fleet.key"]


def _session(counter: int) -> int:
    assert counter & 0xFFFFFFFF == 0  # frame 0 of the session
    return counter >> 32


def test_a_session_starts_at_the_clocks_seconds_since_2025() -> None:
    before = int(time.time() - _COUNTER_EPOCH)
    assert before <= _session(session_counter_start()) <= before + 60
    assert _session(session_counter_start(_COUNTER_EPOCH + 123.9)) == 123
    assert session_counter_start(0.0) == 0  # a clock before 2025: session 0


def test_the_persisted_session_is_the_floor_and_bad_state_files_are_ignored() -> None:
    with tempfile.TemporaryDirectory() as d:
        state = Path(d) / "deep" / "er" / "session"  # folders made as needed
        assert _session(session_counter_start(0.0, state)) == 0
        assert state.read_text() == "0\n"
        assert _session(session_counter_start(0.0, state)) == 1
        state.write_text("")  # empty: read as session 0, so the next is 1
        assert _session(session_counter_start(0.0, state)) == 1
        state.write_text("not a number\n")
        assert _session(session_counter_start(_COUNTER_EPOCH + 5.0, state)) == 5
        assert state.read_text() == "5\n"


def test_a_key_path_may_itself_hold_a_colon() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fleet:a.key"
        path.write_text("0123456789abcdef0123\n")
        assert read_secret(f"file:{path}") == b"0123456789abcdef0123"


# ---- the replay window and the session tracks ----

KEY = "fleet key for the mutation tests"
PLAIN = encode(Message(Kind.STATUS, sender=3, text="{}"))


def _frame(counter: int) -> bytes:
    """PLAIN sealed with the 64-bit ``counter``."""
    return FleetAuth(KEY, 7, counter_start=counter - 1).seal(PLAIN)


def _refusal(rx: FleetAuth, frame: bytes) -> str | None:
    try:
        rx.open(frame)
    except WireError as err:
        return f"{err.reason}: {err}"
    return None


def test_the_replay_window_remembers_each_counter_of_the_last_window() -> None:
    rx = FleetAuth(KEY, 7, window=4)
    f = {seq: _frame(seq) for seq in range(6, 14)}
    assert _refusal(rx, f[10]) is None
    assert _refusal(rx, f[10]) == "replay: frame 10 of sender 3 was seen or is too old"
    assert _refusal(rx, f[12]) is None  # two ahead: 11 is still open
    assert _refusal(rx, f[12]) is not None
    assert _refusal(rx, f[10]) is not None  # remembered across the shift
    assert _refusal(rx, f[11]) is None  # late, inside the window
    assert _refusal(rx, f[11]) is not None
    assert _refusal(rx, f[9]) is None  # age 3 of a window of 4
    assert _refusal(rx, f[8]) is not None  # age 4: too old
    assert _refusal(rx, f[13]) is None
    assert [_refusal(rx, f[s]) is None for s in (9, 10, 11, 12, 13)] == [False] * 5


def test_a_jump_past_the_window_forgets_the_older_counters() -> None:
    rx = FleetAuth(KEY, 7, window=4)
    for seq in (1, 2, 3):
        assert _refusal(rx, _frame(seq)) is None
    assert _refusal(rx, _frame(9)) is None  # 6 ahead of a window of 4
    assert _refusal(rx, _frame(6)) is None  # age 3: open again
    assert _refusal(rx, _frame(5)) is not None  # age 4: too old


def test_sessions_the_oldest_refused_the_fewest_framed_newest_dropped() -> None:
    rx = FleetAuth(KEY, 7)
    first = {s: _frame((s << 32) + 1) for s in (1, 2, 3, 4, 5)}
    for s in (1, 2, 3, 4):
        assert _refusal(rx, first[s]) is None
    for seq in (2, 3):  # session 1 has the most frames
        assert _refusal(rx, _frame((1 << 32) + seq)) is None
    assert _refusal(rx, first[5]) is None  # a fifth session: session 4 (fewest, newest) goes
    assert _refusal(rx, first[3]) is not None  # still tracked: a replay
    assert _refusal(rx, first[2]) is not None
    assert _refusal(rx, first[4]) is None  # dropped: its frame opens a track again
    assert _refusal(rx, _frame(7)) == "replay: frame of sender 3's old session 0"


def _config_error(source: str, key: str = "defence.fleet_key") -> tuple[str, str]:
    with pytest.raises(ConfigError) as err:
        read_secret(source, key)
    return err.value.key, str(err.value)


def test_key_source_refusals_name_the_key_and_what_is_wrong() -> None:
    with tempfile.TemporaryDirectory() as d:
        missing = Path(d) / "none.key"
        assert _config_error(f"file:{missing}", "defence.robot_keys") == (
            "defence.robot_keys",
            f"config key 'defence.robot_keys': cannot read the key file {str(missing)!r}: "
            "No such file or directory",
        )
        weak = Path(d) / "weak.key"
        weak.write_text("short\n")
        key, text = _config_error(f"file:{weak}", "defence.robot_keys")
        assert key == "defence.robot_keys" and "is 5 bytes" in text
    name = "GL_MUTATION_TEST_UNSET_KEY"
    os.environ.pop(name, None)
    assert _config_error(f"env:{name}", "k.x") == (
        "k.x", f"config key 'k.x': environment variable {name!r} is not set")  # fmt: skip
    assert _config_error("0123456789abcdef0123") == (
        "defence.fleet_key",
        "config key 'defence.fleet_key': give where the key is, not the key: file:PATH or "
        "env:NAME (a key in a config or on a command line ends up in results and logs)",
    )


def test_the_last_counter_is_refused_before_it_wraps() -> None:
    tx = FleetAuth(KEY, 7, counter_start=(1 << 64) - 2)
    tx.seal(PLAIN)  # counter 2^64 - 1: the last one
    with pytest.raises(WireError) as err:
        tx.seal(PLAIN)
    assert err.value.reason == "counter"


def test_the_replay_bitmap_stays_within_the_window() -> None:
    rx = FleetAuth(KEY, 7, window=8)
    for seq in range(1, 200, 3):
        rx.open(_frame(seq))
    ((_newest, bits, _frames),) = rx._seen[3].values()
    assert 0 < bits < 1 << 8  # bounded state per sender, whatever it sent


def _tracks_after(frames: dict[int, list[int]]) -> FleetAuth:
    """A receiver that heard, per session, the frames of these sequence numbers in order."""
    rx = FleetAuth(KEY, 7)
    for session, seqs in frames.items():
        for seq in seqs:
            assert _refusal(rx, _frame((session << 32) + seq)) is None
    return rx


@pytest.mark.parametrize(
    ("frames", "kept", "dropped"),
    [
        # late frames count as frames: session 2 (one on time, one late) ties session 4 (two
        # on time), and the newer of the two goes
        ({1: [1, 2, 3], 2: [2, 1], 3: [1, 2, 3], 4: [1, 2]}, 2, 4),
        # ... and count one each: session 2 has the fewest
        ({1: [1, 2, 3], 2: [2, 1], 3: [1, 2, 3], 4: [1, 2, 3]}, 4, 2),
        ({1: [1, 2, 3], 2: [2, 1], 3: [1], 4: [1]}, 2, 4),
    ],
)
def test_a_fifth_session_drops_the_one_with_the_fewest_frames_late_ones_included(
    frames: dict[int, list[int]], kept: int, dropped: int
) -> None:
    rx = _tracks_after(frames)
    assert _refusal(rx, _frame((5 << 32) + 1)) is None
    first = {s: _frame((s << 32) + seqs[0]) for s, seqs in frames.items()}
    assert _refusal(rx, first[kept]) is not None  # still tracked: a replay
    assert _refusal(rx, first[dropped]) is None  # dropped: opens a track again


def test_open_names_each_refusal() -> None:
    rx = FleetAuth(KEY, 7)
    assert _refusal(rx, b"XY" + bytes(100)) == "foreign: foreign frame: magic b'XY'"
    v2 = bytearray(_frame(1))
    v2[2] = 2
    assert _refusal(rx, bytes(v2)) == "version: authenticated frame of version 2, this is 3"
    assert _refusal(rx, b"GL") == "too_short: frame of 2 bytes is too short to be sealed"
    assert _refusal(rx, b"GL\x03" + bytes(40)) == (
        "too_short: frame of 43 bytes is too short to be sealed"
    )


def test_a_frame_of_exactly_the_largest_sealed_size_is_not_too_long() -> None:
    rx = FleetAuth(KEY, 7)
    largest = b"GL\x03" + bytes(_MAX_FRAME + TRAILER_SIZE - 3)
    assert _refusal(rx, largest) == "crc: CRC mismatch: frame corrupted in transit"
    assert _refusal(rx, largest + b"\0").startswith("too_long: ")


def test_a_fleet_endpoint_counts_from_one_and_refuses_bad_ids_and_secrets_by_name() -> None:
    frame = FleetAuth(KEY, 7).seal(PLAIN)
    end = len(frame) - 4 - TRAILER_SIZE
    assert int.from_bytes(frame[end + 4 : end + 12], "little") == 1  # counter 1 comes first
    with pytest.raises(ValueError, match=r"^fleet_id must be in 0\.\.2\^32-1, got 4294967296$"):
        FleetAuth(KEY, 1 << 32)
    with pytest.raises(ConfigError) as err:
        FleetAuth("short", 7)
    assert str(err.value) == (
        "config key 'defence.fleet_key': the fleet secret is 5 bytes: use at least 16 "
        "(`gossip-learning keys new FILE` writes a random one)"
    )


def test_a_secret_of_few_distinct_bytes_is_refused_by_text() -> None:
    with pytest.raises(ConfigError) as err:
        FleetAuth("abcabcabcabcabcabcab", 7)
    assert str(err.value) == (
        "config key 'defence.fleet_key': the fleet secret has fewer than 8 distinct characters: "
        "too weak"
    )
