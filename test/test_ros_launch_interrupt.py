"""Ctrl-C on a real ``ros2 launch gossip_learning swarm.launch.py`` (loopback only): every
process ends on the SIGINT the launch forwards, within launch's 5 s grace period (no SIGTERM
escalation, no SIGKILL)."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gossip_learning.nodes.launch_support import loopback_env, loopback_only
from ros_launch_support import LAUNCH_MARKS, small_swarm_config

pytestmark = LAUNCH_MARKS


@pytest.fixture
def workspace(launch_workspace: Path) -> Path:
    """The session's colcon workspace (built once for every launch test)."""
    return launch_workspace


def _rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8") as fh:
        return len(list(csv.DictReader(fh)))


def test_ctrl_c_ends_every_process_without_escalation(workspace: Path, tmp_path: Path) -> None:
    cfg_path = small_swarm_config(tmp_path)
    out = tmp_path / "out"
    env = loopback_env(93, tmp_path / "ros_log", workspace / "install" / "gossip_learning")
    args = ["num_robots:=3", "rounds:=20", "start_delay:=6", f"config:={cfg_path}",
            f"output_dir:={out}"]  # fmt: skip
    cmd = [shutil.which("ros2") or "ros2", "launch", "gossip_learning", "swarm.launch.py", *args]
    cmd = loopback_only(cmd)
    log_path = tmp_path / "launch.log"
    with log_path.open("w", encoding="utf-8") as log:
        # a shell that starts jobs in the background (CI runners, `cmd &`) hands its children
        # SIGINT ignored, and Python then never installs its Ctrl-C handler: restore the default
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            end = time.monotonic() + 120
            while _rows(out / "metrics.csv") < 1 and time.monotonic() < end:
                assert proc.poll() is None, log_path.read_text(encoding="utf-8")[-4000:]
                time.sleep(0.5)
            assert _rows(out / "metrics.csv") >= 1, log_path.read_text(encoding="utf-8")[-4000:]
            proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does
            sent = time.monotonic()
            code = proc.wait(timeout=120)  # the 5 s grace is checked below: no escalation
            print(f"launch ended {time.monotonic() - sent:.1f} s after SIGINT")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_path.read_text(encoding="utf-8")
    assert code == 0, text[-4000:]
    assert "SIGTERM" not in text and "SIGKILL" not in text, text[-4000:]
    started = text.count("process started with pid")
    assert started == 4, text[-4000:]  # 3 robot processes (each hosting its motion), the monitor
    # each handled the SIGINT and exited with code 0
    assert text.count("process has finished cleanly") == started, text[-4000:]
    assert "process has died" not in text, text[-4000:]
    assert _rows(out / "metrics.csv") < 20  # interrupted, not finished
