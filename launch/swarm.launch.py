"""Launch a gossip_learning swarm: N robots, their motion (kinematic, plant or Gazebo), a monitor.

    ros2 launch gossip_learning swarm.launch.py num_robots:=20 sim:=gazebo

Robots are expanded with OpaqueFunction (ForEach would be shorter but exists only from Kilted; CI
runs Jazzy). Every robot starts where `gossip-learning run` starts it for the same config and seed
(gossip_learning.plan.start_poses). sim:=kinematic runs swarm_node: one process per robot (its
kinematic motion inside: one DDS participant per robot), or one for all with single_process:=true.
sim:=gazebo starts Gazebo with the arena world, spawns each robot with `ros_gz_sim create` and
bridges /clock, /robot_<i>/odom (from /model/robot_<i>/odometry) and /robot_<i>/cmd_vel (to
/model/robot_<i>/cmd_vel) with ros_gz_bridge; robot_node and mobility_node (the cmd_vel
controller) run per robot. sim:=plant is that without Gazebo: plant_node integrates every robot's
/model/robot_<i>/cmd_vel and publishes /model/robot_<i>/odometry, and the robots' odom and cmd_vel
are remapped onto those topics. Swarm traffic lives under /<swarm_namespace>/ (beacon, robot_<id>,
cluster_<cid>, inter, status, models, markers).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    TimerAction,
)
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events import Shutdown
from launch.events.process import ProcessExited
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from gossip_learning.config import load_config
from gossip_learning.mobility import model_params
from gossip_learning.nodes.child_signals import signal_children_without_reaping
from gossip_learning.nodes.discovery import DISCOVERY_MODES, choose_discovery, launch_participants
from gossip_learning.nodes.launch_support import (
    SIM_MODES,
    check_arguments,
    gazebo_missing,
    parse_bool,
    parse_number,
    robot_name,
    robot_sdf,
    stagger_s,
    start_delay,
    world_name,
    write_bridge_config,
)
from gossip_learning.nodes.pacing import parse_phase_scale
from gossip_learning.plan import start_poses
from gossip_learning.robot_data import write_robot_files

PACKAGE = "gossip_learning"
#: Seconds the monitor may take after the last robot exited before the launch shuts it down.
MONITOR_GRACE_S = 30.0
#: Seconds the monitor gets after SIGINT to write its final metrics and plots before SIGTERM.
MONITOR_EXIT_S = 60

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
    "sim": (
        "kinematic",
        "How robots move: kinematic (inside each robot process), plant (cmd_vel controller and a "
        "Gazebo-free diff-drive plant node) or gazebo.",
    ),
    "world": (("worlds", "arena.sdf"), "Gazebo world SDF (sim:=gazebo only)."),
    "gui": ("true", "Start the Gazebo GUI as well as the server (sim:=gazebo only)."),
    "seed": (
        "0",
        "Seed of the plan shared with `gossip-learning run`: start poses and headings, mobility, "
        "data partition, initial heads, protocol randomness.",
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
        "Host all robots in one swarm_node process (one clock, shared subscriptions), "
        "kinematic only; for large swarms.",
    ),
    "motion": (
        "time",
        "kinematic: time (robots move at mobility.speed m/s of ROS time) or round (one engine "
        "step between rounds: the positions of `gossip-learning run`).",
    ),
    "discovery": (
        "auto",
        "DDS discovery for the nodes started: auto (the environment's own where it sets one "
        "beyond this host (ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET, ROS_STATIC_PEERS, "
        "ROS_DISCOVERY_SERVER, a Fast DDS profile), else localhost while the swarm's DDS "
        "participants fit its 32 slots, else server), localhost (rmw's, 32 participant slots), "
        "wide (config/fastdds_localhost.xml: UDP on loopback only, 256 slots), server (a Fast DDS "
        "discovery server on a loopback port, started by the launch: each process hears only of "
        "the endpoints it matches) or inherit; a setting "
        "that cannot hold the swarm stops the launch before any process starts.",
    ),
    "monitor": (
        "true",
        "Start the monitor (metrics CSV, plots, MarkerArray on /<swarm_namespace>/markers).",
    ),
    "output_dir": ("results/ros", "Folder the monitor writes metrics and plots to."),
    "swarm_namespace": ("swarm", "Namespace of the shared swarm topics."),
    "log_level": ("info", "Log level of the gossip_learning nodes."),
    "start_delay": (
        "auto",
        "Seconds from launch to round 1 on the chosen clock (start-up: imports, data, discovery); "
        "auto grows with the number of processes.",
    ),
    "phase_scale": (
        "auto",
        "Factor on every timing.*_phase_s of the config and on the robots' clock tick: auto "
        "stretches the phases when this host runs more robot processes than its CPUs serve in "
        "time (1 for single_process:=true and small swarms; nodes/pacing.py), or a number > 0.",
    ),
    "coprocessors": (
        "",
        "Robots that learn on an RP2040 coprocessor: id=serial device, comma-separated (e.g. "
        "1=/dev/ttyUSB0,4=/dev/ttyUSB1; docs/rp2040.md). Needs robot_node: sim:=plant or gazebo.",
    ),
}


def _share() -> str:
    return get_package_share_directory(PACKAGE)


def _arg(context: LaunchContext, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _check_arguments(context: LaunchContext) -> None:
    """A mistyped argument (``num_robot:=5``) is an error that lists the valid ones."""
    check_arguments(context.launch_configurations, ARGUMENTS)


def _coprocessors(text: str, n: int, sim: str) -> dict[int, str]:
    """``coprocessors:=1=/dev/ttyUSB0,4=...`` as {robot id: serial device}."""
    ports: dict[int, str] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        rid, sep, device = item.partition("=")
        if not (sep and rid.strip().isdigit() and int(rid) < n and device.strip()):
            raise ValueError(
                f"launch argument coprocessors:={text!r}: each item must be id=device with an "
                f"id in 0..{n - 1}, got {item!r}"
            )
        ports[int(rid)] = device.strip()
    if ports and sim == "kinematic":
        raise ValueError("coprocessors:= needs robot_node processes: sim:=plant or sim:=gazebo")
    return ports


def _shutdown_when_done(robots: list[Node], monitor: Node | None = None) -> list:
    """Shut the launch down (drivers too) once every robot process has exited (robots exit by
    themselves after their last round) and the monitor has too (it exits by itself once the
    last round's row is written); a monitor still running MONITOR_GRACE_S after the last robot
    (a round it can never close) is shut down then."""
    left = {id(r) for r in robots} | ({id(monitor)} if monitor is not None else set())
    robot_ids = {id(r) for r in robots}

    def exited(event: ProcessExited, _: LaunchContext) -> list:
        left.discard(id(event.action))
        if not left:
            return [EmitEvent(event=Shutdown(reason="every robot and the monitor finished"))]
        if left & robot_ids:
            return []
        reason = f"the monitor did not finish {MONITOR_GRACE_S} s after the last robot"
        return [
            TimerAction(period=MONITOR_GRACE_S, actions=[EmitEvent(event=Shutdown(reason=reason))])
        ]

    targets = [*robots, *([monitor] if monitor is not None else [])]
    return [RegisterEventHandler(OnProcessExit(target_action=t, on_exit=exited)) for t in targets]


def _expand(context: LaunchContext) -> list:
    """Build every node for the chosen number of robots and simulation mode."""
    _check_arguments(context)
    sim = _arg(context, "sim")
    if sim not in SIM_MODES:
        raise ValueError(f"launch argument sim:={sim!r} must be one of {', '.join(SIM_MODES)}")
    if sim == "gazebo":
        gazebo_missing(get_package_share_directory)  # before any work: names what to install
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
    if single and sim != "kinematic":
        raise ValueError("single_process:=true supports sim:=kinematic only")
    motion = _arg(context, "motion")
    if motion not in ("time", "round"):
        raise ValueError(f"launch argument motion:={motion!r} must be time or round")
    processes = 1 if single else n  # robot processes on this host (each decodes every beacon)
    scale = parse_phase_scale(_arg(context, "phase_scale"), processes)
    # config/ sits beside launch/ in the source tree and in share/gossip_learning alike
    profile = Path(__file__).resolve().parent.parent / "config" / "fastdds_localhost.xml"
    with_monitor = parse_bool("monitor", _arg(context, "monitor"))
    dds_dir = tempfile.mkdtemp(prefix="gossip_learning_dds_")  # a wider profile copy, if needed
    try:
        discovery = choose_discovery(  # all of the swarm meets, or an error before any process
            _arg(context, "discovery"),
            launch_participants(sim, n, single, with_monitor),
            os.environ,
            str(profile),
            dds_dir,
        )
    except Exception:  # an error before any process: nothing left behind
        shutil.rmtree(dds_dir, ignore_errors=True)
        raise
    env = discovery.env
    namespace = _arg(context, "swarm_namespace")
    params_file = _arg(context, "params_file")
    log = ["--ros-args", "--log-level", _arg(context, "log_level")]
    area = (float(cfg.swarm.area[0]), float(cfg.swarm.area[1]))
    plan_cfg = load_config(config_path or None, [f"swarm.num_robots={n}"])
    poses = start_poses(plan_cfg, seed)  # where `gossip-learning run` starts them
    names = [robot_name(i) for i in range(n)]

    # A shared round epoch on the chosen clock, after start-up (imports, data, discovery, spawning).
    delay = start_delay(_arg(context, "start_delay"), 1 if single else n)
    epoch = delay if use_sim_time else math.ceil(time.time()) + delay
    # Each robot loads only its own partition: written once here (same SwarmPlan as the engine)
    # into a temporary folder that is removed when the launch shuts down.
    data_dir = tempfile.mkdtemp(prefix="gossip_learning_data_")
    write_robot_files(load_config(config_path or None, [f"swarm.num_robots={n}"]), seed, data_dir)
    output_dir = str(Path(_arg(context, "output_dir")).resolve())
    swarm_frame = "world"
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
        "swarm_frame": swarm_frame,
        "phase_scale": scale,
    }
    file_params = [params_file] if params_file else []
    chips = _coprocessors(_arg(context, "coprocessors"), n, sim)
    actions: list = [
        LogInfo(msg=f"discovery {discovery.reason}"),
        LogInfo(msg=f"gossip_learning: {n} robots, sim:={sim}, output_dir {output_dir}"),
        LogInfo(msg=f"phase_scale {scale:g}: {processes} robot process(es), {os.cpu_count()} CPUs"),
        _remove_at_shutdown(data_dir),
        _remove_at_shutdown(dds_dir),
    ]

    robots: list[Node] = []  # the processes whose exit ends the launch
    monitor: Node | None = None  # exits by itself after the last round's row
    drivers: list[Node] = []  # per robot, its cmd_vel controller (plant, gazebo)
    if sim == "kinematic":
        for ids in [[-1]] if single else [[i] for i in range(n)]:
            robots.append(
                Node(
                    package=PACKAGE,
                    executable="swarm_node",
                    output="screen",
                    parameters=[
                        *file_params,
                        {**common, "robot_ids": ids, "motion": motion, "speed": speed},
                    ],
                    arguments=log,
                    additional_env=env,
                )
            )
    else:
        for i, (name, (x, y, yaw)) in enumerate(zip(names, poses, strict=True)):
            remap = (
                [("odom", f"/model/{name}/odometry"), ("cmd_vel", f"/model/{name}/cmd_vel")]
                if sim == "plant"
                else []
            )
            robots.append(
                Node(
                    package=PACKAGE,
                    executable="robot_node",
                    name="robot",
                    namespace=name,
                    output="screen",
                    # plant and Gazebo publish world poses in frame "odom"
                    parameters=[
                        *file_params,
                        {**common, "robot_id": i, "odom_frame": "odom"},
                        *([{"coprocessor_port": chips[i]}] if i in chips else []),
                    ],
                    remappings=remap,
                    arguments=log,
                    additional_env=env,
                )
            )
            drivers.append(
                Node(
                    package=PACKAGE,
                    executable="mobility_node",
                    name="mobility",
                    namespace=name,
                    output="screen",
                    parameters=[
                        {
                            "mode": "gazebo",  # the cmd_vel controller, on odometry
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
                    remappings=remap,
                    arguments=log,
                    additional_env=env,
                )
            )
    if sim == "plant":
        actions.append(
            Node(
                package=PACKAGE,
                executable="plant_node",
                name="plant",
                output="screen",
                parameters=[
                    {
                        "names": names,
                        "x0": [p[0] for p in poses],
                        "y0": [p[1] for p in poses],
                        "yaw0": [p[2] for p in poses],
                        "use_sim_time": use_sim_time,
                    }
                ],
                arguments=log,
                additional_env=env,
            )
        )

    if sim == "gazebo":
        actions.extend(_gazebo(context, names, poses, use_sim_time))

    if with_monitor:
        monitor = Node(
            package=PACKAGE,
            executable="monitor_node",
            name="monitor",
            output="screen",
            parameters=[
                {
                    "swarm_namespace": namespace,
                    "num_robots": n,
                    "output_dir": output_dir,
                    "frame_id": swarm_frame,
                    "comm_range": comm_range or cfg.channel.comm_range,
                    "rounds": rounds or cfg.experiment.rounds,
                    "use_sim_time": use_sim_time,
                }
            ],
            arguments=log,
            additional_env=env,
            # its final plots (matplotlib) outlast launch's 5 s before SIGTERM on a busy host
            sigterm_timeout=str(MONITOR_EXIT_S),
        )
        actions.append(monitor)
    return [
        *_discovery_server(discovery.server_env),
        *_staggered(robots, drivers, delay),
        *actions,
        *_shutdown_when_done(robots, monitor),
    ]


def _discovery_server(env: dict[str, str] | None) -> list:
    """With discovery:=server, the discovery server (gossip_learning.nodes.dds_server), started
    before the robots; the launch stops it (SIGINT) when it shuts down."""
    if env is None:
        return []
    return [
        ExecuteProcess(
            cmd=[sys.executable, "-m", "gossip_learning.nodes.dds_server"],
            name="discovery_server",
            output="screen",
            additional_env=env,
        )
    ]


def _staggered(robots: list[Node], drivers: list[Node], delay: float) -> list:
    """Robot processes (each with its driver) started a little apart, not all in one instant:
    60 Python processes importing at once on two cores each took far longer than its own
    start-up (launch_support.stagger_s)."""
    step = stagger_s(len(robots), 2 if drivers else 1, delay)
    out: list = []
    for i, robot in enumerate(robots):
        group = [robot, *drivers[i : i + 1]]
        out.extend(group if i == 0 or step <= 0 else [TimerAction(period=i * step, actions=group)])
    return out


def _remove_at_shutdown(folder: str) -> RegisterEventHandler:
    """Remove the launch's temporary ``folder`` when the launch shuts down (Ctrl-C too)."""

    def remove(*_: object) -> list:
        shutil.rmtree(folder, ignore_errors=True)
        return []

    return RegisterEventHandler(OnShutdown(on_shutdown=remove))


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
    bridge_dir = tempfile.mkdtemp(prefix="gossip_learning_bridge_")
    bridge_yaml = write_bridge_config(names, Path(bridge_dir) / "bridge.yaml")
    actions.append(_remove_at_shutdown(bridge_dir))
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
    signal_children_without_reaping()  # a node's exit 0 stays 0 on Ctrl-C (Python < 3.13)
    declared = [
        DeclareLaunchArgument(
            name,
            default_value=(
                PathJoinSubstitution([FindPackageShare(PACKAGE), *default])
                if isinstance(default, tuple)
                else default
            ),
            description=description,
            choices=(
                list(SIM_MODES)
                if name == "sim"
                else list(DISCOVERY_MODES)
                if name == "discovery"
                else None
            ),
        )
        for name, (default, description) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_expand)])
