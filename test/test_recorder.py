"""The shared recorder's derived metrics, on hand-made round reports."""

from __future__ import annotations

import numpy as np

from gossip_learning.protocol import RoundReport
from gossip_learning.recorder import Recorder, headless_clusters, matched_share


def _r(i: int, role: str, cluster: int, exchanges: list[tuple[int, bool, bool]] | None = None
       ) -> RoundReport:  # fmt: skip
    return RoundReport(
        id=i, round=1, x=float(i), y=0.0, role=role, cluster=cluster, head=-1, neighbours=1,
        samples=10, exchanges=exchanges or [],
    )  # fmt: skip


def test_headless_clusters_counts_clusters_with_members_and_no_head() -> None:
    reports = [_r(0, "head", 5), _r(1, "member", 5), _r(2, "member", 7), _r(3, "member", 9),
               _r(4, "none", -1)]  # fmt: skip
    assert headless_clusters(reports) == 2  # clusters 7 and 9
    assert headless_clusters(reports[:2]) == 0


def test_matched_share_counts_only_robots_with_a_partner() -> None:
    intra = 2
    reports = [
        _r(0, "member", 5, [(intra, True, True)]),
        _r(1, "member", 5, [(intra, True, False)]),
        _r(2, "member", 5, [(intra, False, False)]),  # nobody in range: not counted
    ]
    from gossip_learning.messages import Layer

    assert matched_share(reports, Layer.INTRA) == 0.5
    assert np.isnan(matched_share(reports, Layer.INTER))


def test_row_reports_headless_clusters_for_bilayer_only() -> None:
    reports = [_r(0, "head", 5), _r(1, "member", 7)]
    args = (np.zeros(2), np.zeros(2), None, np.zeros((2, 2), bool), {})
    assert Recorder("bilayer", 0).row(reports, *args)["headless_clusters"] == 1
    assert Recorder("flat", 0).row(reports, *args)["headless_clusters"] == 0


def test_phase_times_are_empty_when_not_given() -> None:
    """A ROS monitor has no phase times: NaN (empty in metrics.csv), not 0.0."""
    reports = [_r(0, "head", 5), _r(1, "member", 5)]
    args = (np.zeros(2), np.zeros(2), None, np.zeros((2, 2), bool), {})
    row = Recorder("bilayer", 0).row(reports, *args)
    times = [k for k in row if k.startswith("time_")]
    assert len(times) == 6 and all(np.isnan(row[k]) for k in times)
    timed = Recorder("bilayer", 0).row(reports, *args, times={"train": 0.5})
    assert timed["time_train"] == 0.5 and timed["time_move"] == 0.0
