"""Fleet authentication at its edges: the session counter's origin, wrap and clock (cases
mutation testing found unguarded)."""

from __future__ import annotations

import time

from gossip_learning.auth import COUNTERS_PER_SECOND, FleetAuth, session_counter_start

EPOCH = 1_735_689_600  # 2025-01-01 00:00 UTC


def test_the_session_counter_counts_from_2025() -> None:
    assert session_counter_start(EPOCH) == 0
    assert session_counter_start(EPOCH + 10.0) == 10 * COUNTERS_PER_SECOND
    assert session_counter_start(0.0) == 0  # a clock before 2025 starts at 0, not below


def test_the_session_counter_wraps_into_the_valid_range() -> None:
    top = EPOCH + 0xFFFFFFFF / COUNTERS_PER_SECOND  # exactly 2^32 − 1 counters
    assert session_counter_start(top) == 0
    FleetAuth("k", 1, counter_start=session_counter_start(top - 1 / COUNTERS_PER_SECOND))


def test_the_session_counter_reads_the_clock_by_default() -> None:
    before = session_counter_start(time.time())
    now = session_counter_start()
    assert before <= now <= session_counter_start(time.time())
