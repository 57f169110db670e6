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
    """A message on the wire is corrupt, truncated, foreign or of an unsupported version."""
