"""End to end: the real ``ros2 launch gossip_learning swarm.launch.py`` on loopback only.

The package is built with colcon into a temporary workspace (as a user would), then the launch
runs 4 robots for 3 rounds with their kinematic drivers and the monitor. It must exit by itself
with code 0, every robot must report every round, a cluster must form and accuracy must rise.
DDS stays on this machine: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, a private domain id and,
as root, a private network namespace.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from gossip_learning.nodes.launch_support import loopback_env, loopback_only
from ros_launch_support import LAUNCH_MARKS, small_swarm_config

pytestmark = LAUNCH_MARKS


@pytest.fixture
def workspace(launch_workspace: Path) -> Path:
    """The session's colcon workspace (built once for every launch test)."""
    return launch_workspace


def _launch(
    ws: Path, args: list[str], cwd: Path, domain: int, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = loopback_env(domain, cwd / "ros_log", ws / "install" / "gossip_learning")
    cmd = [shutil.which("ros2") or "ros2", "launch", "gossip_learning", "swarm.launch.py", *args]
    cmd = loopback_only(cmd)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_launch_runs_the_swarm_and_exits_by_itself(workspace: Path, tmp_path: Path) -> None:
    # 4 robots hear each other: with the paper's minimum size (3) none could lead a cluster
    cfg_path = small_swarm_config(tmp_path)
    out = tmp_path / "out"
    proc = _launch(
        workspace,
        ["num_robots:=4", "rounds:=3", f"config:={cfg_path}",
         f"output_dir:={out}"],
        tmp_path,
        domain=91,
    )  # fmt: skip
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log  # it ended by itself (no timeout), cleanly
    assert "sending signal 'SIGINT' to process[monitor_node" in log  # ended when robots were done
    rows = list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))
    first = int(rows[0]["round"])  # 1 unless start-up outlasted start_delay on a loaded machine
    assert [int(r["round"]) for r in rows] == [first, first + 1, first + 2], log
    assert all(int(r["robots_reporting"]) == 4 for r in rows)
    assert max(int(r["num_clusters"]) for r in rows) >= 1
    assert float(rows[-1]["acc_mean"]) > float(rows[0]["acc_mean"])
    assert (out / "plots" / "accuracy.png").is_file()


def test_a_mistyped_argument_is_rejected_with_the_valid_ones(
    workspace: Path, tmp_path: Path
) -> None:
    proc = _launch(workspace, ["num_robot:=4"], tmp_path, domain=92)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "unknown launch argument(s) num_robot" in text
    assert "num_robots" in text.split("valid arguments:")[1]


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
