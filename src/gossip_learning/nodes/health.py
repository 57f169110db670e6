"""Loud failures for the robot processes: conditions that last too long become warnings that
name the cause and what to check, and past a limit an error that ends the process non-zero.

No rclpy import: the nodes hand in their loggers and the time (``time.monotonic()``: ROS time
may be what is stuck).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Exit status of a robot process that gave up on a failed condition (see :class:`Health`).
EXIT_UNHEALTHY = 3

#: Health parameters of every robot (robot_node and each robot a swarm_node hosts).
HEALTH_PARAMETERS: dict[str, tuple[Any, str]] = {
    "warn_after_s": (
        5.0,
        "Seconds a problem (no odometry since activation, no /clock with use_sim_time, no other "
        "robot heard) may last before a warning naming it; the warning repeats at this period.",
    ),
    "fail_after_s": (
        60.0,
        "Seconds a problem may last before the robot logs an error and exits with status 3; "
        "0: only warn, never give up.",
    ),
    "log_rounds": (
        True,
        "Log one info line per robot and round (round, cluster, role, accuracy); a process "
        "hosting many robots logs at most 8 of them per round plus one line for the rest.",
    ),
}


def check_limits(warn_after_s: float, fail_after_s: float) -> tuple[float, float]:
    """The two limits, or a ValueError naming the parameter."""
    if not warn_after_s > 0:
        raise ValueError(f"parameter 'warn_after_s': {warn_after_s!r} is invalid; it must be > 0")
    if not fail_after_s >= 0:
        raise ValueError(
            f"parameter 'fail_after_s': {fail_after_s!r} is invalid; it must be >= 0 (0: never)"
        )
    return float(warn_after_s), float(fail_after_s)


class Health:
    """Named conditions of one robot (or one host). :meth:`check` is called with whether the
    condition is bad now; once it has been bad for ``warn_after_s`` it warns (and again every
    ``warn_after_s``), once for ``fail_after_s`` (if > 0) it logs an error and sets
    :attr:`failed`. A condition that clears is forgotten (and logged as cleared if it warned)."""

    def __init__(
        self,
        warn_after_s: float,
        fail_after_s: float,
        warn: Callable[[str], Any],
        error: Callable[[str], Any],
        info: Callable[[str], Any] | None = None,
    ) -> None:
        self.warn_after_s, self.fail_after_s = check_limits(warn_after_s, fail_after_s)
        self._warn, self._error, self._info = warn, error, info
        self.since: dict[str, float] = {}
        self._next_warning: dict[str, float] = {}
        self.warnings: dict[str, int] = {}  # warnings given per condition (tests, status)
        self.failed: str | None = None  # the error that ended the robot

    def reset(self) -> None:
        """Forget every condition (a node that is (re)activated starts counting again)."""
        self.since.clear()
        self._next_warning.clear()

    def check(
        self,
        name: str,
        bad: bool,
        now: float,
        message: Callable[[float], str],
        warn_after_s: float | None = None,
    ) -> bool:
        """Condition ``name`` is ``bad`` at ``now`` (seconds); ``message(age)`` says what is
        wrong and what to check. Returns ``bad``."""
        if not bad:
            if self.since.pop(name, None) is not None and name in self._next_warning:
                self._next_warning.pop(name)
                if self._info is not None:
                    self._info(f"cleared: {name}")
            return False
        start = self.since.setdefault(name, now)
        age = now - start
        if self.fail_after_s > 0 and age >= self.fail_after_s and self.failed is None:
            self.failed = f"{message(age)}; giving up after {self.fail_after_s:g} s (fail_after_s)"
            self._error(self.failed)
            return True
        first = self.warn_after_s if warn_after_s is None else warn_after_s
        if age >= first and now >= self._next_warning.get(name, 0.0):
            self._warn(message(age))
            self.warnings[name] = self.warnings.get(name, 0) + 1
            self._next_warning[name] = now + self.warn_after_s
        return True


def round_line(status: dict[str, Any]) -> str:
    """The per-round info line of one robot: round, cluster, role, accuracy."""
    acc = status.get("acc")
    acc_text = f"{acc:.3f}" if isinstance(acc, float) else "n/a"
    return (
        f"robot {status['id']} round {status['round']}: cluster {status.get('cluster', -1)} "
        f"{status.get('role', '?')}, acc {acc_text}"
    )


def odom_message(robot_id: int, topic: str, age: float) -> str:
    """No odometry since activation."""
    return (
        f"robot {robot_id}: no odometry on {topic} for {age:.0f} s since activation, so it "
        f"does not take part in rounds: check that the odometry source runs "
        f"(ros2 topic info {topic}) and the remapping (-r odom:=<your odometry topic>)"
    )


def clock_message(who: str, age: float) -> str:
    """use_sim_time without /clock."""
    return (
        f"{who}: use_sim_time is true but no /clock for {age:.0f} s, so ROS time stays 0 and "
        "no round starts: start the simulator and its /clock bridge (ros2 topic hz /clock), or "
        "set use_sim_time:=false"
    )


def peers_message(who: str, rounds: int, age: float) -> str:
    """No other robot heard."""
    return (
        f"{who}: heard no other robot for {rounds} round(s) ({age:.0f} s): check that the other "
        "robots run (ros2 node list), the same ROS_DOMAIN_ID, swarm_namespace and discovery "
        "settings (ROS_AUTOMATIC_DISCOVERY_RANGE, discovery:=), and comm_range"
    )


def late_message(who: str, round_no: int, phases: int) -> str:
    """A round whose phases ran after their time slot."""
    return (
        f"{who}: round {round_no} ran {phases} phase(s) after their time slot: the process falls "
        "behind its clock (CPU load, too many robots per core, tick_period, timing.* in the "
        "config)"
    )
