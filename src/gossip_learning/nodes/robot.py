"""``robot_node``: one robot running the gossip-learning agent on ROS 2.

Subscribes to its odometry (``odom``, remappable: the mobility driver, Gazebo's bridge or a real
robot), talks to the swarm through :class:`~gossip_learning.transports.ros.RosTransport` and runs
the round's phases on ROS time with :class:`~gossip_learning.schedule.RoundClock`, so
``use_sim_time`` with Gazebo's ``/clock`` works. Message handling, odometry and the phase timer
share one mutually exclusive callback group per robot; local training runs in a worker thread,
so a training step never blocks message handling. After each round it publishes a JSON status on
``/<swarm_namespace>/status`` and its model on ``/<swarm_namespace>/models`` for the monitor,
and one short line (:func:`summary_line`: accuracy and transport counters, under the 128
characters ``ros2 topic echo`` shows by default) on ``/<swarm_namespace>/summary`` for people.

It is a lifecycle (managed) node. *configure* reads its data (only its own partition when
``data_dir`` names the files of ``gossip-learning partition``), builds the agent and creates its
publishers and subscriptions; *activate* starts the round clock's timer; *deactivate* stops it;
*cleanup* drops the agent and its topics. With ``autostart`` (the default) it does configure and
activate by itself. Robots share round numbers through ``epoch``: one that is activated late, or
again after a pause, joins at the start of the next round and stops after the fleet's last one.
Torch is imported only for ``learning.trainer: torch``; nothing else heavy is on this path.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from std_msgs.msg import String, UInt8MultiArray

from gossip_learning.auth import session_counter_start
from gossip_learning.config import Config, load_config
from gossip_learning.driver import RoundDriver
from gossip_learning.identity import node_overrides
from gossip_learning.learner import evaluate
from gossip_learning.nodes.base import ManagedNode, run_node
from gossip_learning.nodes.common import (
    DECENTRALISED_METHODS,
    check_namespace,
    require,
    robot_parts,
)
from gossip_learning.nodes.frames import FRAME_PARAMETERS, OdomFrame
from gossip_learning.nodes.health import (
    EXIT_UNHEALTHY,
    HEALTH_PARAMETERS,
    Health,
    clock_message,
    late_message,
    odom_message,
    peers_message,
    round_line,
)
from gossip_learning.nodes.pacing import scaled, scaled_tick
from gossip_learning.nodes.typed import summary_publisher
from gossip_learning.pose_check import PoseCheck
from gossip_learning.protocol import RobotAgent
from gossip_learning.protocol.clock_sync import PhaseAnchor
from gossip_learning.robot_data import channel_for, fleet_auth, trainer_for
from gossip_learning.schedule import Phase, PhaseKind, RoundClock, build_schedule
from gossip_learning.training import LocalTrainer, ThreadedTrainer
from gossip_learning.transports.ros import RosTransport, reliable_qos
from gossip_learning.wire import Kind, Layer, Message, encode

#: name -> (default, description). Everything is read once at start-up.
PARAMETERS: dict[str, tuple[Any, str]] = {
    "robot_id": (-1, "This robot's id, 0..num_robots-1 (required)."),
    "num_robots": (0, "Swarm size; 0 takes swarm.num_robots from the config file."),
    "config_file": ("", "Experiment YAML (engine format); empty uses the built-in defaults."),
    "method": ("bilayer", "Protocol: bilayer, flat (gossip without clusters) or local."),
    "seed": (0, "Experiment seed (data partition, initial head, protocol randomness)."),
    "data_dir": (
        "",
        "Folder written by `gossip-learning partition CONFIG --out DIR --seed SEED`: the robot "
        "loads only its own robot_<id>.npz from it; empty: cut its slice from the whole dataset.",
    ),
    "comm_range": (0.0, "Radio range in metres; 0 takes channel.comm_range from the config."),
    "robot_key_file": (
        "",
        "File (mode 600) with this robot's Ed25519 private key, or a folder of robot_<id>.key "
        "(`gossip-learning keys robots`); with keyring_file: frames signed per robot.",
    ),
    "keyring_file": ("", "The fleet's keyring.json (robot id -> public key); see robot_key_file."),
    "rounds": (0, "Rounds to take part in, then stop; 0 takes experiment.rounds."),
    "swarm_namespace": ("swarm", "Namespace of the shared swarm topics."),
    "epoch": (
        0.0,
        "ROS time (s) at which round 1 starts; robots sharing it agree on round numbers "
        "(0: rounds counted from the clock's zero).",
    ),
    "tick_period": (0.05, "Seconds between checks of the round clock (0.001..1)."),
    "phase_scale": (
        1.0,
        "Factor on every timing.*_phase_s and on tick_period (nodes/pacing.py); the same on "
        "every robot of a swarm. swarm.launch.py sets it for the robot processes of one host.",
    ),
    "evaluate": (True, "Evaluate the model on the test set after every round."),
    "publish_model": (True, "Publish the model after every round for the monitor."),
    "coprocessor_port": (
        "",
        "Serial device of this robot's RP2040 coprocessor (e.g. /dev/ttyACM0, docs/rp2040.md): "
        "the head trains there; empty: train on this computer.",
    ),
    "coprocessor_baud": (921_600, "Baud rate of the coprocessor's UART (the firmware's)."),
    "coprocessor_merge": (True, "With a coprocessor: also merge (cumulative FedAvg) on it."),
    "coprocessor_mtu": (512, "Wire frame size on the coprocessor link (151..2047 at 160->10)."),
    "coprocessor_timeout": (5.0, "Seconds to wait for each coprocessor reply (0.1..600)."),
    **FRAME_PARAMETERS,
    **HEALTH_PARAMETERS,
}


#: Seconds between health checks (odometry, /clock) of an active robot, on the steady clock.
HEALTH_PERIOD_S = 0.5

#: ``ros2 topic echo`` cuts strings longer than this unless given ``--full-length``.
ECHO_LIMIT = 128


def summary_line(status: dict[str, Any]) -> str:
    """One robot's round in a line short enough for the default ``ros2 topic echo``: id, round,
    role, cluster, accuracy, loss and the transport counters (delivered, dropped, rejected,
    DDS-lost, incompatible-QoS events)."""
    t = status.get("transport", {})
    acc, loss = status.get("acc", math.nan), status.get("loss", math.nan)
    return (
        f"r{status['id']} round {status['round']} {status.get('role', '?')} "
        f"c{status.get('cluster', -1)} acc {acc:.3f} loss {loss:.3f} | sent {t.get('sent', 0)} "
        f"heard {t.get('delivered', 0)} drop {t.get('dropped', 0)} rej {t.get('rejected', 0)} "
        f"lost {t.get('lost', 0)} qos {t.get('qos_incompatible', 0)}"
    )[:ECHO_LIMIT]


class RobotNode(ManagedNode):
    """One robot: agent + rclpy transport + phase timer + training worker."""

    def __init__(
        self,
        node_name: str = "robot",
        *,
        train_pool: ThreadPoolExecutor | None = None,
        **node_options: Any,
    ) -> None:
        """``node_options``: namespace, context, parameter_overrides (see :class:`ManagedNode`).
        Checks the parameters, then configures and activates itself if ``autostart`` is set."""
        super().__init__(node_name, PARAMETERS, **node_options)
        p = self.params
        self.cfg = self._config(p)
        self.robot_id = int(p["robot_id"])
        n = self.cfg.swarm.num_robots
        require("robot_id", self.robot_id, self.robot_id < n, f"in 0..{n - 1} (num_robots={n})")
        methods = ", ".join(DECENTRALISED_METHODS)
        require("method", p["method"], p["method"] in DECENTRALISED_METHODS, f"one of {methods}")
        self.rounds = int(p["rounds"]) or self.cfg.experiment.rounds
        self.namespace_ = check_namespace(str(p["swarm_namespace"]))
        self.tick = scaled_tick(
            require("tick_period", p["tick_period"], 0.001 <= p["tick_period"] <= 1.0, "0.001..1"),
            p["phase_scale"],
        )
        self.evaluate_ = bool(p["evaluate"])
        self.publish_model = bool(p["publish_model"])
        self.seed = int(p["seed"])
        self.epoch = float(p["epoch"])
        self.frame = OdomFrame(
            str(p["swarm_frame"]), str(p["odom_frame"]), [float(v) for v in p["odom_offset"]]
        )
        self.health = Health(
            float(p["warn_after_s"]), float(p["fail_after_s"]),
            self.get_logger().warning, self.get_logger().error, self.get_logger().info,
        )  # fmt: skip
        self.exit_code = 0  # EXIT_UNHEALTHY once the robot gave up (health)
        self._heard = 0  # frames heard (delivered, dropped, rejected) at the last round's end
        self._lonely_rounds = 0
        self._late_before = 0
        self._tf: Any = None
        self._health_timer: Any = None
        self.group = MutuallyExclusiveCallbackGroup()
        self._own_pool = train_pool is None
        self._pool = train_pool or ThreadPoolExecutor(1, thread_name_prefix=f"train{self.robot_id}")
        self.coprocessor: Any = None
        self.completed = 0
        self.has_pose = False
        self.history: list[dict[str, Any]] = []
        self.last_round: int | None = self.rounds if self.epoch > 0 else None
        self._joining = True
        self._subs: list[Any] = []
        self._pubs: list[Any] = []
        self.autostart()

    def configure(self) -> None:
        """Data, agent, transport, publishers and the odometry subscription."""
        p = self.params
        self.parts, self.settings = robot_parts(
            self.cfg, str(p["method"]), self.seed, self.robot_id, str(p["data_dir"])
        )
        parts = self.parts
        ch = self.cfg.channel
        rng = np.random.default_rng([self.seed, self.robot_id, 0x5A5])
        schedule = build_schedule(self.settings.method, self.cfg.clustering.passes, self.cfg.gossip)
        self.clock = RoundClock(schedule, self.cfg.timing, start=self.epoch)
        self.transport = RosTransport(
            self, self.robot_id, channel_for(self.cfg), self.namespace_, rng, self.group,
            auth=fleet_auth(self.cfg, session_counter_start(), [self.robot_id]),  # restart-safe
            num_robots=self.cfg.swarm.num_robots,
            peer_timeout_s=3 * self.clock.period,  # forget a sender silent for three rounds
            pose_check=PoseCheck(self.cfg.defence.max_speed, self.cfg.defence.pose_slack),
            anchor=PhaseAnchor(self.epoch, self.clock.period, self.clock.offsets,
                               self.cfg.timing.clock_sync_max_s),
        )  # fmt: skip
        trainer = None
        accumulator = None
        trains = self.cfg.learning.epochs > 0 and len(parts.y_train) > 0
        if str(p["coprocessor_port"]):
            trainer, accumulator = self._coprocessor(p, trains)
        elif trains:
            engine = trainer_for(self.cfg, parts.spec)  # torch only for learning.trainer: torch
            local = LocalTrainer(engine, parts.x_train, parts.y_train, self.seed, self.robot_id)
            trainer = ThreadedTrainer(local, self._pool)
        self.agent = RobotAgent(
            self.robot_id, self.settings, self.transport, parts.params, parts.samples,
            parts.label_dist, parts.agent_seed, trainer, accumulator,
        )  # fmt: skip
        # No delivery hook: the executor delivers between clock ticks.
        self.driver = RoundDriver([self.agent], schedule, after={PhaseKind.END: self._end_of_round})
        self._odom_sub = self.create_subscription(
            Odometry, "odom", self._on_odom, 10, callback_group=self.group
        )
        self._subs.append(self._odom_sub)
        if bool(p["odom_offset_from_tf"]):
            self._tf = tf_offset(self)
        self._status_pub = self.create_lifecycle_publisher(
            String, f"/{self.namespace_}/status", reliable_qos()
        )
        self._model_pub = self.create_lifecycle_publisher(
            UInt8MultiArray, f"/{self.namespace_}/models", reliable_qos()
        )
        self._summary_pub = self.create_lifecycle_publisher(
            String, f"/{self.namespace_}/summary", reliable_qos()
        )
        self._pubs += [self._status_pub, self._model_pub, self._summary_pub]
        self._typed = summary_publisher(self.create_lifecycle_publisher, self.namespace_)
        if self._typed is not None:
            self._pubs.append(self._typed.pub)
        self.get_logger().info(
            f"robot {self.robot_id}/{self.cfg.swarm.num_robots}: {self.settings.method}, "
            f"{parts.samples} samples, range {ch.comm_range:g} m, round {self.clock.period:.2f} s"
        )

    def activate(self) -> None:
        """Start the clock's timer; the robot joins at the start of the next round."""
        self._joining = True
        self.health.reset()
        self._timer = self.create_timer(self.tick, self._tick, callback_group=self.group)
        # on the steady clock: with use_sim_time and no /clock, ROS-time timers never fire
        self._health_timer = self.create_timer(
            HEALTH_PERIOD_S, self._healthy, self.group, Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.get_logger().info(f"robot {self.robot_id}: active, joins at the next round start")

    def deactivate(self) -> None:
        """Stop the round clock's and the health check's timers."""
        super().deactivate()
        if self._health_timer is not None:
            self.destroy_timer(self._health_timer)
            self._health_timer = None

    def cleanup(self) -> None:
        """Drop the agent, its topics and publishers (back to unconfigured)."""
        self.deactivate()
        transport = getattr(self, "transport", None)
        if transport is not None:
            transport.close()
            del self.transport
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs:
            self.destroy_lifecycle_publisher(pub)
        self._subs, self._pubs = [], []
        if self.coprocessor is not None:
            self.coprocessor.link.close()
            self.coprocessor = None
        for name in ("agent", "driver", "parts"):
            self.__dict__.pop(name, None)
        self.has_pose = False

    # ----------------------------------------------------------------- set-up
    def _coprocessor(self, p: dict[str, Any], trains: bool) -> tuple[Any, Any]:
        """Trainer and accumulator on the RP2040 at ``coprocessor_port`` (docs/rp2040.md)."""
        from gossip_learning.coprocessor import (
            Coprocessor,
            CoprocessorAccumulator,
            CoprocessorTrainer,
        )
        from gossip_learning.coprocessor.links import open_serial
        from gossip_learning.coprocessor.trainer import CoprocessorFallback, mtu_range

        lc, spec, parts = self.cfg.learning, self.parts.spec, self.parts
        low, high = mtu_range(spec.num_params())
        mtu = int(require("coprocessor_mtu", p["coprocessor_mtu"],
                          low <= p["coprocessor_mtu"] <= high, f"{low}..{high}"))  # fmt: skip
        timeout = require("coprocessor_timeout", p["coprocessor_timeout"],
                          0.1 <= p["coprocessor_timeout"] <= 600, "0.1..600 s")  # fmt: skip
        link = open_serial(str(p["coprocessor_port"]), int(p["coprocessor_baud"]))
        client = Coprocessor(link, timeout=float(timeout))
        self.coprocessor = client

        def report(text: str) -> None:  # a lost / rebooted chip: the round goes on without it
            self.get_logger().warning(f"robot {self.robot_id}: {text}")

        trainer = None
        if trains:
            remote = CoprocessorTrainer(
                client, spec, parts.x_train, parts.y_train, self.seed, self.robot_id,
                lr=lc.lr, weight_decay=lc.weight_decay, epochs=lc.epochs,
                batch_size=lc.batch_size, optimizer=lc.optimizer, mtu=mtu,
            )  # fmt: skip
            engine = trainer_for(self.cfg, spec)
            host = LocalTrainer(engine, parts.x_train, parts.y_train, self.seed, self.robot_id)
            trainer = ThreadedTrainer(CoprocessorFallback(remote, host, report), self._pool)
        else:
            client.configure(
                spec.in_dim, spec.num_classes, lc.optimizer, lc.lr, lc.weight_decay,
                spec.version(), self.robot_id,
            )  # fmt: skip
        acc = None
        if bool(p["coprocessor_merge"]):
            d = self.cfg.defence
            acc = CoprocessorAccumulator(
                client, spec, self.robot_id, mtu, max_rms=d.max_rms, clip_ratio=d.clip_ratio,
                report=report,
            )  # fmt: skip
        return trainer, acc

    def _config(self, p: dict[str, Any]) -> Config:
        require("robot_id", p["robot_id"], p["robot_id"] >= 0, "an integer >= 0")
        require("num_robots", p["num_robots"], p["num_robots"] >= 0, ">= 0 (0 = from config)")
        require("seed", p["seed"], p["seed"] >= 0, ">= 0")
        require("rounds", p["rounds"], p["rounds"] >= 0, ">= 0 (0 = from config)")
        require(
            "comm_range",
            p["comm_range"],
            math.isfinite(p["comm_range"]) and p["comm_range"] >= 0,
            "a finite number of metres >= 0 (0 = from config)",
        )
        overrides = []
        if p["num_robots"]:
            overrides.append(f"swarm.num_robots={int(p['num_robots'])}")
        if p["comm_range"]:
            overrides.append(f"channel.comm_range={float(p['comm_range'])}")
        overrides += node_overrides(p["robot_key_file"], p["keyring_file"])
        return scaled(load_config(p["config_file"] or None, overrides), p["phase_scale"])

    # -------------------------------------------------------------- callbacks
    def _on_odom(self, msg: Odometry) -> None:
        pos = msg.pose.pose.position
        if self._tf is not None:
            self._tf(self.frame)
        xy = self.frame.to_swarm(msg.header.frame_id, pos.x, pos.y)
        if xy is None:
            self.get_logger().warning(
                self.frame.mismatch(self.robot_id, msg.header.frame_id),
                throttle_duration_sec=self.health.warn_after_s,
            )
            return
        self.agent.set_position(*xy)
        self.transport.set_position(*xy)
        self.has_pose = True

    def _healthy(self) -> bool:
        """Check the clock (with use_sim_time) and the odometry; False once given up."""
        if self.done:
            return False
        now = time.monotonic()
        sim = bool(self.get_parameter("use_sim_time").value)
        who = f"robot {self.robot_id}"
        if not self.health.check(
            "clock", sim and self.transport.now() == 0.0, now, lambda age: clock_message(who, age)
        ):
            topic = self._odom_sub.topic_name
            self.health.check(
                "odometry", not self.has_pose, now,
                lambda age: odom_message(self.robot_id, topic, age),
            )  # fmt: skip
        if self.health.failed is not None:
            self.exit_code = EXIT_UNHEALTHY
            self._finish(f"gave up: {self.health.failed}")
            return False
        return True

    def _tick(self) -> None:
        if self.done or not self.has_pose:
            return
        rnd, slot = self.clock.locate(self.transport.now())
        if rnd == 0:
            return  # before the epoch
        if self._joining:
            if slot != 0:
                return  # join at the start of a round
            if self.last_round is None:  # no shared epoch: run `rounds` rounds from here
                self.last_round = rnd + self.rounds - 1
            if rnd > self.last_round:
                self._finish(f"joined after the fleet's last round ({self.last_round})")
                return
            self._joining = False
            if self.completed == 0:
                self._publish_status(self.agent.status())  # round 0: the state it starts from
            self.driver.begin(rnd)
        assert self.last_round is not None
        self.driver.last_round = self.last_round  # a robot that falls behind stops too
        self.driver.advance_to(rnd, slot)
        if self.driver.round_done and not self.done:
            # Enter the next round now, during END, so the first beacons of the next round (sent
            # the moment a faster robot's clock turns) are not stale here.
            self.driver.begin(self.driver.round + 1)

    def _finish(self, why: str) -> None:
        self.done = True
        self.get_logger().info(f"robot {self.robot_id}: {why}")

    @property
    def round(self) -> int:
        """The round the robot is in (0 before its first)."""
        return self.driver.round

    @property
    def late_phases(self) -> int:
        """Phases run after their time slot had passed (the robot fell behind its clock)."""
        return self.driver.late_phases

    def _publish_status(self, status: dict[str, Any]) -> None:
        status.update(
            time=self.transport.now(),
            transport=self.transport.counters(),
            late_phases=self.late_phases,
            method=self.settings.method,
            seed=self.seed,
            publishes_model=self.publish_model,  # the monitor waits for the model too
            frame=self.frame.swarm_frame,
            phase_scale=float(self.params["phase_scale"]),
            round_period_s=self.clock.period,
        )
        self._status_pub.publish(String(data=json.dumps(status, allow_nan=True)))
        self._summary_pub.publish(String(data=summary_line(status)))
        if self._typed is not None:
            self._typed(status)

    def _end_of_round(self, _: Phase) -> None:
        status = self.agent.status()
        if self.evaluate_:
            acc, loss = evaluate(
                self.parts.spec, self.agent.model, self.parts.x_test, self.parts.y_test
            )
            status.update(acc=float(acc[0]), loss=float(loss[0]))
        if self.publish_model:  # before the status: the monitor closes a round on statuses
            msg = Message(
                Kind.MODEL, self.robot_id, round=self.round, layer=Layer.NONE,
                cluster=self.agent.state.cluster, samples=self.agent.num_samples,
                model_version=self.settings.model_version, model=self.agent.model,
            )  # fmt: skip
            out = UInt8MultiArray()
            out.data = encode(msg)
            self._model_pub.publish(out)
        self._publish_status(status)
        self.history.append(status)
        self.completed += 1
        self._after_round(status)
        if self.last_round is not None and self.round >= self.last_round:
            self._finish(f"finished round {self.round} ({self.completed} rounds run)")

    def _after_round(self, status: dict[str, Any]) -> None:
        """The round's info line and its health: late phases, no other robot heard."""
        log, who = self.get_logger(), f"robot {self.robot_id}"
        if self.params["log_rounds"]:
            log.info(round_line(status))
        late = self.late_phases - self._late_before
        self._late_before = self.late_phases
        if late:
            log.warning(late_message(who, self.round, late))
        if self.cfg.swarm.num_robots < 2:
            return
        t = self.transport.stats
        heard = t.delivered + t.dropped + t.rejected
        self._lonely_rounds = self._lonely_rounds + 1 if heard == self._heard else 0
        self._heard = heard
        self.health.check(
            "peers", self._lonely_rounds > 0, time.monotonic(),
            lambda age: peers_message(who, self._lonely_rounds, age), warn_after_s=0.0,
        )  # fmt: skip
        if self.health.failed is not None and not self.done:
            self.exit_code = EXIT_UNHEALTHY
            self._finish(f"gave up: {self.health.failed}")

    def destroy_node(self) -> None:
        """Release the agent and its topics, stop the training worker (if this node owns it),
        then destroy the node."""
        self.cleanup()
        if self._own_pool:
            self._pool.shutdown(wait=True, cancel_futures=True)
        super().destroy_node()


def tf_offset(node: Any) -> Any:
    """A callable that sets an :class:`OdomFrame`'s offset from TF (``odom_frame`` in
    ``swarm_frame``) once TF has it. Needs tf2_ros (a ROS install); untested in CI."""
    try:
        from rclpy.time import Time
        from tf2_ros import Buffer, TransformException, TransformListener
    except ImportError as exc:
        raise ValueError(
            "parameter 'odom_offset_from_tf': true needs tf2_ros (apt install ros-jazzy-tf2-ros); "
            f"it cannot be imported here ({exc}); give odom_offset instead"
        ) from None
    buffer = Buffer()
    listener = TransformListener(buffer, node)
    found = [False]

    def update(frame: OdomFrame) -> None:
        if found[0] or not frame.odom_frame:
            return
        try:
            tf = buffer.lookup_transform(frame.swarm_frame, frame.odom_frame, Time())
        except TransformException:
            return
        t, q = tf.transform.translation, tf.transform.rotation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        frame.set_offset(t.x, t.y, yaw)
        found[0] = True
        node.get_logger().info(f"odom_offset from TF: [{t.x:.2f}, {t.y:.2f}, {yaw:.3f}]")

    update.listener = listener  # type: ignore[attr-defined]  # kept alive with the callable
    return update


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run gossip_learning robot_node``."""
    # single-threaded: its callbacks share one mutually exclusive group anyway, and a multi-threaded
    # executor left InvalidHandle exceptions of destroyed subscriptions in worker tasks at exit
    # ("The following exception was never retrieved: cannot use Destroyable ...")
    return run_node("robot_node", RobotNode, args, multi_threaded=False)
