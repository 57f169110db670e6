"""Ctrl-C on a real ``ros2 launch gossip_learning swarm.launch.py`` (loopback only).

A terminal Ctrl-C sends SIGINT to the whole process group (launch and every node; launch then
forwards one more to each node); ``kill -INT <launch>`` reaches launch only. Either way, at any
moment of a round (once the node processes run their own code), every process ends on it within
launch's 5 s grace period (no SIGTERM escalation, no SIGKILL), exits 0 without a traceback, the
monitor has written every round that closed (and flushed the open ones) and no temporary folder
is left behind."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gossip_learning.config import dump_config, load_config
from gossip_learning.nodes.launch_support import loopback_env, loopback_only
from gossip_learning.schedule import RoundClock, build_schedule
from ros_launch_support import LAUNCH_MARKS, ROOT

pytestmark = LAUNCH_MARKS
#: short phases: a round of about 5 s, so every moment comes quickly
FAST = [
    "clustering.min_cluster_size=1",
    "gossip.matching=single",
    "timing.cluster_phase_s=0.15",
    "timing.train_phase_s=0.5",
    "timing.gossip_phase_s=0.15",
    "timing.end_phase_s=0.3",
]


@pytest.fixture
def workspace(launch_workspace: Path) -> Path:
    """The session's colcon workspace (built once for every launch test)."""
    return launch_workspace


def _rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8") as fh:
        return len(list(csv.DictReader(fh)))


@pytest.mark.parametrize(
    ("target", "moment"),
    [
        ("launch", "mid_round"),
        ("group", "start_up"),
        ("group", "mid_round"),
        ("group", "round_end"),
    ],
)
def test_ctrl_c_ends_every_process_cleanly(
    workspace: Path, tmp_path: Path, target: str, moment: str
) -> None:
    cfg = load_config(ROOT / "config" / "ros_swarm.yaml", FAST)
    cfg_path = tmp_path / "swarm.yaml"
    cfg_path.write_text(dump_config(cfg), encoding="utf-8")
    period = RoundClock(build_schedule("bilayer", cfg.clustering.passes, cfg.gossip), cfg.timing)
    out = tmp_path / "out"
    temp = tmp_path / "tmp"  # the launch's temporary folder: must be empty afterwards
    temp.mkdir()
    env = loopback_env(93, tmp_path / "ros_log", workspace / "install" / "gossip_learning")
    env["TMPDIR"] = str(temp)
    delay = 40 if moment == "start_up" else 6  # start_up: every node up, round 1 still far
    args = ["num_robots:=3", "rounds:=20", f"start_delay:={delay}", f"config:={cfg_path}",
            f"output_dir:={out}"]  # fmt: skip
    cmd = [shutil.which("ros2") or "ros2", "launch", "gossip_learning", "swarm.launch.py", *args]
    cmd = loopback_only(cmd)
    log_path = tmp_path / "launch.log"
    with log_path.open("w", encoding="utf-8") as log:
        # its own process group (as a terminal's foreground job); a shell that starts jobs in
        # the background hands its children SIGINT ignored: restore the default
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            if moment == "start_up":  # every node's code runs (its SIGINT handler is set)
                end = time.monotonic() + 120
                while time.monotonic() < end and not (
                    log_path.read_text().count("ready: 1 robot(s)") == 3
                    and "writing metrics to" in log_path.read_text()
                ):
                    assert proc.poll() is None, log_path.read_text(encoding="utf-8")[-4000:]
                    time.sleep(0.2)
            else:
                end = time.monotonic() + 120
                while _rows(out / "metrics.csv") < 1 and time.monotonic() < end:
                    assert proc.poll() is None, log_path.read_text(encoding="utf-8")[-4000:]
                    time.sleep(0.2)
                assert _rows(out / "metrics.csv") >= 1, log_path.read_text()[-4000:]
                # a row is written at the end of a round: wait into the next one
                time.sleep(period.period * (0.5 if moment == "mid_round" else 0.95))
            before = _rows(out / "metrics.csv")
            if target == "group":
                os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
            else:
                proc.send_signal(signal.SIGINT)
            sent = time.monotonic()
            code = proc.wait(timeout=120)  # the 5 s grace is checked below: no escalation
            print(f"{target}/{moment}: launch ended {time.monotonic() - sent:.1f} s after SIGINT")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log_path.read_text(encoding="utf-8")
    assert code == 0, text[-4000:]
    assert "SIGTERM" not in text and "SIGKILL" not in text, text[-4000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-4000:]
    started = text.count("process started with pid")
    assert started == 4, text[-4000:]  # 3 robot processes (each with its motion), monitor
    # each handled the SIGINT and exited with code 0
    assert text.count("process has finished cleanly") == started, text[-4000:]
    assert "Unknown child process" not in text, text[-4000:]  # launch lost an exit status
    assert "process has died" not in text, text[-4000:]
    after = _rows(out / "metrics.csv")
    assert before <= after < 20, (before, after)  # flushed, not finished
    assert not list(temp.glob("gossip_learning_*")), list(temp.iterdir())
