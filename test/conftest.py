"""Shared fixtures: make test/ importable for the agent contract helpers; one colcon workspace
for the real `ros2 launch` tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest

from ros_launch_support import build_workspace


@pytest.fixture(scope="session")
def launch_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colcon workspace with this checkout as its one package, built once per session."""
    return build_workspace(tmp_path_factory.mktemp("ws"))
