"""In-process transport: a simulated radio medium for many agents in one Python process.

Messages published during a phase are queued; :meth:`InProcessNetwork.flush` delivers them. A
message reaches a subscriber of its topic only if the subscriber is in range of the sender's
position (the channel's neighbour graph) and survives the channel's loss draw; every drop is
counted. Each message is encoded to wire bytes once (its size is what a radio would send) and
decoded once; all receivers get the same decoded, read-only message.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from gossip_learning.channel import Channel, GilbertElliott, pairwise_distances
from gossip_learning.errors import WireError
from gossip_learning.transports.base import BatchHandler, Handler, TransportStats
from gossip_learning.wire import BROADCAST, FleetAuth, Message, decode, encode


@dataclass(slots=True)
class _Queued:
    sender: int
    topic: str
    frame: bytes


class InProcessNetwork:
    """The shared medium. Call :meth:`set_positions` whenever robots move."""

    def __init__(
        self,
        num_robots: int,
        channel: Channel,
        rng: np.random.Generator,
        auth: FleetAuth | None = None,
    ) -> None:
        self.n = num_robots
        self.auth = auth  # the fleet key: frames are sealed when sent and opened when heard
        self.channel = channel
        self.rng = rng
        self.time = 0.0
        self.stats = TransportStats()
        self._subs: dict[str, dict[int, Handler]] = {}
        self._batch: dict[str, dict[int, BatchHandler]] = {}
        self._queue: list[_Queued] = []
        self._prob = np.zeros((num_robots, num_robots))
        self._neighbours: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * num_robots
        self._neighbour_sets: list[frozenset[int]] = [frozenset()] * num_robots
        self._lossless = True
        self.positions = np.zeros((num_robots, 2))
        self.burst: GilbertElliott | None = None  # burst loss on top of the channel's
        self.burst_rng: np.random.Generator | None = None
        # set: every flush delivers its frames in an order drawn from it, as a host that hears
        # many senders might (benchmarks/order_sensitivity.py); None: the order they were sent
        self.order_rng: np.random.Generator | None = None

    def endpoint(self, robot_id: int) -> InProcessTransport:
        """The transport one robot's agent uses."""
        if not 0 <= robot_id < self.n:
            raise ValueError(f"robot id {robot_id} outside 0..{self.n - 1}")
        return InProcessTransport(self, robot_id)

    def set_positions(self, positions: np.ndarray, cut: np.ndarray | None = None) -> None:
        """Recompute who can hear whom from ``positions`` (N, 2); links where the boolean
        (N, N) ``cut`` is true carry nothing (a robot switched off, a partition)."""
        self.positions = np.asarray(positions, dtype=np.float64).copy()
        dist = pairwise_distances(self.positions)
        prob = self.channel.reception_probability(dist)
        np.fill_diagonal(prob, 0.0)
        if cut is not None:
            prob[cut] = 0.0
        self._prob = prob
        reach = prob > 0
        self._neighbours = [np.flatnonzero(row) for row in reach]
        self._neighbour_sets = [frozenset(nb.tolist()) for nb in self._neighbours]
        self._lossless = bool(np.all(prob[reach] >= 1.0)) and self.burst is None

    def in_range(self) -> np.ndarray:
        """Boolean (N, N) neighbour graph of the current positions."""
        return self._prob > 0

    def _publish(self, sender: int, topic: str, msg: Message) -> None:
        frame = encode(msg, self.auth)
        self.stats.sent += 1
        self.stats.bytes_sent += len(frame)
        self.stats.by_topic[topic.split("_")[0]] = (
            self.stats.by_topic.get(topic.split("_")[0], 0) + 1
        )
        self._queue.append(_Queued(sender, topic, frame))

    def inject(self, sender: int, topic: str, frame: bytes) -> None:
        """Put raw bytes on the medium as if ``sender`` had sent them (used by tests)."""
        self.stats.sent += 1
        self.stats.bytes_sent += len(frame)
        self._queue.append(_Queued(sender, topic, frame))

    def flush(self) -> int:
        """Deliver everything queued (and anything sent while delivering); return deliveries."""
        delivered = 0
        if self.burst is not None and self._queue:
            assert self.burst_rng is not None
            self.burst.step(self.burst_rng)
        while self._queue:
            queue, self._queue = self._queue, []
            if self.order_rng is not None:
                queue = [queue[k] for k in self.order_rng.permutation(len(queue)).tolist()]
            groups: dict[tuple[str, int, int, int], list[tuple[int, Message, int]]] = defaultdict(
                list
            )
            for item in queue:
                if item.topic in self._batch:  # broadcasts to batch-capable robots, grouped
                    msg = self._decode(item)
                    if msg is None:
                        continue
                    if msg.receiver == BROADCAST:
                        key = (item.topic, int(msg.kind), msg.round, msg.step)
                        groups[key].append((item.sender, msg, len(item.frame)))
                        continue
                delivered += self._deliver(item)
            for (topic, *_), group in groups.items():
                delivered += self._deliver_group(topic, group)
        return delivered

    def _decode(self, item: _Queued) -> Message | None:
        try:
            return decode(item.frame, self.auth)
        except WireError as exc:
            self.stats.reject(exc.reason)
            return None

    def _deliver_group(self, topic: str, group: list[tuple[int, Message, int]]) -> int:
        """One group of broadcasts: a (senders x receivers) reach matrix, then one batch per
        receiver (same range, loss draws and counters as one-by-one delivery)."""
        subs = self._subs.get(topic, {})
        batch = self._batch.get(topic, {})
        receivers = np.array(sorted(subs), dtype=np.int64)
        senders = np.array([g[0] for g in group], dtype=np.int64)
        if receivers.size == 0:
            return 0
        prob = self._prob[np.ix_(senders, receivers)]
        reach = prob > 0
        if not self._lossless:
            if self.burst is not None:
                prob = prob * self.burst.keep[np.ix_(senders, receivers)]
            kept = reach & (self.rng.random(prob.shape) < prob)
            self.stats.dropped += int(reach.sum() - kept.sum())
            reach = kept
        sizes = np.array([g[2] for g in group], dtype=np.int64)
        self.stats.delivered += int(reach.sum())
        self.stats.bytes_delivered += int(sizes @ reach.sum(axis=1))
        msgs = [g[1] for g in group]
        for col, r in enumerate(receivers.tolist()):
            idx = np.flatnonzero(reach[:, col])
            if idx.size == 0:
                continue
            heard = [msgs[idx[0]]] if idx.size == 1 else list(itemgetter(*idx)(msgs))
            handle = batch.get(r)
            if handle is not None:
                handle(heard)
            else:
                for m in heard:
                    subs[r](m)
        return int(reach.sum())

    def _deliver(self, item: _Queued) -> int:
        subs = self._subs.get(item.topic)
        if not subs:
            return 0
        msg = self._decode(item)
        if msg is None:
            return 0
        if msg.receiver != BROADCAST:
            targets = [msg.receiver] if msg.receiver in subs else []
            targets = [t for t in targets if t in self._neighbour_sets[item.sender]]
        elif len(subs) * 4 < len(self._neighbours[item.sender]):
            near = self._neighbour_sets[item.sender]
            targets = [r for r in subs if r in near]
        else:
            targets = [r for r in self._neighbours[item.sender].tolist() if r in subs]
        if not targets:
            return 0
        if not self._lossless:
            p = self._prob[item.sender, targets]
            if self.burst is not None:
                p = p * self.burst.keep[item.sender, targets]
            keep = self.rng.random(len(targets)) < p
            self.stats.dropped += int(len(targets) - keep.sum())
            targets = [t for t, k in zip(targets, keep, strict=True) if k]
        size = len(item.frame)
        for r in targets:
            subs[r](msg)
        self.stats.delivered += len(targets)
        self.stats.bytes_delivered += size * len(targets)
        return len(targets)


class InProcessTransport:
    """One robot's view of an :class:`InProcessNetwork`."""

    def __init__(self, network: InProcessNetwork, robot_id: int) -> None:
        self.network = network
        self.robot_id = robot_id

    def publish(self, topic: str, msg: Message) -> None:
        """Queue ``msg`` for delivery at the next flush."""
        self.network._publish(self.robot_id, topic, msg)

    def subscribe(self, topic: str, handler: Handler, batch: BatchHandler | None = None) -> None:
        """Hear ``topic`` from now on (broadcasts in batches if ``batch`` is given)."""
        self.network._subs.setdefault(topic, {})[self.robot_id] = handler
        if batch is not None:
            self.network._batch.setdefault(topic, {})[self.robot_id] = batch

    def unsubscribe(self, topic: str) -> None:
        """Stop hearing ``topic``."""
        for table in (self.network._subs, self.network._batch):
            subs = table.get(topic)
            if subs is not None:
                subs.pop(self.robot_id, None)
                if not subs:
                    del table[topic]

    def now(self) -> float:
        """Simulated time (rounds)."""
        return self.network.time
