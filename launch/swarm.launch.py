"""Launch a gossip_learning swarm: N robot nodes, their motion (kinematic or Gazebo) and a monitor.

    ros2 launch gossip_learning swarm.launch.py num_robots:=20 sim:=gazebo

Robots are expanded with OpaqueFunction (ForEach would be shorter but exists only from Kilted; CI
runs Jazzy), each in the namespace robot_<i>. sim:=kinematic moves robots with the built-in mobility
driver, which publishes /robot_<i>/odom itself; sim:=gazebo starts Gazebo with the arena world,
spawns each robot with `ros_gz_sim create` at a seeded pose and bridges /clock, /robot_<i>/odom
(from /model/robot_<i>/odometry) and /robot_<i>/cmd_vel (to /model/robot_<i>/cmd_vel) with
ros_gz_bridge. Swarm traffic lives under /<swarm_namespace>/ (beacon, robot_<id>, cluster_<cid>,
inter, status, markers).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    IncludeLaunchDescription,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.events.process import ProcessExited
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from gossip_learning.config import load_config
from gossip_learning.mobility import model_params
from gossip_learning.nodes.launch_support import (
    SIM_MODES,
    parse_bool,
    parse_number,
    robot_name,
    robot_sdf,
    spawn_poses,
    world_name,
    write_bridge_config,
)
from gossip_learning.robot_data import write_robot_files

PACKAGE = "gossip_learning"

# name -> (default, description). A tuple default is a path inside this package's share directory.
ARGUMENTS: dict[str, tuple[str | tuple[str, ...], str]] = {
    "num_robots": ("0", "Number of robots; 0 takes swarm.num_robots from the config file."),
    "config": (
        ("config", "ros_swarm.yaml"),
        "Experiment YAML in the engine's format (swarm, channel, clustering, gossip, learning, "
        "data, timing).",
    ),
    "params_file": (
        ("config", "ros_robot.yaml"),
        "ROS parameter file applied to every robot node (overridden by the arguments below).",
    ),
    "sim": ("kinematic", "How robots move: kinematic (built-in driver publishes odom) or gazebo."),
    "world": (("worlds", "arena.sdf"), "Gazebo world SDF (sim:=gazebo only)."),
    "gui": ("true", "Start the Gazebo GUI as well as the server (sim:=gazebo only)."),
    "seed": (
        "0",
        "Seed for spawn poses, data partition, protocol randomness and (one node per robot only) "
        "mobility; single_process:=true seeds robot i's driver with i.",
    ),
    "comm_range": (
        "0",
        "Radio range in metres for the range filter; 0 takes channel.comm_range from the config.",
    ),
    "speed": ("0", "Robot speed in m/s; 0 takes mobility.speed from the config (per second)."),
    "rounds": (
        "0",
        "Rounds to run before robots stop gossiping; 0 takes experiment.rounds from the config.",
    ),
    "use_sim_time": (
        "auto",
        "Use /clock: true, false, or auto (true with sim:=gazebo, false otherwise).",
    ),
    "single_process": (
        "false",
        "Host all robots and their drivers in one process (one executor, many nodes), "
        "for large swarms.",
    ),
    "monitor": (
        "true",
        "Start the monitor (metrics CSV, plots, MarkerArray on /<swarm_namespace>/markers).",
    ),
    "output_dir": ("results/ros", "Folder the monitor writes metrics and plots to."),
    "swarm_namespace": ("swarm", "Namespace of the shared swarm topics."),
    "log_level": ("info", "Log level of the gossip_learning nodes."),
    "start_delay": (
        "10",
        "Seconds from launch to round 1 on the chosen clock (start-up: imports, data, discovery).",
    ),
}


def _share() -> str:
    return get_package_share_directory(PACKAGE)


def _arg(context: LaunchContext, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _check_arguments(context: LaunchContext) -> None:
    """A mistyped argument (``num_robot:=5``) is an error that lists the valid ones."""
    unknown = sorted(set(context.launch_configurations) - set(ARGUMENTS))
    if unknown:
        raise ValueError(
            f"unknown launch argument(s) {', '.join(unknown)}; "
            f"valid arguments: {', '.join(sorted(ARGUMENTS))}"
        )


def _shutdown_when_done(robots: list[Node]) -> list:
    """Shut the launch down (monitor and drivers too) once every robot process has exited:
    robots exit by themselves after their last round."""
    left = {id(r) for r in robots}

    def exited(event: ProcessExited, _: LaunchContext) -> list:
        left.discard(id(event.action))
        if left:
            return []
        return [EmitEvent(event=Shutdown(reason="every robot finished its rounds"))]

    return [RegisterEventHandler(OnProcessExit(target_action=r, on_exit=exited)) for r in robots]


def _expand(context: LaunchContext) -> list:
    """Build every node for the chosen number of robots and simulation mode."""
    _check_arguments(context)
    sim = _arg(context, "sim")
    if sim not in SIM_MODES:
        raise ValueError(f"launch argument sim:={sim!r} must be one of {', '.join(SIM_MODES)}")
    config_path = _arg(context, "config")
    cfg = load_config(config_path) if config_path else load_config()
    n = parse_number("num_robots", _arg(context, "num_robots"), int, 0) or cfg.swarm.num_robots
    seed = parse_number("seed", _arg(context, "seed"), int, 0)
    comm_range = parse_number("comm_range", _arg(context, "comm_range"), float, 0.0)
    speed = parse_number("speed", _arg(context, "speed"), float, 0.0) or cfg.mobility.speed
    rounds = parse_number("rounds", _arg(context, "rounds"), int, 0)
    sim_time_arg = _arg(context, "use_sim_time")
    use_sim_time = (
        sim == "gazebo" if sim_time_arg == "auto" else parse_bool("use_sim_time", sim_time_arg)
    )
    single = parse_bool("single_process", _arg(context, "single_process"))
    if single and sim == "gazebo":
        raise ValueError("single_process:=true supports sim:=kinematic only")
    namespace = _arg(context, "swarm_namespace")
    params_file = _arg(context, "params_file")
    log = ["--ros-args", "--log-level", _arg(context, "log_level")]
    area = (float(cfg.swarm.area[0]), float(cfg.swarm.area[1]))
    poses = spawn_poses(n, area, seed)
    names = [robot_name(i) for i in range(n)]

    # A shared round epoch on the chosen clock, after start-up (imports, data, discovery, spawning).
    delay = parse_number("start_delay", _arg(context, "start_delay"), float, 0.0)
    epoch = delay if use_sim_time else math.ceil(time.time()) + delay
    # Each robot loads only its own partition: written once here (same SwarmPlan as the engine).
    data_dir = tempfile.mkdtemp(prefix="gossip_learning_data_")
    write_robot_files(load_config(config_path or None, [f"swarm.num_robots={n}"]), seed, data_dir)
    common = {
        "data_dir": data_dir,
        "epoch": epoch,
        "config_file": config_path,
        "num_robots": n,
        "seed": seed,
        "comm_range": comm_range,
        "rounds": rounds,
        "swarm_namespace": namespace,
        "use_sim_time": use_sim_time,
    }
    file_params = [params_file] if params_file else []
    actions: list = []

    robots: list[Node] = []  # the processes whose exit ends the launch
    if single:
        robots.append(
            Node(
                package=PACKAGE,
                executable="swarm_node",
                name="swarm",
                output="screen",
                parameters=[
                    *file_params,
                    {
                        **common,
                        "speed": speed,
                        "x0": [p[0] for p in poses],
                        "y0": [p[1] for p in poses],
                        "yaw0": [p[2] for p in poses],
                    },
                ],
                arguments=log,
            )
        )
    else:
        for i, (name, (x, y, yaw)) in enumerate(zip(names, poses, strict=True)):
            robots.append(
                Node(
                    package=PACKAGE,
                    executable="robot_node",
                    name="robot",
                    namespace=name,
                    output="screen",
                    parameters=[*file_params, {**common, "robot_id": i}],
                    arguments=log,
                )
            )
            actions.append(
                Node(
                    package=PACKAGE,
                    executable="mobility_node",
                    name="mobility",
                    namespace=name,
                    output="screen",
                    parameters=[
                        {
                            "mode": sim,
                            "model": cfg.mobility.model,
                            **model_params(cfg.mobility.model, cfg.mobility),
                            "speed": speed,
                            "area": list(area),
                            "seed": seed * 100_003 + i,
                            "x0": x,
                            "y0": y,
                            "yaw0": yaw,
                            "frame_id": "world",
                            "child_frame_id": f"{name}/base_link",
                            "use_sim_time": use_sim_time,
                        }
                    ],
                    arguments=log,
                )
            )

    if sim == "gazebo":
        actions.extend(_gazebo(context, names, poses, use_sim_time))

    if parse_bool("monitor", _arg(context, "monitor")):
        actions.append(
            Node(
                package=PACKAGE,
                executable="monitor_node",
                name="monitor",
                output="screen",
                parameters=[
                    {
                        "swarm_namespace": namespace,
                        "num_robots": n,
                        "output_dir": _arg(context, "output_dir"),
                        "comm_range": comm_range or cfg.channel.comm_range,
                        "use_sim_time": use_sim_time,
                    }
                ],
                arguments=log,
            )
        )
    return [*robots, *actions, *_shutdown_when_done(robots)]


def _gazebo(
    context: LaunchContext,
    names: list[str],
    poses: list[tuple[float, float, float]],
    use_sim_time: bool,
) -> list:
    """Gazebo server (and GUI), one `ros_gz_sim create` per robot, and the bridge."""
    world = _arg(context, "world")
    if not Path(world).is_file():
        raise ValueError(f"launch argument world:={world!r}: no such file")
    gz_args = f"-r {world}" if parse_bool("gui", _arg(context, "gui")) else f"-r -s {world}"
    gz_sim = os.path.join(get_package_share_directory("ros_gz_sim"), "launch", "gz_sim.launch.py")
    actions: list = [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(gz_sim),
            launch_arguments={"gz_args": gz_args, "on_exit_shutdown": "true"}.items(),
        )
    ]
    template = Path(_share(), "worlds", "models", "diff_bot", "model.sdf").read_text(
        encoding="utf-8"
    )
    wname = world_name(world)
    for name, (x, y, yaw) in zip(names, poses, strict=True):
        actions.append(
            Node(
                package="ros_gz_sim",
                executable="create",
                name=f"spawn_{name}",
                output="screen",
                arguments=[
                    "-world",
                    wname,
                    "-name",
                    name,
                    "-string",
                    robot_sdf(template, name),
                    "-x",
                    f"{x:.3f}",
                    "-y",
                    f"{y:.3f}",
                    "-z",
                    "0.02",
                    "-Y",
                    f"{yaw:.4f}",
                ],
            )
        )
    bridge_yaml = write_bridge_config(
        names, Path(tempfile.mkdtemp(prefix="gossip_learning_bridge_")) / "bridge.yaml"
    )
    actions.append(
        Node(
            package="ros_gz_bridge",
            executable="parameter_bridge",
            name="swarm_bridge",
            output="screen",
            parameters=[{"config_file": str(bridge_yaml), "use_sim_time": use_sim_time}],
        )
    )
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declared arguments, then one OpaqueFunction that expands the swarm."""
    declared = [
        DeclareLaunchArgument(
            name,
            default_value=(
                PathJoinSubstitution([FindPackageShare(PACKAGE), *default])
                if isinstance(default, tuple)
                else default
            ),
            description=description,
            choices=list(SIM_MODES) if name == "sim" else None,
        )
        for name, (default, description) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_expand)])
