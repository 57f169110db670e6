"""Shared fixtures: make test/ importable for the agent contract helpers; one colcon workspace
for the real `ros2 launch` tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest

from ros_launch_support import build_workspace


@pytest.fixture(scope="session")
def launch_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colcon workspace with this checkout as its one package, built once per session."""
    return build_workspace(tmp_path_factory.mktemp("ws"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``allocations`` measure memory with tracemalloc; under mutmut (which sets
    ``MUTANT_UNDER_TEST``) every mutated function runs through a trampoline that allocates, so
    they step aside there (tools/mutation.py)."""
    if "MUTANT_UNDER_TEST" in os.environ and item.get_closest_marker("allocations"):
        pytest.skip("measures allocations; mutmut's trampolines allocate")
