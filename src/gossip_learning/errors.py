"""Exceptions with messages that tell the user what to fix."""

from __future__ import annotations


class GossipLearningError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(GossipLearningError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range.

    ``key`` is the dotted path of the offending key (``"channel.comm_range"``).
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"config key '{key}': {message}")


class DataError(GossipLearningError, ValueError):
    """A dataset or partition request cannot be satisfied (bad file, too few samples, ...)."""


class WireError(GossipLearningError, ValueError):
    """A message on the wire is corrupt, truncated, foreign or of an unsupported version.

    ``reason`` is a short name for the counters (``crc``, ``foreign``, ``non_finite``, ...).
    """

    def __init__(self, message: str, reason: str = "undecodable") -> None:
        self.reason = reason
        super().__init__(message)


class OutputError(GossipLearningError, ValueError):
    """A results folder cannot be written (a file is in the way, or no permission)."""
