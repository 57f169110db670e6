"""package.xml, setup.py and `colcon build`: the ROS 2 packaging of gossip_learning."""

from __future__ import annotations

import ast
import os
import shutil
import signal
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
NODES = ("robot_node", "mobility_node", "monitor_node", "swarm_node", "plant_node")


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
    assert set(names) == {"gossip-learning"}  # the nodes are plain scripts (no entry-point scan)
    entry = ast.parse((ROOT / "src/gossip_learning/nodes/entry.py").read_text(encoding="utf-8"))
    funcs = {n.name for n in entry.body if isinstance(n, ast.FunctionDef)}
    for node in NODES:
        script = ROOT / "scripts" / node
        assert os.access(script, os.X_OK), script
        body = ast.parse(script.read_text(encoding="utf-8")).body
        imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
        # one import, the SIGINT-first entry module, and the node's function from it
        assert [
            (i.module, [a.name for a in i.names]) for i in imports if isinstance(i, ast.ImportFrom)
        ] == [("gossip_learning.nodes.start", [node.removesuffix("_node")])]
        assert len(imports) == 1 and node.removesuffix("_node") in funcs
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
    _ctrl_c_once_the_entry_module_loaded(prefix / "lib" / "gossip_learning" / "robot_node")


def _ctrl_c_once_the_entry_module_loaded(executable: Path) -> None:
    """The installed executable loads nodes/start.py first (nothing scans the installed
    distributions before it), and a Ctrl-C from that moment on ends it with 0 and no
    traceback, before rclpy, numpy or the node's module have loaded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPROFILEIMPORTTIME"] = "1"  # -X importtime, for the executable run as it is
    interpreter = executable.read_text(encoding="utf-8").splitlines()[0].removeprefix("#!")
    assert os.access(interpreter.split()[0], os.X_OK), interpreter  # not setuptools' `#!python`
    proc = subprocess.Popen(
        [str(executable)],  # its own #! line, as ros2 run and launch start it
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    before: list[str] = []
    for line in proc.stderr:  # -X importtime: one line per module, as each finishes loading
        name = line.rsplit("|", 1)[-1].strip()
        if name == "gossip_learning.nodes.start":
            proc.send_signal(signal.SIGINT)
            break
        before.append(name)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, rest[-2000:]
    assert "Traceback" not in rest, rest[-2000:]
    assert not {"importlib.metadata", "pkg_resources", "rclpy", "numpy"} & set(before), before
