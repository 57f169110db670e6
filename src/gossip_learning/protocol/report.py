"""What one robot tells the recorder about a round: the same record in-process and over ROS."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gossip_learning.protocol.agent import RobotAgent


@dataclass
class RoundReport:
    """One robot's account of one round (JSON-able with :meth:`to_dict`)."""

    id: int
    round: int
    x: float
    y: float
    role: str  # "head", "member" or "none"
    cluster: int
    head: int
    neighbours: int
    samples: int
    train_loss: float = math.nan
    #: (layer value, had an eligible partner in range, completed an exchange) per gossip step
    exchanges: list[tuple[int, bool, bool]] = field(default_factory=list)
    #: (slot, {sender: weight}) for each step whose merge changed the model
    mix: list[tuple[int, dict[int, float]]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # cumulative, by reason
    merged_total: int = 0
    peak_bytes: int = 0  # model-sized bytes held at once, counted by the agent
    model_bytes: int = 0  # bytes of one float32 model

    @classmethod
    def of(cls, agent: RobotAgent) -> RoundReport:
        """The report of ``agent`` now (call with its lock held)."""
        s = agent.membership.state
        return cls(
            id=agent.id, round=agent.round, x=agent.x, y=agent.y, role=s.role.name.lower(),
            cluster=s.cluster, head=s.head, neighbours=len(agent.membership.table),
            samples=agent.num_samples, train_loss=agent.train_loss,
            exchanges=[(int(lay), p, c) for lay, p, c in agent.window.exchanges],
            mix=list(agent.window.mix_log), rejected=dict(agent.inbox.rejected),
            merged_total=agent.window.merged_total, peak_bytes=agent.peak_bytes,
            model_bytes=agent.model.nbytes,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (mixing-row keys become strings)."""
        d = asdict(self)
        d["mix"] = [[slot, {str(k): w for k, w in row.items()}] for slot, row in self.mix]
        d["exchanges"] = [list(e) for e in self.exchanges]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoundReport:
        """Inverse of :meth:`to_dict`; KeyError/TypeError/ValueError on a malformed record."""
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        kw["exchanges"] = [(int(a), bool(b), bool(c)) for a, b, c in d.get("exchanges", [])]
        kw["mix"] = [
            (int(slot), {int(k): float(w) for k, w in row.items()})
            for slot, row in d.get("mix", [])
        ]
        for key in ("id", "round", "cluster", "head", "neighbours", "samples"):
            kw[key] = int(d[key])
        for key in ("x", "y"):
            kw[key] = float(d[key])
        kw["train_loss"] = float(d.get("train_loss", math.nan))
        return cls(**kw)
