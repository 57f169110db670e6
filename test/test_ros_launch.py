"""End to end: the real ``ros2 launch gossip_learning swarm.launch.py`` on loopback only.

The package is built with colcon into a temporary workspace (as a user would), then the launch
runs 12 robots (one process each) for 6 rounds on config/ros_acceptance.yaml with the monitor. It
must exit by itself with code 0, every process too, every robot must report every round, and the
swarm must end well above local-only training and near the in-process engine.
DDS stays on this machine: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, a private domain id and,
as root, a private network namespace.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from gossip_learning.config import load_config
from gossip_learning.experiment import Swarm
from gossip_learning.nodes.launch_support import loopback_env, loopback_only
from gossip_learning.nodes.process import WATCHDOG_MARK
from gossip_learning.plan import load_data
from ros_launch_support import LAUNCH_MARKS, ROOT, small_swarm_config

pytestmark = LAUNCH_MARKS


@pytest.fixture
def workspace(launch_workspace: Path) -> Path:
    """The session's colcon workspace (built once for every launch test)."""
    return launch_workspace


def _launch(
    ws: Path,
    args: list[str],
    cwd: Path,
    domain: int,
    timeout: float = 180,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = loopback_env(domain, cwd / "ros_log", ws / "install" / "gossip_learning")
    env.update(extra_env or {})
    cmd = [shutil.which("ros2") or "ros2", "launch", "gossip_learning", "swarm.launch.py", *args]
    cmd = loopback_only(cmd)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


#: The acceptance at CI size: config/ros_acceptance.yaml (Dirichlet label skew, broadcast gossip),
#: 12 robots, one process each, 6 rounds, motion:=round (the engine's moves), seed 0.
ROBOTS, ROUNDS = 12, 6


def _engine(method: str) -> float:
    """Final mean accuracy of the in-process engine on the acceptance config (same plan)."""
    cfg = load_config(
        ROOT / "config" / "ros_acceptance.yaml",
        [f"swarm.num_robots={ROBOTS}", f"experiment.rounds={ROUNDS}"],
    )
    swarm = Swarm(cfg, method, 0, load_data(cfg))
    return float([swarm.step()[0] for _ in range(ROUNDS)][-1]["acc_mean"])


def test_launch_gossips_to_the_engines_accuracy_and_every_process_exits_0(
    workspace: Path, tmp_path: Path
) -> None:
    """Real `ros2 launch` on data where gossip matters: every robot reports every round, every
    process (robots and monitor) exits 0 by itself with no teardown watchdog, and the swarm ends
    at least 10 points above training alone (gossip switched off fails here) and near the
    engine."""
    out = tmp_path / "out"
    params = tmp_path / "robot.yaml"  # the shipped robot parameters (method: bilayer)
    params.write_text((ROOT / "config" / "ros_robot.yaml").read_text(encoding="utf-8"))
    proc = _launch(
        workspace,
        [f"num_robots:={ROBOTS}", f"rounds:={ROUNDS}", "motion:=round",
         f"config:={ROOT / 'config' / 'ros_acceptance.yaml'}", f"params_file:={params}",
         f"output_dir:={out}"],
        tmp_path,
        domain=91,
        timeout=900,
    )  # fmt: skip
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log  # it ended by itself (no timeout), cleanly
    text = proc.stdout + proc.stderr
    assert "sending signal 'SIGINT' to process[monitor_node" not in text, log  # ended by itself
    assert text.count("process has finished cleanly") == ROBOTS + 1, log  # robots and monitor
    assert "process has died" not in text and WATCHDOG_MARK not in text, log
    rows = list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))
    assert [int(r["round"]) for r in rows] == list(range(1, ROUNDS + 1)), log
    assert all(int(r["robots_reporting"]) == ROBOTS for r in rows), rows
    assert max(int(r["num_clusters"]) for r in rows) >= 1
    launched = float(rows[-1]["acc_mean"])
    engine, alone = _engine("bilayer"), _engine("local")
    assert engine >= alone + 0.15, (engine, alone)  # the workload tells gossip from none
    assert launched >= alone + 0.10, (launched, engine, alone)
    # broadcast gossip draws no partner, so the order frames arrive in does not move the end
    # point (benchmarks/order_sensitivity.py); frames refused as late on a loaded host do: 0.4
    # points in our run at nice 15 beside other jobs (0.8 and 2.6 before protocol/ahead.py kept
    # the models that came before their step, up to a tenth of a round's frames)
    assert abs(launched - engine) <= 0.05, (launched, engine, alone)
    assert (out / "plots" / "accuracy.png").is_file()
    assert "phase_scale 1: 12 robot process(es)" in text, log  # auto: 12 processes need no more


def test_a_mistyped_argument_is_rejected_with_the_valid_ones(
    workspace: Path, tmp_path: Path
) -> None:
    proc = _launch(workspace, ["num_robot:=4"], tmp_path, domain=92)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "unknown launch argument(s) num_robot" in text
    assert "num_robots" in text.split("valid arguments:")[1]


def test_a_bad_phase_scale_is_named_before_any_process_starts(
    workspace: Path, tmp_path: Path
) -> None:
    proc = _launch(workspace, ["num_robots:=3", "phase_scale:=0"], tmp_path, domain=99)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert "phase_scale:='0' must be auto or a number > 0" in text, text[-3000:]
    assert "process started" not in text


def test_a_discovery_that_cannot_hold_the_swarm_stops_the_launch_before_any_process(
    workspace: Path, tmp_path: Path
) -> None:
    # 40 robot processes and a monitor do not fit localhost discovery's 32 participant slots
    proc = _launch(
        workspace, ["num_robots:=40", "discovery:=localhost"], tmp_path, domain=93, timeout=120
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert "do not fit discovery:=localhost" in text and "discovery:=auto" in text, text[-3000:]
    assert "process started" not in text  # nothing ran: an error, never half a swarm


def test_auto_keeps_the_users_own_discovery_and_refuses_one_that_cannot_hold_the_swarm(
    workspace: Path, tmp_path: Path
) -> None:
    # the user's environment chose a discovery (here OFF: no process meets another); auto keeps
    # the user's choice rather than overriding it, so it must refuse before anything starts
    off = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}
    proc = _launch(workspace, ["num_robots:=3"], tmp_path, domain=98, timeout=120, extra_env=off)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE=OFF (from the environment)" in text, text[-3000:]
    assert "process started" not in text


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))


def test_single_process_hosts_a_dozen_robots_that_all_report_and_cluster(
    workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = _launch(
        workspace,
        ["num_robots:=12", "rounds:=2", "single_process:=true", f"output_dir:={out}"],
        tmp_path,
        domain=94,
    )
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    rows = _rows(out)
    first = int(rows[0]["round"])  # 1 unless start-up outlasted start_delay on a loaded machine
    assert [int(r["round"]) for r in rows] == [first, first + 1], log
    assert all(int(r["robots_reporting"]) == 12 for r in rows), rows
    assert all(int(r["num_clusters"]) >= 1 for r in rows), rows


def test_plant_drives_robots_through_cmd_vel_end_to_end(workspace: Path, tmp_path: Path) -> None:
    cfg_path = small_swarm_config(tmp_path)
    out = tmp_path / "out"
    proc = _launch(
        workspace,
        ["num_robots:=3", "rounds:=2", "sim:=plant", f"config:={cfg_path}", f"output_dir:={out}"],
        tmp_path,
        domain=95,
    )
    log = proc.stdout[-6000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, log
    rows = _rows(out)
    assert rows and all(int(r["robots_reporting"]) == 3 for r in rows), log
    (line,) = [x for x in log.splitlines() if "plant: " in x]
    commands = int(line.split("plant: ")[1].split()[0])
    slowest = float(line.split("travelled ")[1].split("..")[0])
    assert commands > 0 and slowest > 1.0, line  # every robot moved under cmd_vel
