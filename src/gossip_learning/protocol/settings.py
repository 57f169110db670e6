"""Protocol knobs shared by every robot of a swarm."""

from __future__ import annotations

from dataclasses import dataclass, field

from gossip_learning.config import ClusteringConfig, DefenceConfig, GossipConfig


@dataclass(frozen=True)
class AgentSettings:
    """Protocol knobs shared by every robot of a swarm."""

    method: str  # bilayer, flat or local
    clustering: ClusteringConfig
    gossip: GossipConfig
    comm_range: float
    model_version: int
    num_params: int
    defence: DefenceConfig = field(default_factory=DefenceConfig)
