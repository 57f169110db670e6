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

from gossip_learning.auth import _COUNTER_EPOCH, read_secret, session_counter_start, write_secret
from gossip_learning.errors import ConfigError


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
