"""Pose plausibility: a robot cannot move faster than it can, and a forger cannot move it.

A transport that filters traffic by the poses robots announce (the ROS transport drops a
message whose sender's last beacon is out of range) lets anyone who speaks in a robot's name
move that robot somewhere else, and every receiver then drops the real robot's traffic. Without
a fleet key the id cannot be checked, but the pose can: :class:`PoseCheck` keeps, per sender,
up to ``max_tracks`` tracks (poses that follow each other at no more than ``max_speed`` plus
``slack_m``). A beacon that continues a confirmed track is accepted and moves it on; one that
continues no track starts a new one, refused (``implausible_pose``) until ``reanchor`` beacons
agree with it. A confirmed track stays beside the others: it is not replaced.

So a forger that speaks first in a robot's name, or sends a burst of agreeing beacons from
elsewhere, adds a track of its own but never takes the real robot's away: the real robot's
beacons confirm its track and its traffic is heard wherever any confirmed track of its id is in
range (:meth:`PoseCheck.poses`). Beacons accepted while an id has more than one confirmed track
are counted (``contested``). A track not moved on for ``expire_s`` is dropped (a robot that
really jumped leaves its old track behind); when every slot is taken, a new track replaces an
unconfirmed one, else the confirmed one moved on least recently: to push a real robot out a
forger must keep ``max_tracks`` tracks of its own moving between two of the robot's beacons.
Without a key nothing tells the forger's track from the robot's: the forger's beacons are heard
too (only the fleet key stops that).
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
    hits: int = 1  # agreeing beacons seen on this track (confirmed at ``reanchor``)
    confirmed: bool = False


class PoseCheck:
    """Refuses beacons whose pose continues no confirmed track of the sender (see module)."""

    def __init__(
        self,
        max_speed: float,
        slack_m: float = 2.0,
        reanchor: int = 3,
        max_tracks: int = 3,
        expire_s: float = 30.0,
    ) -> None:
        if not (max_speed >= 0 and math.isfinite(max_speed)):
            raise ValueError(f"max_speed must be finite and >= 0, got {max_speed!r}")
        if not (slack_m >= 0 and math.isfinite(slack_m)):
            raise ValueError(f"slack_m must be finite and >= 0, got {slack_m!r}")
        if reanchor < 1:
            raise ValueError(f"reanchor must be >= 1, got {reanchor!r}")
        if max_tracks < 2:
            raise ValueError(f"max_tracks must be >= 2, got {max_tracks!r}")
        if not expire_s > 0:
            raise ValueError(f"expire_s must be > 0, got {expire_s!r}")
        self.max_speed = max_speed
        self.slack_m = slack_m
        self.reanchor = reanchor
        self.max_tracks = max_tracks
        self.expire_s = expire_s
        self._tracks: dict[int, list[_Track]] = {}
        self.refused = 0
        self.contested = 0  # beacons accepted while their id had more than one confirmed track

    @property
    def enabled(self) -> bool:
        """Whether the check is on (``max_speed`` > 0)."""
        return self.max_speed > 0

    def _reachable(self, track: _Track, x: float, y: float, t: float) -> bool:
        return math.hypot(x - track.x, y - track.y) <= self.slack_m + self.max_speed * max(
            t - track.t, 0.0
        )

    def admit(self, sender: int, x: float, y: float, now: float) -> str | None:
        """Check ``sender``'s announced pose at time ``now`` (seconds); None when accepted
        (and remembered), else the reason."""
        if not self.enabled:
            return None
        tracks = [k for k in self._tracks.get(sender, []) if now - k.t <= self.expire_s]
        self._tracks[sender] = tracks
        if not tracks:  # nothing known of this id: its first pose is believed
            tracks.append(_Track(x, y, now, confirmed=True))
            return None
        near = [k for k in tracks if self._reachable(k, x, y, now)]
        if near:
            track = min(near, key=lambda k: (not k.confirmed, math.hypot(x - k.x, y - k.y)))
            track.x, track.y, track.t = x, y, now
            track.hits += 1
            track.confirmed = track.confirmed or track.hits >= self.reanchor
        else:
            if len(tracks) >= self.max_tracks:
                tracks.remove(min(tracks, key=lambda k: (k.confirmed, k.t)))
            track = _Track(x, y, now, confirmed=self.reanchor <= 1)
            tracks.append(track)
        if not track.confirmed:
            self.refused += 1
            return IMPLAUSIBLE_POSE
        if sum(k.confirmed for k in tracks) > 1:
            self.contested += 1
        return None

    def poses(self, sender: int) -> list[tuple[float, float]]:
        """Where ``sender`` may be: the last pose of each of its confirmed tracks."""
        return [(k.x, k.y) for k in self._tracks.get(sender, []) if k.confirmed]

    def forget(self, sender: int) -> None:
        """Drop what is known of ``sender`` (it went silent)."""
        self._tracks.pop(sender, None)

    def __len__(self) -> int:
        return len(self._tracks)
