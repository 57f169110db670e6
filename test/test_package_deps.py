"""package.xml against the code: every package the code imports is declared, and what a robot
process imports at start-up is in the robot's group (``GOSSIP_LEARNING_INSTALL=robot``)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
#: import name -> rosdep key in package.xml
ROSDEP = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "lifecycle_msgs": "lifecycle_msgs",
    "std_msgs": "std_msgs",
    "geometry_msgs": "geometry_msgs",
    "nav_msgs": "nav_msgs",
    "visualization_msgs": "visualization_msgs",
    "rosgraph_msgs": "rosgraph_msgs",
    "tf2_ros": "tf2_ros",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "ament_index_python": "ament_index_python",
    "numpy": "python3-numpy",
    "yaml": "python3-yaml",
    "scipy": "python3-scipy",
    "serial": "python3-serial",
    "cryptography": "python3-cryptography",
    "matplotlib": "python3-matplotlib",
    "sklearn": "python3-sklearn",
    "torch": "python3-torch",
}
#: imports that are no ROS dependency: pip extras (setup.py ``vision``) or optional speed-ups
PIP_ONLY = {"PIL", "torchvision", "tqdm", "mcunet", "threadpoolctl", "ray"}
#: optional, used only where installed: this repository's msgs/gossip_learning_msgs (typed
#: summaries), built beside the package (docs/ros.md)
OPTIONAL = {"gossip_learning_msgs"}
#: the robot processes' entry modules
ROBOT_ENTRIES = ("gossip_learning.nodes.robot", "gossip_learning.nodes.swarm")


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute module names ``path`` imports (only at module level if ``top_level_only``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _third_party(names: set[str]) -> set[str]:
    tops = {n.split(".")[0] for n in names}
    return {t for t in tops if t not in sys.stdlib_module_names and t != "gossip_learning"}


def _declared(env: dict[str, str] | None) -> set[str]:
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg not installed")
    pkg = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    pkg.evaluate_conditions(env or {})
    return {d.name for d in pkg.exec_depends if d.evaluated_condition}


def test_every_imported_package_is_declared_in_package_xml() -> None:
    files = [*(SRC / "gossip_learning").rglob("*.py"), *(ROOT / "launch").glob("*.launch.py")]
    used = set().union(*(_third_party(_imports(f, False)) for f in files))
    unmapped = used - set(ROSDEP) - PIP_ONLY - OPTIONAL
    assert not unmapped, f"no rosdep key (add to ROSDEP and package.xml): {unmapped}"
    declared = _declared(None)
    missing = {ROSDEP[m] for m in used if m in ROSDEP} - declared
    assert not missing, f"imported but not in package.xml: {sorted(missing)}"
    # rclpy.lifecycle needs lifecycle_msgs; the nodes use rclpy.lifecycle
    assert "lifecycle_msgs" in declared


def test_a_robot_installs_what_its_processes_import_and_no_experiment_or_gazebo() -> None:
    seen: set[str] = set()
    todo = list(ROBOT_ENTRIES)
    third: set[str] = set()
    while todo:  # module-level imports only: what a robot process loads when it starts
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        names = _imports(path, True)
        third |= _third_party(names)
        todo += [n for n in names if n.startswith("gossip_learning")]
    robot = _declared({"GOSSIP_LEARNING_INSTALL": "robot"})
    needed = {ROSDEP[m] for m in third if m in ROSDEP}
    assert needed <= robot, f"a robot imports {sorted(needed - robot)} outside its group"
    heavy = {"python3-matplotlib", "python3-sklearn", "python3-torch", "ros_gz_sim", "launch"}
    assert not robot & heavy, f"a robot would install {sorted(robot & heavy)}"
    experiment = _declared({"GOSSIP_LEARNING_INSTALL": "experiment"})
    assert {"launch", "python3-matplotlib"} <= experiment
    assert not experiment & {"ros_gz_sim", "ros_gz_bridge"}
    assert {"ros_gz_sim", "ros_gz_bridge"} <= _declared(None)  # a full install has Gazebo's


def _setup_requirements() -> tuple[list[str], dict[str, list[str]]]:
    """install_requires and extras_require as setup.py writes them (read, not run)."""
    call = next(
        n
        for n in ast.walk(ast.parse((ROOT / "setup.py").read_text(encoding="utf-8")))
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"
    )
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in _REQ_KEYS}
    return kw["install_requires"], kw["extras_require"]


_REQ_KEYS = ("install_requires", "extras_require")


def _names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in reqs}


def test_a_pip_install_brings_a_robot_only_what_it_needs() -> None:
    """`pip install gossip_learning` on a robot: what its processes import, nothing for plots,
    the simulator or Gazebo; those are the experiment extra (issue 24)."""
    base, extras = _setup_requirements()
    assert _names(base) == {"numpy", "scipy", "pyyaml"}
    assert {"matplotlib", "scikit-learn"} <= _names(extras["experiment"])


def test_a_command_that_needs_the_experiment_extra_says_so_before_any_work(
    tmp_path: Path,
) -> None:
    out = tmp_path / "res"
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['sklearn'] = None\n"
        "from gossip_learning.cli import main\n"
        f"sys.exit(main(['run', {str(ROOT / 'config' / 'quickstart.yaml')!r}, "
        f"'--out', {str(out)!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "gossip_learning[experiment]" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()  # nothing left behind
