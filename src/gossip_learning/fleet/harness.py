"""``gossip-learning fleet``: a rehearsal of a physical fleet on one machine.

Every robot is a separate host: its own process (``swarm_node`` hosting one robot, or the real
``ros2 launch gossip_learning robot.launch.py`` with ``--launch``) in its own network namespace
with its own address on a virtual bridge. DDS finds peers as on a LAN (multicast discovery,
``ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET``, UDPv4 only: no shared-memory or loopback shortcut, no
discovery profile). The radio is emulated by the network, not by the robots: the harness moves
the robots as they move themselves (the engine's model, one step per round) and, once per round
(once per phase with Gilbert-Elliott bursts), rewrites the bridge's nftables verdict map so that
out-of-range pairs cannot exchange a frame and in-range pairs lose the channel model's share of
them; the robots' own range filter is off. Each robot's clock can be offset and drift.

Everything lives in network, mount and PID namespaces the harness makes for itself (see
:mod:`gossip_learning.fleet.netns`): nothing it sends leaves the machine, every address is its
own, and however it ends (exit, Ctrl-C, a crash, SIGKILL of the outer process) the kernel removes
every process, namespace, veth, qdisc and rule it made.

The result is ``fleet.json`` in the output folder: per round the robots that reported, their mean
accuracy, the bytes the package counted (``bytes_sent``) and the bytes that crossed the veths;
discovery time; loss applied against loss seen; every process's exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gossip_learning.config import Config, dump_config, load_config
from gossip_learning.errors import ConfigError

#: Environment of every robot and of the observer: default DDS discovery on the bridge.
FLEET_DDS_ENV = {
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
    "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",  # separate computers share no memory segment
    "PYTHONUNBUFFERED": "1",
}
DROPPED_ENV = (
    "ROS_STATIC_PEERS", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE",
    "ROS_LOCALHOST_ONLY", "RMW_FASTRTPS_USE_QOS_FROM_XML",
)  # fmt: skip
#: Fast DDS's UDP socket buffers (bytes; ``--socket-buffer``). The kernel's default (208 KiB)
#: overflowed at 60 hosts sharing 2 cores: a third of the datagrams were dropped before the
#: robots' receive threads ran, and discovery never completed. A robot computer runs one robot.
SOCKET_BUFFER = 4 * 1024 * 1024
GRACE_S = 40.0  # after the last round: linger, teardown, the last reports
MAX_HOSTS = 250


@dataclass
class FleetOptions:
    config: str
    robots: int
    rounds: int
    out: str
    seed: int = 0
    overrides: list[str] = field(default_factory=list)
    mtu: int = 1500
    rate: str = ""
    skew_ms: float = 0.0
    drift_ppm: float = 0.0
    launch: bool = False
    start_delay: float = -1.0  # < 0: auto
    domain: int = 0
    robot_filter: bool = False
    engine: bool = False
    robot_keys: str = ""  # folder of `gossip-learning keys robots`: robot i gets its own key
    socket_buffer: int = SOCKET_BUFFER


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gossip-learning fleet",
        description="Rehearse a fleet: every robot a host in its own network namespace, DDS "
        "over a bridge whose nftables rules play the radio (needs root).",
    )
    p.add_argument("config", help="YAML config (the one every robot runs)")
    p.add_argument("--robots", type=int, required=True, help="number of robot hosts")
    p.add_argument("--rounds", type=int, default=5, help="rounds to run (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="results/fleet", help="folder for fleet.json and logs")
    p.add_argument("--mtu", type=int, default=1500, help="MTU of the bridge and veths")
    p.add_argument("--rate", default="", help="egress rate of each robot (tc tbf, e.g. 2mbit)")
    p.add_argument(
        "--skew-ms",
        type=float,
        default=0.0,
        help="clock offsets spread evenly over [-skew/2, +skew/2] ms (max pairwise = skew)",
    )
    p.add_argument("--drift-ppm", type=float, default=0.0, help="clock drift, +-ppm alternately")
    p.add_argument(
        "--launch",
        action="store_true",
        help="start each robot through `ros2 launch gossip_learning robot.launch.py`",
    )
    p.add_argument(
        "--start-delay", type=float, default=-1.0, help="seconds to round 1 (default: auto)"
    )
    p.add_argument("--domain", type=int, default=0, help="ROS_DOMAIN_ID inside the fleet")
    p.add_argument(
        "--robot-filter",
        action="store_true",
        help="keep the robots' own range filter as well (default: the network alone)",
    )
    p.add_argument(
        "--engine", action="store_true", help="also run the in-process engine for comparison"
    )
    p.add_argument(
        "--robot-keys", default="", metavar="DIR",
        help="per-robot keys (`gossip-learning keys robots DIR`): robot i is given only "
        "DIR/robot_<i>.key and DIR/keyring.json",
    )  # fmt: skip
    p.add_argument(
        "--socket-buffer",
        type=int,
        default=SOCKET_BUFFER,
        help=f"Fast DDS UDP socket buffer size in bytes (default {SOCKET_BUFFER}; 0: the OS's)",
    )
    return p


def check_options(o: FleetOptions) -> Config:
    """Every option and the config, checked before any work; errors name what is wrong."""
    if not 2 <= o.robots <= MAX_HOSTS:
        raise ConfigError("--robots", f"must be in 2..{MAX_HOSTS}, got {o.robots}")
    if o.rounds < 1:
        raise ConfigError("--rounds", f"must be >= 1, got {o.rounds}")
    if not 576 <= o.mtu <= 9000:
        raise ConfigError("--mtu", f"must be in 576..9000, got {o.mtu}")
    if o.rate and not (o.rate[0].isdigit() and o.rate.rstrip("bitkmgKMGBps").replace(".", "")):
        raise ConfigError("--rate", f"expected a tc rate such as 2mbit, got {o.rate!r}")
    if o.skew_ms < 0 or not math.isfinite(o.skew_ms):
        raise ConfigError("--skew-ms", f"must be >= 0, got {o.skew_ms}")
    if not 0 <= o.socket_buffer <= 1 << 30:
        raise ConfigError(
            "--socket-buffer", f"must be in 0..{1 << 30} bytes, got {o.socket_buffer}"
        )
    if not 0 <= o.domain <= 101:
        raise ConfigError("--domain", f"must be in 0..101, got {o.domain}")
    cfg = load_config(
        o.config, [*o.overrides, f"swarm.num_robots={o.robots}", f"experiment.rounds={o.rounds}"]
    )
    if o.robot_keys:  # every robot's own key, in the keyring, before any work
        from gossip_learning.keyring import load_keyring, signing_keys

        for i in range(o.robots):
            key, ring = _key_files(o, i)
            try:
                signing_keys(f"file:{key}", load_keyring(f"file:{ring}", cfg.defence.fleet_id), [i])
            except ConfigError as exc:
                raise ConfigError("--robot-keys", f"robot {i}: {exc}") from None
    return cfg


def _key_files(o: FleetOptions, i: int) -> tuple[str, str]:
    """Robot ``i``'s (private key file, keyring file) of ``--robot-keys`` ("" without)."""
    if not o.robot_keys:
        return "", ""
    folder = Path(o.robot_keys).resolve()
    return str(folder / f"robot_{i}.key"), str(folder / "keyring.json")


def clock_offsets(n: int, skew_ms: float, drift_ppm: float, seed: int) -> list[tuple[float, float]]:
    """Per robot (offset s, drift ppm): offsets evenly over [-skew/2, +skew/2] in a seeded order,
    drift +-``drift_ppm`` alternately."""
    spread = np.linspace(-0.5, 0.5, n) * skew_ms * 1e-3 if n > 1 else np.zeros(n)
    order = np.random.default_rng([seed, 0xC10C]).permutation(n)
    return [(float(spread[order[i]]), drift_ppm * (1 if i % 2 == 0 else -1)) for i in range(n)]


def fleet_env(domain: int, log_dir: Path, socket_buffer: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(FLEET_DDS_ENV, ROS_DOMAIN_ID=str(domain), ROS_LOG_DIR=str(log_dir))
    if socket_buffer:  # Fast DDS's own syntax for its built-in transport's options
        env["FASTDDS_BUILTIN_TRANSPORTS"] += f"?sockets_size={socket_buffer}"
    return env


def robot_params(
    o: FleetOptions, i: int, config_file: Path, data_dir: Path, epoch: float, clock: tuple
) -> dict[str, Any]:
    """swarm_node parameters of robot ``i`` (the launch file's arguments of the same names)."""
    return {
        "robot_ids": [i],
        "num_robots": o.robots,
        "config_file": str(config_file),
        "seed": o.seed,
        "rounds": o.rounds,
        "epoch": epoch,
        "data_dir": str(data_dir),
        "motion": "round",
        "publish_model": False,  # the observer needs the reports, not the models
        "range_filter": o.robot_filter,
        "clock_offset": clock[0],
        "clock_drift_ppm": clock[1],
        **dict(zip(("robot_key_file", "keyring_file"), _key_files(o, i), strict=True)),
    }


def robot_command(params: dict[str, Any], launch: bool, params_file: Path) -> list[str]:
    """The command that starts one robot (inside its namespace: the caller adds the prefix)."""
    if launch:
        args = {
            "robot_id": params["robot_ids"][0], "sim": "kinematic",
            "num_robots": params["num_robots"],
            "config": params["config_file"], "seed": params["seed"], "rounds": params["rounds"],
            "epoch": repr(params["epoch"]), "data_dir": params["data_dir"],
            "motion": params["motion"], "publish_model": str(params["publish_model"]).lower(),
            "range_filter": str(params["range_filter"]).lower(),
            "clock_offset": repr(params["clock_offset"]),
            "clock_drift_ppm": repr(params["clock_drift_ppm"]),
            "robot_key_file": params["robot_key_file"], "keyring_file": params["keyring_file"],
        }  # fmt: skip
        # launch refuses `name:=` with nothing after it: an unset key file is left out
        return ["ros2", "launch", "gossip_learning", "robot.launch.py",
                *(f"{k}:={v}" for k, v in args.items() if str(v) != "")]  # fmt: skip
    params_file.write_text(
        yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=False), encoding="utf-8"
    )
    boot = "import sys; from gossip_learning.nodes.swarm import main; sys.exit(main())"
    return [sys.executable, "-c", boot, "--ros-args", "--params-file", str(params_file)]


class Fleet:
    """One run of the harness inside its private namespaces (see :func:`main`)."""

    def __init__(self, o: FleetOptions, cfg: Config) -> None:
        from gossip_learning.channel import GilbertElliott
        from gossip_learning.fleet.links import LinkModel, port_name
        from gossip_learning.fleet.netns import FleetNet, run
        from gossip_learning.plan import swarm_motion
        from gossip_learning.robot_data import channel_for
        from gossip_learning.schedule import build_schedule

        self.o, self.cfg = o, cfg
        self.out = Path(o.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="gossip_learning_fleet_"))
        # a tmpfs of the harness's private mount namespace: the config copy (which may hold the
        # fleet key), the data files and the reports vanish with it, however the harness ends
        run(["mount", "-t", "tmpfs", "-o", "mode=0700", "fleet-work", str(self.work)])
        f = cfg.faults
        bursts = (
            GilbertElliott(o.robots, f.burst_enter, f.burst_leave, f.burst_loss)
            if f.burst_enter > 0
            else None
        )
        self.links = LinkModel(channel_for(cfg), bursts)
        self.rng = np.random.default_rng([o.seed, 0xF1EE7])
        self.motion = swarm_motion(cfg, o.seed)
        self.ports = [port_name(i) for i in range(o.robots)]
        self.schedule = build_schedule("bilayer", cfg.clustering.passes, cfg.gossip)
        self.net = FleetNet(o.robots + 1, o.mtu, o.rate)  # the last host is the observer
        self.procs: list[subprocess.Popen[bytes]] = []
        self.observer: subprocess.Popen[bytes] | None = None
        self.samples: list[dict[str, Any]] = []  # veth counters at each round start
        self.applied: list[float] = []  # mean applied loss of in-range pairs, per update

    # ----------------------------------------------------------------- start
    def start(self) -> float:
        from gossip_learning.nodes.launch_support import start_delay
        from gossip_learning.robot_data import write_robot_files

        o = self.o
        config_file = self.work / "fleet.yaml"
        config_file.write_text(dump_config(self.cfg), encoding="utf-8")
        os.chmod(config_file, 0o600)  # may hold the fleet key
        data_dir = self.work / "data"
        write_robot_files(self.cfg, o.seed, data_dir)
        self.net.open()
        self._apply()
        logs = self.out / "logs"
        logs.mkdir(exist_ok=True)
        env = fleet_env(o.domain, logs / "ros", o.socket_buffer)
        delay = o.start_delay if o.start_delay >= 0 else start_delay("auto", o.robots) + 5.0
        self.started = time.time()
        epoch = float(math.ceil(self.started + delay))
        obs = [
            *self.net.exec_prefix(o.robots), sys.executable, "-m",
            "gossip_learning.fleet.observer", "--robots", str(o.robots),
            "--rounds", str(o.rounds), "--out", str(self.work / "statuses.jsonl"),
        ]  # fmt: skip
        self.observer = self._spawn(obs, env, logs / "observer.log")
        clocks = clock_offsets(o.robots, o.skew_ms, o.drift_ppm, o.seed)
        for i in range(o.robots):
            params = robot_params(o, i, config_file, data_dir, epoch, clocks[i])
            cmd = robot_command(params, o.launch, self.work / f"robot_{i}.yaml")
            self.procs.append(self._spawn(self.net.exec_prefix(i) + cmd, env,
                                          logs / f"robot_{i}.log"))  # fmt: skip
        self.clocks = clocks
        return epoch

    @staticmethod
    def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Each host in a session of its own: with the kernel's autogroup scheduling, the
        processes of one session share one group's CPU share, so 60 robots in the harness's
        session got the share of one other job on this machine, as no fleet of separate computers
        would; the harness stops them itself (:meth:`stop`), and the PID namespace ends them."""
        with open(log, "wb") as fh:
            return subprocess.Popen(
                cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _apply(self) -> None:
        from gossip_learning.fleet.links import CUT, update

        loss = self.links.loss_percent(self.motion.positions)
        self.net.apply(update(loss, self.ports))
        inr = loss[(loss < CUT) & ~np.eye(len(loss), dtype=bool)]
        self.applied.append(float(inr.mean()) if inr.size else math.nan)

    # ------------------------------------------------------------------ run
    def run(self, epoch: float) -> None:
        """Move the radio with the robots until every robot process has exited."""
        from gossip_learning.schedule import RoundClock

        clock = RoundClock(self.schedule, self.cfg.timing, start=epoch)
        self.period = clock.period
        deadline = epoch + self.o.rounds * clock.period + GRACE_S
        stepped = 0
        last: tuple[int, int] = (-1, -1)
        self._sample(0)
        while any(p.poll() is None for p in self.procs):
            now = time.time()
            if now > deadline:
                print("fleet: robots still running past the deadline; stopping them",
                      file=sys.stderr)  # fmt: skip
                break
            rnd, slot = clock.locate(now)
            changed = False
            if (rnd, slot) != last:
                if rnd != last[0] and rnd >= 1:
                    self._sample(rnd)
                    while stepped < rnd - 1:  # robots move once at the end of each round
                        self.motion.step(1.0)
                        stepped += 1
                        changed = True
                if self.links.bursts is not None and rnd >= 1:
                    self.links.bursts.step(self.rng)
                    changed = True
                last = (rnd, slot)
            if changed:
                self._apply()
            time.sleep(0.02)
        self._sample(self.o.rounds + 1)

    def _sample(self, rnd: int) -> None:
        self.samples.append({
            "round": rnd, "t": time.time(), "counters": self.net.counters(),
            "classes": self.net.classes(), "udp": [udp_counters(p.pid) for p in self.procs],
        })  # fmt: skip

    # ---------------------------------------------------------------- finish
    def stop(self) -> None:
        """Stop whatever still runs (SIGINT, then SIGKILL), observer last."""
        procs = [*self.procs, *([self.observer] if self.observer else [])]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        end = time.time() + 8.0
        for p in procs:
            try:
                p.wait(timeout=max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def wait_observer(self) -> None:
        if self.observer is not None:
            try:
                self.observer.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.observer.send_signal(signal.SIGINT)

    def summary(self, epoch: float) -> dict[str, Any]:
        from gossip_learning.fleet.links import loss_seen
        from gossip_learning.fleet.report import summarise

        statuses = (self.work / "statuses.jsonl").read_text(encoding="utf-8").splitlines()
        failed = {
            str(i): (self.out / "logs" / f"robot_{i}.log").read_text(errors="replace")[-800:]
            for i, p in enumerate(self.procs)
            if p.returncode != 0
        }
        result = summarise(
            options=asdict(self.o),
            statuses=[json.loads(s) for s in statuses if s.strip()],
            samples=self.samples,
            loss=loss_seen(self.net.listing()),
            applied=self.applied,
            exits=[p.returncode for p in self.procs],
            observer_exit=self.observer.returncode if self.observer else None,
            started=self.started,
            epoch=epoch,
            period=self.period,
            clocks=self.clocks,
            channel=repr(self.links.channel),
        )
        result["failed_logs"] = failed  # the end of the log of each robot that did not exit 0
        return result

    def close(self) -> None:
        self.stop()
        self.net.close()
        subprocess.run(["umount", str(self.work)], capture_output=True, check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def udp_counters(pid: int) -> list[int] | None:
    """UDP datagrams received, those dropped for a full socket buffer or another error, and
    sends that failed for want of a buffer (``SndbufErrors``: ENOBUFS, e.g. no neighbour
    entry), in the network namespace of process ``pid`` (None once it has exited)."""
    try:
        lines = [ln.split() for ln in Path(f"/proc/{pid}/net/snmp").read_text().splitlines()]
    except OSError:
        return None
    head, values = (ln[1:] for ln in lines if ln and ln[0] == "Udp:")
    row = dict(zip(head, map(int, values), strict=True))
    return [row["InDatagrams"], row["RcvbufErrors"], row["InErrors"], row["SndbufErrors"]]


def engine_accuracy(cfg: Config, seed: int, rounds: int) -> float:
    """Final mean accuracy of the in-process engine on the same config and seed."""
    from gossip_learning.experiment import Swarm
    from gossip_learning.plan import load_data

    swarm = Swarm(cfg, "bilayer", seed, load_data(cfg))
    row: dict[str, Any] = {}
    for _ in range(rounds):
        row = swarm.step()[0]
    return float(row["acc_mean"])


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when this process dies, however (``unshare`` then
    kills the harness inside, and the kernel the whole fleet)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def inside(o: FleetOptions) -> int:
    """The harness proper, as PID 1 of its private namespaces."""
    cfg = check_options(o)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    fleet = Fleet(o, cfg)
    try:
        epoch = fleet.start()
        print(f"fleet: {o.robots} robot hosts on {fleet.net.hosts} namespaces; round 1 at "
              f"{epoch - time.time():.0f} s, {o.rounds} rounds", flush=True)  # fmt: skip
        fleet.run(epoch)
        fleet.wait_observer()
        fleet.stop()
        result = fleet.summary(epoch)
    except KeyboardInterrupt:
        print("fleet: interrupted; removing the fleet's namespaces", file=sys.stderr)
        return 130
    finally:
        fleet.close()
    if o.engine:
        result["engine_acc_last"] = engine_accuracy(cfg, o.seed, o.rounds)
    path = Path(o.out) / "fleet.json"
    path.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    from gossip_learning.fleet.report import headline

    print(headline(result))
    print(f"fleet: wrote {path}")
    return 0 if result["ok"] else 1


def options_of(args: argparse.Namespace) -> FleetOptions:
    return FleetOptions(
        config=args.config, robots=args.robots, rounds=args.rounds, out=args.out, seed=args.seed,
        overrides=list(args.overrides), mtu=args.mtu, rate=args.rate, skew_ms=args.skew_ms,
        drift_ppm=args.drift_ppm, launch=args.launch, start_delay=args.start_delay,
        domain=args.domain, robot_filter=args.robot_filter, engine=args.engine,
        robot_keys=args.robot_keys,
        socket_buffer=args.socket_buffer,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """``gossip-learning fleet ...``: check, then re-run this inside private namespaces."""
    from gossip_learning.errors import GossipLearningError
    from gossip_learning.fleet.netns import (
        INSIDE_ENV,
        FleetError,
        check_can_run,
        private_namespace_command,
    )

    argv = list(sys.argv[1:] if argv is None else argv)
    o = options_of(parser().parse_args(argv))
    try:
        check_options(o)
        if os.environ.get(INSIDE_ENV) == "1":
            return inside(o)
        check_can_run()
    except (GossipLearningError, FleetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cmd = private_namespace_command([sys.executable, "-m", "gossip_learning.fleet.harness", *argv])
    proc = subprocess.Popen(cmd, env={**os.environ, INSIDE_ENV: "1"}, preexec_fn=_die_with_parent)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # a terminal's Ctrl-C reaches the harness inside too; a signal sent to this process
        # alone is passed on. The harness then stops the robots and removes the fleet.
        _signal_children(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30.0)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()  # unshare dies; --kill-child ends every process of the fleet
            proc.wait()
        return 130


def _signal_children(pid: int, sig: int) -> None:
    """Send ``sig`` to the children of ``pid`` (unshare's: the harness inside)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(kid), sig)


if __name__ == "__main__":
    sys.exit(main())
