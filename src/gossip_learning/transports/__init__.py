"""Transports: how an agent's messages reach its neighbours (in-process, ROS 2, DDS)."""

from gossip_learning.transports.base import Handler, Transport, TransportStats

__all__ = ["Handler", "Transport", "TransportStats"]
