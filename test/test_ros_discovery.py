"""More than 32 DDS participants on one host find each other with config/fastdds_localhost.xml.

rmw_fastrtps with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` announces a participant to 32
participant slots on 127.0.0.1; the shipped profile (what ``discovery:=wide`` in the launch file
uses) widens that on UDP over loopback only. Small processes (one node each, no robot)
stand in for robots. As root the probes run in a private network namespace; otherwise the
profile's loopback whitelist keeps them on this host.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gossip_learning.nodes.launch_support import discovery_env, loopback_only

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("discovery_probe.py")
pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(importlib.util.find_spec("rclpy") is None, reason="needs rclpy"),
]

PARTICIPANTS = 36  # > 32: two of them hold ids the default localhost range does not cover


def _probe_counts(env: dict[str, str], tmp: Path, k: int, wait_s: float) -> list[int]:
    """Start ``k`` probes; return how many probe nodes each one saw (within ``wait_s``)."""
    stop = tmp / "stop"
    script = (
        "import subprocess, sys\n"
        f"ps = [subprocess.Popen([sys.executable, {str(PROBE)!r}, str(i), '{k}', {str(stop)!r}, "
        f"'{wait_s}'], stdout=subprocess.PIPE, text=True) for i in range({k})]\n"
        "lines = [p.stdout.readline().strip() for p in ps]\n"
        f"open({str(stop)!r}, 'w').close()\n"
        "for p in ps:\n"
        "    try:\n"
        "        p.wait(timeout=20)\n"
        "    except subprocess.TimeoutExpired:\n"
        "        p.kill()\n"
        "print('\\n'.join(lines))\n"
    )
    cmd = [sys.executable, "-c", script]
    cmd = loopback_only(cmd)
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=wait_s + 120, cwd=tmp
    )
    counts = [int(line.split()[-1]) for line in proc.stdout.splitlines() if "sees" in line]
    assert len(counts) == k, proc.stdout[-2000:] + proc.stderr[-2000:]
    return counts


def test_more_than_32_participants_discover_each_other_with_the_profile(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": "97",
        "ROS_LOG_DIR": str(tmp_path / "log"),
        **discovery_env("wide", str(ROOT / "config" / "fastdds_localhost.xml")),
    }
    start = time.monotonic()
    counts = _probe_counts(env, tmp_path, PARTICIPANTS, wait_s=150)
    assert counts == [PARTICIPANTS] * PARTICIPANTS, counts
    print(f"{PARTICIPANTS} participants discovered each other in {time.monotonic() - start:.0f} s")


def test_discovery_env_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="discovery"):
        discovery_env("everywhere", "x.xml")
