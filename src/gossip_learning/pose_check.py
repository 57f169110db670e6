"""Pose plausibility: a robot cannot be in two far-apart places, nor move faster than it can.

A transport that filters traffic by the poses robots announce (the ROS transport drops a
message whose sender's last beacon is out of range) lets anyone who speaks in a robot's name
move that robot somewhere else, and every receiver then drops the real robot's traffic. Without
a fleet key the id cannot be checked, but the pose can: :class:`PoseCheck` keeps the last pose
it accepted per sender and refuses a beacon whose pose lies farther from it than
``slack_m + max_speed · elapsed``.

A robot that really jumped (a simulator reset, a relocalised robot) is re-anchored after
``reanchor`` consecutive refused beacons that agree with each other. A forger that interleaves
with the real robot never gets there: the real robot's plausible beacons break its run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

IMPLAUSIBLE_POSE = "implausible_pose"


@dataclass(slots=True)
class _Track:
    x: float
    y: float
    t: float
    run: int = 0  # consecutive refused beacons that agree with each other
    run_x: float = 0.0
    run_y: float = 0.0
    run_t: float = 0.0


class PoseCheck:
    """Refuses beacons whose pose is implausible given the sender's last accepted one."""

    def __init__(self, max_speed: float, slack_m: float = 2.0, reanchor: int = 3) -> None:
        if not (max_speed >= 0 and math.isfinite(max_speed)):
            raise ValueError(f"max_speed must be finite and >= 0, got {max_speed!r}")
        if not (slack_m >= 0 and math.isfinite(slack_m)):
            raise ValueError(f"slack_m must be finite and >= 0, got {slack_m!r}")
        if reanchor < 1:
            raise ValueError(f"reanchor must be >= 1, got {reanchor!r}")
        self.max_speed = max_speed
        self.slack_m = slack_m
        self.reanchor = reanchor
        self._tracks: dict[int, _Track] = {}
        self.refused = 0

    @property
    def enabled(self) -> bool:
        """Whether the check is on (``max_speed`` > 0)."""
        return self.max_speed > 0

    def _reachable(self, x0: float, y0: float, t0: float, x: float, y: float, t: float) -> bool:
        return math.hypot(x - x0, y - y0) <= self.slack_m + self.max_speed * max(t - t0, 0.0)

    def admit(self, sender: int, x: float, y: float, now: float) -> str | None:
        """Check ``sender``'s announced pose at time ``now`` (seconds); None when accepted
        (and remembered), else the reason."""
        if not self.enabled:
            return None
        track = self._tracks.get(sender)
        if track is None:
            self._tracks[sender] = _Track(x, y, now)
            return None
        if self._reachable(track.x, track.y, track.t, x, y, now):
            track.x, track.y, track.t, track.run = x, y, now, 0
            return None
        if track.run and self._reachable(track.run_x, track.run_y, track.run_t, x, y, now):
            track.run += 1
        else:
            track.run = 1
        track.run_x, track.run_y, track.run_t = x, y, now
        if track.run >= self.reanchor:
            self._tracks[sender] = _Track(x, y, now)
            return None
        self.refused += 1
        return IMPLAUSIBLE_POSE

    def forget(self, sender: int) -> None:
        """Drop what is known of ``sender`` (it went silent)."""
        self._tracks.pop(sender, None)

    def __len__(self) -> int:
        return len(self._tracks)
