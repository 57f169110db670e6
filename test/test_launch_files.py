"""launch/swarm.launch.py: declared arguments, Jazzy-safe constructs, helpers, real launch."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

from gossip_learning.nodes import launch_support as ls

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "swarm.launch.py"
DOCUMENTED = (
    "num_robots",
    "config",
    "params_file",
    "sim",
    "world",
    "gui",
    "seed",
    "comm_range",
    "speed",
    "rounds",
    "use_sim_time",
    "single_process",
    "motion",
    "discovery",
    "monitor",
    "output_dir",
    "swarm_namespace",
    "log_level",
    "start_delay",
    "phase_scale",
    "coprocessors",
)


def _arguments() -> dict[str, tuple[object, str]]:
    tree = ast.parse(LAUNCH.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "ARGUMENTS":
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError("swarm.launch.py defines no ARGUMENTS table")


def test_declares_every_documented_argument_with_a_description() -> None:
    args = _arguments()
    assert tuple(args) == DOCUMENTED
    for name, (default, description) in args.items():
        assert isinstance(default, str | tuple), name
        assert isinstance(description, str) and len(description) > 15, name


def test_docs_list_every_argument() -> None:
    doc = (ROOT / "docs" / "ros.md").read_text(encoding="utf-8")
    missing = [name for name in DOCUMENTED if f"`{name}`" not in doc]
    assert not missing, f"docs/ros.md does not describe {missing}"


def test_uses_only_launch_constructs_that_jazzy_has() -> None:
    source = LAUNCH.read_text(encoding="utf-8")
    tree = ast.parse(source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "OpaqueFunction" in names
    assert "ForEach" not in names, "ForEach exists only from Kilted"
    assert "argv" not in names, "launch files must not parse sys.argv"
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs


def test_robot_starts_are_staggered_within_half_the_start_delay() -> None:
    assert ls.stagger_s(1, 1, 10.0) == 0.0
    assert ls.stagger_s(60, 1, ls.start_delay("auto", 60)) == ls.STAGGER_PER_PROCESS_S
    assert ls.stagger_s(20, 2, 100.0) == 2 * ls.STAGGER_PER_PROCESS_S  # robot + its controller
    assert ls.stagger_s(100, 1, 20.0) * 100 <= 10.0  # a short start_delay: all start in 10 s


def test_start_delay_auto_grows_with_processes() -> None:
    assert ls.start_delay("auto", 1) == ls.AUTO_DELAY_S
    assert ls.start_delay("auto", 31) > ls.start_delay("auto", 2) > ls.AUTO_DELAY_S
    assert ls.start_delay("7.5", 30) == 7.5
    with pytest.raises(ValueError, match="start_delay"):
        ls.start_delay("soon", 3)


def test_robot_sdf_renames_model_and_topics() -> None:
    template = (ROOT / "worlds" / "models" / "diff_bot" / "model.sdf").read_text(encoding="utf-8")
    sdf = ls.robot_sdf(template, "robot_7")
    assert '<model name="robot_7">' in sdf
    assert "/model/robot_7/cmd_vel" in sdf and "/model/robot_7/odometry" in sdf
    assert "/model/diff_bot/" not in sdf
    with pytest.raises(ValueError):
        ls.robot_sdf(template, "bad name")


def test_bridge_config_maps_clock_odometry_and_cmd_vel(tmp_path: Path) -> None:
    import yaml

    path = ls.write_bridge_config(["robot_0", "robot_1"], tmp_path / "bridge.yaml")
    entries = yaml.safe_load(path.read_text())
    assert len(entries) == 5
    by_ros = {e["ros_topic_name"]: e for e in entries}
    assert by_ros["/clock"]["direction"] == "GZ_TO_ROS"
    assert by_ros["/robot_1/odom"]["gz_topic_name"] == "/model/robot_1/odometry"
    assert by_ros["/robot_1/odom"]["ros_type_name"] == "nav_msgs/msg/Odometry"
    assert by_ros["/robot_0/cmd_vel"]["gz_topic_name"] == "/model/robot_0/cmd_vel"
    assert by_ros["/robot_0/cmd_vel"]["direction"] == "ROS_TO_GZ"


def test_world_name_and_argument_parsing() -> None:
    assert ls.world_name(ROOT / "worlds" / "arena.sdf") == "arena"
    assert ls.parse_bool("gui", "True") is True and ls.parse_bool("gui", "0") is False
    with pytest.raises(ValueError, match="gui"):
        ls.parse_bool("gui", "maybe")
    with pytest.raises(ValueError, match="num_robots"):
        ls.parse_number("num_robots", "ten", int)
    with pytest.raises(ValueError, match=">= 0"):
        ls.parse_number("comm_range", "-5", float, 0.0)


def _expand(everything: bool = False, **args: str) -> list:  # pragma: no cover - needs ROS
    """The launch's nodes (``everything``: every process it starts) in the order it starts
    them, for launch arguments ``args``."""
    from launch import LaunchContext
    from launch.actions import ExecuteProcess, OpaqueFunction, TimerAction
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_ros.actions import Node

    ctx = LaunchContext()
    ld = PythonLaunchDescriptionSource(str(LAUNCH)).get_launch_description(ctx)
    declared = {a.name for a in ld.get_launch_arguments()}
    assert declared == set(DOCUMENTED)
    values = {
        name: default for name, (default, _) in _arguments().items() if isinstance(default, str)
    }
    values.update(config=str(ROOT / "config" / "ros_swarm.yaml"), params_file="", world="")
    values.update(args)
    ctx.launch_configurations.update(values)
    (opaque,) = [e for e in ld.entities if isinstance(e, OpaqueFunction)]
    out = opaque.execute(ctx) or []
    out = [b for a in out for b in (a.actions if isinstance(a, TimerAction) else [a])]
    return [a for a in out if isinstance(a, ExecuteProcess if everything else Node)]


def _params(node: object) -> dict:  # pragma: no cover - needs ROS
    """A launch_ros Node's dict parameters, with plain values."""
    out: dict = {}
    for group in node._Node__parameters:  # type: ignore[attr-defined]
        if hasattr(group, "items"):
            for key, value in group.items():
                name = "".join(getattr(k, "text", str(k)) for k in key)
                out[name] = value
    return out


NEEDS_LAUNCH = pytest.mark.skipif(
    importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None,
    reason="the ROS 2 launch and launch_ros packages are not installed (no PyPI wheels)",
)


@NEEDS_LAUNCH
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ["monitor_node"] + ["swarm_node"] * 3),
        ({"single_process": "true"}, ["monitor_node", "swarm_node"]),
        ({"sim": "plant"}, ["mobility_node"] * 3 + ["monitor_node", "plant_node"]
         + ["robot_node"] * 3),
    ],
)  # fmt: skip
def test_real_launch_expands_each_mode(args: dict, expected: list) -> None:  # pragma: no cover
    nodes = _expand(num_robots="3", **args)
    assert sorted(n.node_executable for n in nodes) == expected
    swarm = [n for n in nodes if n.node_executable == "swarm_node"]
    ids = sorted(tuple(_params(n)["robot_ids"]) for n in swarm)
    if args.get("sim") == "plant":
        assert ids == []
    else:
        assert ids == ([(-1,)] if args.get("single_process") else [(0,), (1,), (2,)])


@NEEDS_LAUNCH
def test_past_32_slots_the_launch_starts_a_discovery_server_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # pragma: no cover - needs ROS
    from launch_ros.actions import Node

    for var in ("ROS_DISCOVERY_SERVER", "ROS_STATIC_PEERS", "FASTRTPS_DEFAULT_PROFILES_FILE",
                "FASTDDS_DEFAULT_PROFILES_FILE"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    small = _expand(everything=True, num_robots="3")
    assert all(isinstance(a, Node) for a in small)  # localhost: no server
    big = _expand(everything=True, num_robots="40")
    servers = [a for a in big if not isinstance(a, Node)]
    assert len(servers) == 1 and big[0] is servers[0]  # before any robot
    cmd = " ".join("".join(str(getattr(s, "text", s)) for s in part) for part in servers[0].cmd)
    assert cmd.endswith("-m gossip_learning.nodes.dds_server")
    assert len(big) == 1 + 40 + 1  # the server, the robots, the monitor


@NEEDS_LAUNCH
def test_launched_start_poses_are_the_plans() -> None:  # pragma: no cover - needs ROS
    from gossip_learning.config import load_config
    from gossip_learning.plan import SwarmPlan, load_data, mobility_for

    nodes = _expand(num_robots="5", sim="plant", seed="3")
    (plant,) = [n for n in nodes if n.node_executable == "plant_node"]
    p = _params(plant)
    cfg = load_config(ROOT / "config" / "ros_swarm.yaml", ["swarm.num_robots=5"])
    plan = SwarmPlan(cfg, 3, load_data(cfg))
    assert list(p["x0"]) == pytest.approx(plan.positions[:, 0].tolist(), abs=1e-12)
    assert list(p["y0"]) == pytest.approx(plan.positions[:, 1].tolist(), abs=1e-12)
    heads = mobility_for(cfg, plan.positions, plan.mobility_rng).headings
    assert list(p["yaw0"]) == pytest.approx(heads.tolist(), abs=1e-12)
    drivers = sorted(
        (n for n in nodes if n.node_executable == "mobility_node"),
        key=lambda n: str(n._Node__node_namespace),
    )
    assert [_params(d)["x0"] for d in drivers] == pytest.approx(plan.positions[:, 0].tolist())


@NEEDS_LAUNCH
def test_coprocessors_argument_gives_those_robots_their_serial_device() -> None:  # pragma: no cover
    nodes = _expand(num_robots="3", sim="plant", coprocessors="2=/dev/ttyUSB7, 0=/tmp/chip")
    ports = {}
    for n in nodes:
        if n.node_executable == "robot_node":
            p = _params(n)
            port = p.get("coprocessor_port")
            text = port and "".join(getattr(t, "text", str(t)) for t in port)
            ports[p["robot_id"]] = text and yaml.safe_load(text)  # launch_ros keeps YAML text
    assert ports == {0: "/tmp/chip", 1: None, 2: "/dev/ttyUSB7"}
    for bad in ("3=/dev/x", "1", "a=/dev/x"):
        with pytest.raises(ValueError, match="coprocessors"):
            _expand(num_robots="3", sim="plant", coprocessors=bad)
    with pytest.raises(ValueError, match="sim:=plant"):
        _expand(num_robots="3", coprocessors="1=/dev/x")


@NEEDS_LAUNCH
def test_phase_scale_reaches_every_robot_process_and_a_bad_one_stops_the_launch() -> None:
    # pragma: no cover - needs ROS
    def scales(**args: str) -> list[float]:
        nodes = _expand(num_robots="3", **args)
        return [_params(n)["phase_scale"] for n in nodes if n.node_executable == "swarm_node"]

    assert scales() == [1.0, 1.0, 1.0]  # auto: three processes fit any host
    assert scales(phase_scale="2.5") == [2.5, 2.5, 2.5]
    assert scales(single_process="true", phase_scale="auto") == [1.0]
    for bad in ("0", "-2", "soon"):
        with pytest.raises(ValueError, match="phase_scale"):
            _expand(num_robots="3", phase_scale=bad)


def test_bad_discovery_and_motion_are_rejected() -> None:
    with pytest.raises(ValueError, match="discovery"):
        ls.discovery_env("multicast", "x.xml")


def test_loopback_env_keeps_ros_processes_on_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMENT_PREFIX_PATH", "/opt/base")
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    env = ls.loopback_env(7, Path("/tmp/logs"), Path("/ws/install/gossip_learning"))
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert (env["ROS_DOMAIN_ID"], env["ROS_LOG_DIR"]) == ("7", "/tmp/logs")
    assert env["AMENT_PREFIX_PATH"] == "/ws/install/gossip_learning:/opt/base"
    assert ls.loopback_env(7, "/tmp/logs")["AMENT_PREFIX_PATH"] == "/opt/base"


def test_loopback_only_isolates_the_network_where_it_can() -> None:
    import os
    import shutil

    cmd = ls.loopback_only(["ros2", "launch"])
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        assert cmd[:2] == ["unshare", "-n"] and cmd[-2:] == ["ros2", "launch"]
        assert "ip link set lo up" in " ".join(cmd)
    else:
        assert cmd == ["ros2", "launch"]
