"""Launch ONE robot of a fleet: what each computer of a physical fleet runs (docs/fleet.md).

    ros2 launch gossip_learning robot.launch.py robot_id:=3 num_robots:=12 \
        config:=/etc/gossip_learning/fleet.yaml data_dir:=/var/lib/gossip_learning \
        fleet_key_file:=/etc/gossip_learning/fleet.key epoch:=1767225600 sim:=real \
        odom_topic:=/robot_3/odometry/filtered

``sim:=real`` runs ``robot_node`` on the robot's own odometry (``odom_topic``); ``sim:=kinematic``
runs ``swarm_node`` hosting this one robot with the engine's motion inside (the rehearsal on one
machine: ``gossip-learning fleet --launch`` starts one of these per network namespace). The fleet
key is read from ``fleet_key_file`` into a private copy of the config (never a parameter or an
argument of the node). With ``robot_key_file`` and ``keyring_file`` the robot signs its frames
with its own key and verifies every frame against the keyring; the node gets the two paths as
parameters, never a key. The launch ends when the robot has run its rounds; its exit status is the
robot's (a robot that fails makes the launch fail).
"""

from __future__ import annotations

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gossip_learning.fleet.keys import config_with_key
from gossip_learning.nodes.child_signals import signal_children_without_reaping
from gossip_learning.nodes.launch_support import (
    check_arguments,
    parse_bool,
    parse_number,
    robot_name,
)
from gossip_learning.nodes.pacing import parse_phase_scale

PACKAGE = "gossip_learning"

ARGUMENTS: dict[str, tuple[str, str]] = {
    "robot_id": ("0", "This robot's id, 0..num_robots-1."),
    "num_robots": ("0", "Fleet size; 0 takes swarm.num_robots from the config."),
    "config": ("", "Experiment YAML shared by the whole fleet (empty: the built-in defaults)."),
    "data_dir": ("", "Folder with this robot's robot_<id>.npz (`gossip-learning partition`)."),
    "fleet_key_file": ("", "File (mode 600) holding the fleet key; empty: no authentication."),
    "robot_key_file": ("", "This robot's private key file (mode 600): per-robot signatures."),
    "keyring_file": ("", "The fleet's keyring.json (with robot_key_file; docs/fleet.md)."),
    "swarm_namespace": ("swarm", "Namespace of the fleet's shared topics."),
    "seed": ("0", "Experiment seed shared by the fleet."),
    "epoch": ("0", "Wall-clock time (s since 1970) at which round 1 starts, the same fleet-wide."),
    "rounds": ("0", "Rounds to run; 0 takes experiment.rounds."),
    "sim": ("real", "real: robot_node on odom_topic; kinematic: swarm_node with its own motion."),
    "odom_topic": ("odom", "sim:=real: the robot's odometry (nav_msgs/Odometry, shared frame)."),
    "motion": ("round", "sim:=kinematic: time or round (the engine's moves, see docs/ros.md)."),
    "range_filter": ("true", "sim:=kinematic: filter frames by the channel model at the robot."),
    "publish_model": ("true", "Publish the model after every round (for a monitor)."),
    "clock_offset": ("0", "sim:=kinematic: seconds added to this robot's clock (rehearsal)."),
    "clock_drift_ppm": ("0", "sim:=kinematic: clock drift in parts per million (rehearsal)."),
    "log_level": ("info", "Log level of the robot's node."),
    "phase_scale": (
        "1",
        "Factor on every timing.*_phase_s and the clock tick, the same on every robot of the "
        "fleet (a number > 0; one robot per computer needs 1).",
    ),
}


def _arg(context: LaunchContext, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _expand(context: LaunchContext) -> list:
    check_arguments(context.launch_configurations, ARGUMENTS)
    rid = parse_number("robot_id", _arg(context, "robot_id"), int, 0)
    sim = _arg(context, "sim")
    if sim not in ("real", "kinematic"):
        raise ValueError(f"launch argument sim:={sim!r} must be real or kinematic")
    config = _arg(context, "config")
    key_file = _arg(context, "fleet_key_file")
    if key_file:
        config = str(config_with_key(config, key_file))
    common = {
        "num_robots": parse_number("num_robots", _arg(context, "num_robots"), int, 0),
        "config_file": config,
        "seed": parse_number("seed", _arg(context, "seed"), int, 0),
        "epoch": parse_number("epoch", _arg(context, "epoch"), float, 0.0),
        "rounds": parse_number("rounds", _arg(context, "rounds"), int, 0),
        "data_dir": _arg(context, "data_dir"),
        "swarm_namespace": _arg(context, "swarm_namespace"),
        "publish_model": parse_bool("publish_model", _arg(context, "publish_model")),
        "robot_key_file": _arg(context, "robot_key_file"),  # paths: the keys stay in the files
        "keyring_file": _arg(context, "keyring_file"),
        "phase_scale": parse_phase_scale(_arg(context, "phase_scale"), 1),
    }
    log = ["--ros-args", "--log-level", _arg(context, "log_level")]
    if sim == "kinematic":
        motion = _arg(context, "motion")
        if motion not in ("time", "round"):
            raise ValueError(f"launch argument motion:={motion!r} must be time or round")
        robot = Node(
            package=PACKAGE,
            executable="swarm_node",
            output="screen",
            parameters=[
                {
                    **common,
                    "robot_ids": [rid],
                    "motion": motion,
                    "range_filter": parse_bool("range_filter", _arg(context, "range_filter")),
                    "clock_offset": parse_number(
                        "clock_offset", _arg(context, "clock_offset"), float
                    ),
                    "clock_drift_ppm": parse_number(
                        "clock_drift_ppm", _arg(context, "clock_drift_ppm"), float
                    ),
                }
            ],
            arguments=log,
        )
    else:
        robot = Node(
            package=PACKAGE,
            executable="robot_node",
            name="robot",
            namespace=robot_name(rid),
            output="screen",
            parameters=[{**common, "robot_id": rid}],
            remappings=[("odom", _arg(context, "odom_topic"))],
            arguments=log,
        )

    def exited(event: ProcessExited, _: LaunchContext) -> list:
        if event.returncode:  # the launch's own status then says the robot failed
            raise RuntimeError(f"robot {rid} exited with status {event.returncode}")
        return [EmitEvent(event=Shutdown(reason=f"robot {rid} finished its rounds"))]

    return [robot, RegisterEventHandler(OnProcessExit(target_action=robot, on_exit=exited))]


def generate_launch_description() -> LaunchDescription:
    signal_children_without_reaping()  # a node's exit 0 stays 0 on Ctrl-C (Python < 3.13)
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, (default, description) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_expand)])
