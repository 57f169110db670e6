"""The simulator's central matching (``gossip.matching: oracle``): the authors' way, an upper
bound on what matching by messages can reach.

For each pairwise gossip step the simulator takes every running robot's in-range partners on
that layer (the same list the robot itself proposes from), keeps the links both ends accept,
and draws a random maximal matching over them: edges in a random order, each taken if both its
ends are still free. The robots learn their partner through the
:class:`~gossip_learning.protocol.ports.Matchmaker` port and still exchange their models by
messages (propose, accept, reply), so traffic, losses and ``pairs_matched`` are counted as for
the distributed rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from gossip_learning.messages import Layer
from gossip_learning.protocol import RobotAgent


def random_maximal_matching(
    edges: Sequence[tuple[int, int]], rng: np.random.Generator
) -> dict[int, int]:
    """A maximal matching of the undirected ``edges`` (greedy over a random edge order), as
    {robot: partner} with both directions; no edge of ``edges`` has two unmatched ends."""
    mate: dict[int, int] = {}
    for k in rng.permutation(len(edges)).tolist():
        a, b = edges[k]
        if a != b and a not in mate and b not in mate:
            mate[a] = b
            mate[b] = a
    return mate


def mutual_edges(partners: Mapping[int, Iterable[int]]) -> list[tuple[int, int]]:
    """Links (i, j), i < j, where each robot lists the other as a partner (sorted)."""
    sets = {i: set(p) for i, p in partners.items()}
    return sorted((i, j) for i, ps in sets.items() for j in ps if i < j and i in sets.get(j, ()))


class OracleMatchmaker:
    """A :class:`~gossip_learning.protocol.ports.Matchmaker` over the simulator's agents: one
    random maximal matching per (round, step), drawn when its first robot asks."""

    def __init__(
        self, agents: Callable[[], Sequence[RobotAgent]], rng: np.random.Generator
    ) -> None:
        self._agents = agents
        self.rng = rng
        self._key: tuple[int, int] | None = None
        self._mate: dict[int, int] = {}

    def partner(self, robot_id: int, layer: Layer, round_no: int, slot: int) -> int | None:
        """Robot ``robot_id``'s partner in the step starting at ``slot`` of ``round_no``."""
        if self._key != (round_no, slot):
            self._key = (round_no, slot)
            partners = {a.id: a.membership.partners(layer) for a in self._agents()}
            self._mate = random_maximal_matching(mutual_edges(partners), self.rng)
        return self._mate.get(robot_id)
