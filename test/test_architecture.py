"""The layering the code promises: arrows point down (nodes -> driver/transports -> agent ->
algorithm), no module keeps mutable state at module level, parts stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "gossip_learning"
#: Algorithm and protocol modules: none may import the wire format, ROS or the simulator.
PURE = [
    "aggregation.py", "channel.py", "dkmeans.py", "graph_metrics.py", "messages.py",
    "mobility.py", "partition.py", "schedule.py", "driver.py", "recorder.py", "plan.py",
    "training.py", "baselines.py", *(f"protocol/{p.name}" for p in (PKG / "protocol").glob("*.py")),
]  # fmt: skip
SIMULATOR = ("gossip_learning.experiment", "gossip_learning.transports.inprocess")


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


@pytest.mark.parametrize("name", PURE)
def test_algorithm_and_protocol_modules_import_no_wire_ros_or_simulator(name: str) -> None:
    found = imports(PKG / name)
    bad = {
        m
        for m in found
        if m.startswith(("gossip_learning.wire", "rclpy", "gossip_learning.nodes", *SIMULATOR))
    }
    assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((PKG / "nodes").glob("*.py")), ids=lambda p: p.name)
def test_nodes_never_import_the_simulator(path: Path) -> None:
    bad = {m for m in imports(path) if m.startswith(SIMULATOR)}
    assert not bad, f"nodes/{path.name} imports {sorted(bad)}"


def _module_level_mutables(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.Global):
            found.append("global statement")
        targets: list[ast.expr] = []
        value = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        mutable = isinstance(value, (ast.List, ast.Dict, ast.Set)) or (
            isinstance(value, ast.Call) and getattr(value.func, "id", "") in ("list", "dict", "set")
        )
        for t in targets:
            name = getattr(t, "id", "")
            # UPPER_CASE names are constants by convention (tables nobody mutates)
            if mutable and name and not name.isupper() and name != "__all__":
                found.append(name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"global {', '.join(node.names)}")
    return found


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_level_mutable_state(path: Path) -> None:
    assert _module_level_mutables(path) == []


@pytest.mark.parametrize("path", sorted((PKG / "protocol").glob("*.py")), ids=lambda p: p.name)
def test_agent_parts_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 230, f"protocol/{path.name} has {lines} lines: split it"
