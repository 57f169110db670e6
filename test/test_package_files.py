"""package.xml, setup.py and `colcon build`: the ROS 2 packaging of gossip_learning."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXEC_DEPENDS = {
    "rclpy",
    "std_msgs",
    "geometry_msgs",
    "nav_msgs",
    "visualization_msgs",
    "launch",
    "launch_ros",
    "ros_gz_sim",
    "ros_gz_bridge",
    "python3-numpy",
    "python3-yaml",
    "python3-torch",
}
NODES = ("robot_node", "mobility_node", "monitor_node", "swarm_node")


def _setup_call() -> ast.Call:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup":
            return node
    raise AssertionError("setup.py has no setup() call")


def _setup_kw(name: str) -> ast.expr:
    for kw in _setup_call().keywords:
        if kw.arg == name:
            return kw.value
    raise AssertionError(f"setup() has no {name}=")


def test_package_xml_parses_and_validates_with_catkin_pkg() -> None:
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg not installed")
    pkg = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    pkg.validate()  # raises InvalidPackage on schema-level problems, as colcon and bloom do
    assert pkg.name == "gossip_learning"
    assert pkg.package_format == 3
    assert pkg.get_build_type() == "ament_python"
    exec_deps = {d.name for d in pkg.exec_depends}
    assert exec_deps >= EXEC_DEPENDS, f"missing exec_depends: {sorted(EXEC_DEPENDS - exec_deps)}"
    version = ast.literal_eval(_setup_kw("version"))
    assert pkg.version == version, "package.xml and setup.py versions differ"


def test_package_xml_is_well_formed_without_catkin_pkg() -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "gossip_learning"
    assert root.findtext("export/build_type") == "ament_python"
    assert {e.text for e in root.findall("exec_depend")} >= EXEC_DEPENDS
    assert (ROOT / "resource" / "gossip_learning").is_file()


def test_setup_installs_share_files_and_node_executables() -> None:
    source = (ROOT / "setup.py").read_text(encoding="utf-8")
    for folder in ("launch", "config", "worlds"):
        assert folder in source
    scripts = ast.literal_eval(_setup_kw("entry_points"))["console_scripts"]
    names = {s.split("=")[0].strip(): s.split("=")[1].strip() for s in scripts}
    assert "gossip-learning" in names
    for node in NODES:
        module, _, func = names[node].partition(":")
        path = ROOT / "src" / Path(*module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert func in funcs, f"{module} has no {func}()"
    assert (ROOT / "setup.cfg").read_text().count("$base/lib/gossip_learning") == 2


def test_colcon_build_installs_launch_worlds_config_and_nodes(tmp_path: Path) -> None:
    colcon = shutil.which("colcon") or (
        str(Path(sys.executable).with_name("colcon"))
        if Path(sys.executable).with_name("colcon").exists()
        else None
    )
    if colcon is None:
        pytest.skip("colcon not installed (pip install colcon-common-extensions)")
    src = tmp_path / "src"
    src.mkdir()
    (src / "gossip_learning").symlink_to(ROOT)
    proc = subprocess.run(
        [
            colcon,
            "--log-base",
            str(tmp_path / "log"),
            "build",
            "--base-paths",
            str(src),
            "--build-base",
            str(tmp_path / "build"),
            "--install-base",
            str(tmp_path / "install"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = tmp_path / "install" / "gossip_learning"
    share = prefix / "share" / "gossip_learning"
    for rel in (
        "package.xml",
        "launch/swarm.launch.py",
        "worlds/arena.sdf",
        "worlds/models/diff_bot/model.sdf",
        "worlds/models/diff_bot/model.config",
        "config/ros_swarm.yaml",
        "config/ros_robot.yaml",
    ):
        assert (share / rel).is_file(), rel
    index = prefix / "share" / "ament_index" / "resource_index" / "packages" / "gossip_learning"
    assert index.is_file()
    for node in NODES:  # where `ros2 run` and launch_ros look for executables
        assert (prefix / "lib" / "gossip_learning" / node).is_file(), node
