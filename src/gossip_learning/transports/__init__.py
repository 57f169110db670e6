"""Transports: how an agent's messages reach its neighbours (in-process, or ROS 2 via rclpy)."""

from gossip_learning.transports.base import Handler, Transport, TransportStats

__all__ = ["Handler", "Transport", "TransportStats"]
