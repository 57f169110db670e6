"""Decentralised learning on robot swarms: DK-means clusters, bilayer gossip, cumulative FedAvg."""

__version__ = "0.1.0"
