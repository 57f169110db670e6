"""Memory a simulated swarm needs, estimated before any work, against what the machine has.

The in-process medium holds dense (N, N) link matrices (reception probabilities, distances,
in-range masks: about :data:`BYTES_PER_LINK` bytes per robot pair at the peak of a round,
measured with tracemalloc on the quickstart swarm at 1,000 and 2,000 robots), and each robot
holds its model, its merge accumulator (two float64 vectors) and scratch: about
:data:`BYTES_PER_PARAM` bytes per parameter. A swarm whose estimate exceeds the memory available
now is refused with a :class:`ConfigError` naming ``swarm.num_robots`` before any data is loaded
or any results folder is made.
"""

from __future__ import annotations

from gossip_learning.errors import ConfigError

BYTES_PER_LINK = 64
BYTES_PER_PARAM = 24
GIB = 1024**3


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def swarm_bytes(num_robots: int, num_params: int = 0) -> int:
    """Estimated peak bytes of an in-process swarm of ``num_robots`` with ``num_params`` each."""
    return BYTES_PER_LINK * num_robots * num_robots + BYTES_PER_PARAM * num_params * num_robots


def check_swarm_memory(num_robots: int, num_params: int = 0, available: int | None = None) -> None:
    """Refuse a swarm that would not fit in ``available`` bytes (default: available now)."""
    have = available_bytes() if available is None else available
    need = swarm_bytes(num_robots, num_params)
    if have is not None and need > have:
        raise ConfigError(
            "swarm.num_robots",
            f"{num_robots} robots need about {need / GIB:.1f} GiB in the simulator (dense "
            f"{num_robots}x{num_robots} link matrices and a model per robot); this machine has "
            f"{have / GIB:.1f} GiB available: use fewer robots",
        )
