"""Phase lengths a host can serve: the ``phase_scale`` of a launch (no ROS import here).

A round on ROS runs its phases on a clock (``timing.*``), and a frame heard after its phase has
ended is refused as ``late`` (the in-process engine, which has no clock, loses none). When one
host runs N robot processes, every beacon is taken and decoded by every other process, so the
CPU a phase needs grows with N², and every process checks the round clock ``tick_period`` apart
whatever it has to do. Measured with ``benchmarks/ros_swarm.py`` and docs/ros.md's acceptance: at
60 processes on two cores the phases of ``config/ros_swarm.yaml`` (0.2 s cluster, 0.25 s gossip)
ended before the frames sent in them were read, tens of thousands of frames were refused as late
and the launch ended points below the engine.

``phase_scale`` multiplies every ``timing.*_phase_s`` and the clock tick of every robot by one
factor, so each phase has the same number of clock checks and each process does the same work
per round in more time. ``auto`` derives it from the robot processes on this host and its CPUs
(:func:`auto_phase_scale`); a robot computer of a real fleet runs one robot process and keeps 1.
Every robot of a swarm must use the same scale (the round clock is shared).
"""

from __future__ import annotations

import dataclasses
import math
import os

from gossip_learning.config import Config, TimingConfig

#: The ``timing`` keys that are phase lengths (``clock_sync_max_s`` is a bound, not a phase).
PHASE_KEYS = tuple(f.name for f in dataclasses.fields(TimingConfig) if f.name.endswith("_phase_s"))

#: Cores one idle robot process uses at scale 1: the round clock checked every 0.05 s (measured:
#: one swarm_node in its training phase, 0.23 CPU s in 20 s).
IDLE_CORES = 0.011
#: Cores one robot process uses at scale 1 per other robot process, taking, decoding and
#: screening the frames of a round (measured: benchmarks/ros_swarm.py, CPU seconds per round of
#: per-process launches beyond start-up and idle ticking, divided by N² and the round period).
PEER_CORES = 0.00036
#: Share of the host's CPUs the auto scale plans the swarm to use: the rest is headroom for the
#: bursts at each phase start (every process wakes at once), the monitor, DDS threads and one
#: other CPU-bound job on a two-core machine.
HOST_SHARE = 0.5
#: Auto scales are rounded up to this step (fewer distinct schedules in results).
STEP = 0.25


def demand_cores(processes: int) -> float:
    """Cores ``processes`` robot processes on one host use at phase_scale 1 (the cost model)."""
    n = max(0, processes)
    return n * (IDLE_CORES + PEER_CORES * max(0, n - 1))


def auto_phase_scale(processes: int, cpus: int) -> float:
    """The scale at which ``processes`` robot processes use at most :data:`HOST_SHARE` of
    ``cpus`` cores: 1 where they fit, else the demand over that share rounded up to
    :data:`STEP`. One process (``single_process:=true``, a robot computer) is always 1."""
    if cpus < 1:
        raise ValueError(f"phase_scale:=auto needs the number of CPUs, got {cpus}")
    if processes <= 1:
        return 1.0
    need = demand_cores(processes) / (HOST_SHARE * cpus)
    return max(1.0, math.ceil(need / STEP - 1e-9) * STEP)


def parse_phase_scale(text: str, processes: int, cpus: int | None = None) -> float:
    """The ``phase_scale`` launch argument: ``auto`` (:func:`auto_phase_scale` for
    ``processes`` on ``cpus``, this machine's by default) or a number > 0; a ValueError names
    the argument."""
    value = text.strip().lower()
    if value == "auto":
        return auto_phase_scale(processes, cpus if cpus is not None else os.cpu_count() or 1)
    try:
        scale = float(value)
    except ValueError:
        raise ValueError(
            f"launch argument phase_scale:={text!r} must be auto or a number > 0"
        ) from None
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"launch argument phase_scale:={text!r} must be auto or a number > 0")
    return scale


def check_scale(scale: float) -> float:
    """A node's ``phase_scale`` parameter, or a ValueError naming it."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"parameter 'phase_scale': {scale!r} is invalid; it must be a number > 0")
    return float(scale)


def scaled(cfg: Config, scale: float) -> Config:
    """``cfg`` with every ``timing.*_phase_s`` multiplied by ``scale`` (``cfg`` itself at 1)."""
    check_scale(scale)
    if scale == 1.0:
        return cfg
    timing = dataclasses.replace(
        cfg.timing, **{k: getattr(cfg.timing, k) * scale for k in PHASE_KEYS}
    )
    return dataclasses.replace(cfg, timing=timing)


def scaled_tick(tick_period: float, scale: float) -> float:
    """The clock tick at ``scale``: as many checks per phase as at 1, at most one a second."""
    return min(1.0, tick_period * check_scale(scale))
