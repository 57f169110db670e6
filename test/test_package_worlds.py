"""worlds/: the arena and the diff-drive robot are SDF <= 1.9 with the systems Gazebo needs."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gossip_learning.config import load_config
from gossip_learning.nodes.launch_support import robot_sdf

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / "worlds" / "arena.sdf"
MODEL = ROOT / "worlds" / "models" / "diff_bot" / "model.sdf"
WORLD_SYSTEMS = {
    "gz-sim-physics-system": "gz::sim::systems::Physics",
    "gz-sim-user-commands-system": "gz::sim::systems::UserCommands",
    "gz-sim-scene-broadcaster-system": "gz::sim::systems::SceneBroadcaster",
}
ROBOT_SYSTEMS = {
    "gz-sim-diff-drive-system": "gz::sim::systems::DiffDrive",
    "gz-sim-odometry-publisher-system": "gz::sim::systems::OdometryPublisher",
}


def _plugins(elem: ET.Element) -> dict[str, str]:
    return {p.get("filename", ""): p.get("name", "") for p in elem.findall("plugin")}


def _sdf_version(root: ET.Element) -> tuple[int, ...]:
    return tuple(int(v) for v in root.get("version", "0").split("."))


def test_world_has_required_systems_and_is_sdf_1_9_or_older() -> None:
    root = ET.parse(WORLD).getroot()
    assert root.tag == "sdf" and _sdf_version(root) <= (1, 9)
    world = root.find("world")
    assert world is not None and world.get("name") == "arena"
    plugins = _plugins(world)
    for filename, name in WORLD_SYSTEMS.items():
        assert plugins.get(filename) == name


def test_walls_enclose_the_configured_area() -> None:
    width, height = load_config(ROOT / "config" / "ros_swarm.yaml").swarm.area
    world = ET.parse(WORLD).getroot().find("world")
    assert world is not None
    walls = next(m for m in world.findall("model") if m.get("name") == "walls")
    inner = {}
    for col in walls.iter("collision"):
        pose = [float(v) for v in (col.findtext("pose") or "").split()]
        size = [float(v) for v in (col.findtext("geometry/box/size") or "").split()]
        name = str(col.get("name")).split("_")[0]
        if name in ("west", "east"):
            inner[name] = pose[0] + (size[0] / 2 if name == "west" else -size[0] / 2)
            assert size[1] >= height
        else:
            inner[name] = pose[1] + (size[1] / 2 if name == "south" else -size[1] / 2)
            assert size[0] >= width
    assert inner == pytest.approx({"west": 0.0, "east": width, "south": 0.0, "north": height})


def test_robot_model_drives_and_reports_odometry() -> None:
    root = ET.parse(MODEL).getroot()
    assert _sdf_version(root) <= (1, 9)
    model = root.find("model")
    assert model is not None
    plugins = _plugins(model)
    for filename, name in ROBOT_SYSTEMS.items():
        assert plugins.get(filename) == name
    joints = {j.get("name") for j in model.findall("joint")}
    diff = next(
        p
        for p in model.findall("plugin")
        if p.get("name") == ROBOT_SYSTEMS["gz-sim-diff-drive-system"]
    )
    assert {diff.findtext("left_joint"), diff.findtext("right_joint")} <= joints
    odom = next(p for p in model.findall("plugin") if "Odometry" in str(p.get("name")))
    assert odom.findtext("odom_topic") == "/model/diff_bot/odometry"
    assert diff.findtext("odom_topic") != odom.findtext("odom_topic")
    config = ET.parse(MODEL.parent / "model.config").getroot()
    assert config.findtext("sdf") == "model.sdf"


def _sdf_checker() -> list[str]:
    for tool in ("gz", "ign"):
        exe = shutil.which(tool)
        if exe is None:
            continue
        probe = subprocess.run([exe, "sdf", "--help"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return [exe, "sdf", "-k"]
    pytest.skip("no SDF checker: apt-get install ignition-tools libsdformat-dev ruby")


@pytest.mark.parametrize("name", ["world", "model", "spawned"])
def test_sdf_checker_accepts_files(name: str, tmp_path: Path) -> None:
    cmd = _sdf_checker()
    if name == "spawned":
        path = tmp_path / "robot_3.sdf"
        path.write_text(robot_sdf(MODEL.read_text(encoding="utf-8"), "robot_3"), encoding="utf-8")
    else:
        path = WORLD if name == "world" else MODEL
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Valid" in proc.stdout, proc.stdout + proc.stderr
