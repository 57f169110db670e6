"""Distributed k-means (DK-means) decisions, message-driven and neighbour-only.

Each pass a robot hears its neighbours' beacons (pose, role, cluster, head, label distribution)
and decides alone, following arXiv 2501.04817:

* a non-head joins the nearest head in range; with no head in range it becomes a head if it has
  more than ``min_cluster_size`` neighbours (``election="local_max"`` adds: more than
  ``min_cluster_size`` of them *unanchored*, i.e. free to join it, and more neighbours than each
  of those, by their beacons' neighbour counts, a tie going to the lower id, so a crowd does not
  self-promote at once and a robot does not found a cluster that would step down at once), else
  it joins the cluster of its nearest *anchored* neighbour;
* a head with ≤ ``min_cluster_size`` neighbours, or (once members had a pass to join) with
  ≤ ``min_cluster_size`` members, steps down and decides as a non-head that may not promote
  itself again in the same pass;
* a head re-centres: it computes its members' centroid and hands headship to the member nearest
  to it (a HANDOVER message).

Where a distributed robot cannot follow the paper's centrally simulated rules to the letter:

* **anchored robots.** A member that hears its head names it in its beacons (``head`` ≥ 0); a
  member that joined through a neighbour (its head is out of range) names no head
  (``head = -1``). Only a head or a member that names a head is *anchored*: a robot without a
  head in range joins the cluster of its nearest anchored neighbour, never the cluster of a
  robot that is itself only relayed. Copying any neighbour's cluster (the literal rule) lets a
  cluster whose head stepped down live on among robots that copy each other, headless, and
  flip between two such ghost clusters every pass. A cluster therefore reaches at most two hops
  from its head. With ``local_max``, only unanchored neighbours (who might promote too) are
  rivals.
* **the last pass only assigns.** In the round's last pass heads neither re-centre nor step
  down, so every member's choice, made on that pass's beacons, still names a head after it
  (k-means also ends on an assignment). :func:`settle` then checks the final beacons.

State is kept from round to round (the random heads are drawn once, before round 1), so a
static swarm keeps its clusters and a moving one changes them only where robots moved.

"Nearest" uses a pluggable criterion: geographic distance (scaled by the range), label
distribution distance (Σ|p−q|, the EMD of Zhao et al. 2018 for labels), or a weighted mix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gossip_learning.config import ClusteringConfig
from gossip_learning.messages import NO_CLUSTER, Beacon, Role

CLUSTER_ID_STRIDE = 1024


#: What a robot knows of one neighbour: the neighbour's last beacon as heard (``id``, ``x``, ``y``,
#: ``role``, ``cluster``, ``head``, ``neighbours`` = its degree, ``label_dist``).
Neighbour = Beacon


@dataclass(frozen=True, slots=True)
class ClusterState:
    """A robot's DK-means state. ``head_since`` is the pass at which it became head;
    ``founded`` counts the clusters it started; ``own`` is the cluster it last stepped down
    from as head (reused if it promotes again, so a cluster that dissolves and re-forms around
    the same robot keeps its id)."""

    role: Role
    cluster: int
    head: int
    head_since: int = -1
    founded: int = 0
    own: int = NO_CLUSTER


@dataclass(frozen=True, slots=True)
class Decision:
    """Result of one ASSIGN step: the new state and, if re-centring, who becomes head."""

    state: ClusterState
    handover_to: int | None = None


def new_cluster_id(robot_id: int, founded: int) -> int:
    """Cluster id for the ``founded``-th cluster a robot starts (unique across robots)."""
    return robot_id * CLUSTER_ID_STRIDE + founded % CLUSTER_ID_STRIDE


def initial_state(robot_id: int, is_head: bool) -> ClusterState:
    """State before the first pass: a head of a fresh cluster, or in no cluster."""
    if is_head:
        return ClusterState(Role.HEAD, new_cluster_id(robot_id, 0), robot_id, -1, 1)
    return ClusterState(Role.NONE, NO_CLUSTER, -1, -1, 0)


def remember(
    table: Mapping[int, Neighbour],
    missed: Mapping[int, int],
    heard: Mapping[int, Neighbour],
    keep: int,
) -> tuple[dict[int, Neighbour], dict[int, int]]:
    """The neighbour table after a pass that heard ``heard``, and how many beacons in a row
    each neighbour kept from ``table`` has missed: every beacon heard, plus the last beacon of
    each earlier neighbour whose beacons were missed at most ``keep`` times in a row
    (``missed`` counts them up to this pass). With ``keep = 0`` the table is what was heard.

    On a lossy channel a robot misses some neighbours' beacons each pass. Deciding on the
    heard beacons alone, a member that missed its head's beacon joins another cluster or
    promotes itself, and a head that missed members' beacons steps down: clusters dissolve and
    re-form every pass, and the gossip partners change with them."""
    out = dict(heard)
    misses: dict[int, int] = {}
    for k, b in table.items():
        n = missed.get(k, 0) + 1
        if k not in heard and n <= keep:
            out[k], misses[k] = b, n
    return out, misses


def label_distance(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Σ|p−q| between two label distributions (0 when either is empty or they differ in size)."""
    if len(p) == 0 or len(q) == 0 or len(p) != len(q):
        return 0.0
    return float(np.abs(np.subtract(p, q)).sum())


class Criterion:
    """Distance between two robots for joining and re-centring."""

    def __init__(self, cfg: ClusteringConfig, comm_range: float) -> None:
        self.kind = cfg.criterion
        self.weight = cfg.mix_weight
        self.scale = comm_range

    @property
    def uses_labels(self) -> bool:
        """Whether label distributions enter the distance (EMD or mixed)."""
        return self.kind != "geographic"

    def __call__(
        self,
        ax: float,
        ay: float,
        ad: Sequence[float] | np.ndarray,
        bx: float,
        by: float,
        bd: Sequence[float] | np.ndarray,
    ) -> float:
        geo = float(np.hypot(ax - bx, ay - by)) / self.scale
        if self.kind == "geographic":
            return geo
        data = label_distance(ad, bd) / 2.0
        if self.kind == "emd":
            return data
        return self.weight * geo + (1.0 - self.weight) * data


def _nearest(
    crit: Criterion, x: float, y: float, dist: np.ndarray, cands: list[Neighbour]
) -> Neighbour:
    return min(cands, key=lambda n: (crit(x, y, dist, n.x, n.y, n.label_dist), n.id))


def anchored(n: Neighbour, table: Mapping[int, Neighbour], me: int) -> bool:
    """Whether neighbour ``n``'s beacon shows it in a cluster with a head it hears, as robot
    ``me`` (not a head) sees it: a head, or a member that names its head, unless that head is
    ``me`` or ``table`` (what ``me`` hears) shows it no longer heading that cluster."""
    if n.cluster == NO_CLUSTER:
        return False
    if n.role == Role.HEAD:
        return True
    if n.role != Role.MEMBER or n.head < 0 or n.head == me:
        return False
    h = table.get(n.head)
    return h is None or (h.role == Role.HEAD and h.cluster == n.cluster)


def _as_non_head(
    me: int,
    state: ClusterState,
    x: float,
    y: float,
    dist: np.ndarray,
    table: Mapping[int, Neighbour],
    cfg: ClusteringConfig,
    crit: Criterion,
    pass_no: int,
    may_promote: bool = True,
) -> ClusterState:
    nbrs = list(table.values())
    heads = [n for n in nbrs if n.role == Role.HEAD and n.cluster != NO_CLUSTER]
    if heads:
        h = _nearest(crit, x, y, dist, heads)
        return ClusterState(Role.MEMBER, h.cluster, h.id, -1, state.founded, state.own)
    degree = len(nbrs)
    if may_promote and degree > cfg.min_cluster_size:
        # the unanchored neighbours: who might promote too, and who could join this robot
        rivals = [n for n in nbrs if not anchored(n, table, me)]
        if cfg.election == "paper" or (
            len(rivals) > cfg.min_cluster_size
            and all((n.neighbours, -n.id) < (degree, -me) for n in rivals)
        ):
            if state.own != NO_CLUSTER:
                return ClusterState(Role.HEAD, state.own, me, pass_no, state.founded)
            return ClusterState(
                Role.HEAD, new_cluster_id(me, state.founded), me, pass_no, state.founded + 1
            )
    relays = [n for n in nbrs if anchored(n, table, me)]
    if relays:  # a member out of its head's range: it names no head
        cluster = _nearest(crit, x, y, dist, relays).cluster
        return ClusterState(Role.MEMBER, cluster, -1, -1, state.founded, state.own)
    return ClusterState(Role.NONE, NO_CLUSTER, -1, -1, state.founded, state.own)


def assign(
    me: int,
    state: ClusterState,
    x: float,
    y: float,
    dist: np.ndarray,
    table: Mapping[int, Neighbour],
    cfg: ClusteringConfig,
    crit: Criterion,
    pass_no: int,
    last: bool = False,
) -> Decision:
    """One ASSIGN step for robot ``me`` given the beacons ``table`` heard this pass; in the
    round's ``last`` pass a head stays head (it neither re-centres nor steps down)."""
    if state.role == Role.HEAD:
        if last:
            return Decision(state)
        members = [n for n in table.values() if n.role == Role.MEMBER and n.head == me]
        settled = state.head_since <= pass_no - 2
        too_small = len(table) <= cfg.min_cluster_size or (
            settled and len(members) <= cfg.min_cluster_size
        )
        if not too_small:
            if not members:
                return Decision(state)
            cx = (x + sum(n.x for n in members)) / (len(members) + 1)
            cy = (y + sum(n.y for n in members)) / (len(members) + 1)
            cd: Sequence[float] | np.ndarray = dist
            if crit.uses_labels:
                dists = [dist] + [n.label_dist for n in members if len(n.label_dist) == len(dist)]
                if len(dists) == len(members) + 1:
                    cd = np.asarray(dists, dtype=np.float64).mean(axis=0)
            best = min(
                [(crit(cx, cy, cd, x, y, dist), me)]
                + [(crit(cx, cy, cd, n.x, n.y, n.label_dist), n.id) for n in members]
            )
            if best[1] == me:
                return Decision(state)
            handed = ClusterState(Role.MEMBER, state.cluster, best[1], -1, state.founded)
            return Decision(handed, best[1])
        others = {k: v for k, v in table.items() if not (v.role == Role.MEMBER and v.head == me)}
        stepped = ClusterState(Role.NONE, NO_CLUSTER, -1, -1, state.founded, state.cluster)
        return Decision(_as_non_head(me, stepped, x, y, dist, others, cfg, crit, pass_no, False))
    return Decision(_as_non_head(me, state, x, y, dist, table, cfg, crit, pass_no))


def settle(
    state: ClusterState, table: Mapping[int, Neighbour], me: int, heads_kept: bool = False
) -> ClusterState:
    """After the last pass, check a member's cluster against the final beacons ``table``.

    A member whose head beacons as head of its cluster stays; so does one whose head's final
    beacon was not heard if ``heads_kept`` (the last pass only assigned: the head it chose on
    that pass's beacons is still head). Otherwise it takes as head the
    lowest-id robot in range that heads its cluster; with none, it stays as a member that names
    no head if a robot in range is anchored in its cluster (see :func:`anchored`: the cluster
    still has a head two hops away), and otherwise leaves the cluster (role NONE), so that no
    robot ends the passes in a cluster without a head. Heads and unclustered robots are
    returned unchanged.
    """
    if state.role != Role.MEMBER:
        return state
    head = table.get(state.head)
    if head is not None and head.role == Role.HEAD and head.cluster == state.cluster:
        return state
    if head is None and heads_kept and state.head >= 0:
        return state  # its head's final beacon was lost, not its head
    same = [n for n in table.values() if n.cluster == state.cluster and n.role == Role.HEAD]
    if same:
        head_id = min(same, key=lambda n: n.id).id
        return ClusterState(Role.MEMBER, state.cluster, head_id, -1, state.founded, state.own)
    if any(n.cluster == state.cluster and anchored(n, table, me) for n in table.values()):
        # two hops from its head: gossips with the anchored members in range
        return ClusterState(Role.MEMBER, state.cluster, -1, -1, state.founded, state.own)
    return ClusterState(Role.NONE, NO_CLUSTER, -1, -1, state.founded, state.own)
