"""More than 32 DDS participants on one host find each other with config/fastdds_localhost.xml.

rmw_fastrtps with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` announces a participant to 32
participant slots on 127.0.0.1; the shipped profile (what ``discovery:=wide`` in the launch file
uses) widens that on UDP over loopback only. Small processes (one node each, no robot)
stand in for robots. As root the probes run in a private network namespace; otherwise the
profile's loopback whitelist keeps them on this host.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gossip_learning.nodes.discovery import choose_discovery
from gossip_learning.nodes.launch_support import discovery_env, loopback_only

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("discovery_probe.py")
PROFILE = ROOT / "config" / "fastdds_localhost.xml"
pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(importlib.util.find_spec("rclpy") is None, reason="needs rclpy"),
]

PARTICIPANTS = 36  # > 32: two of them hold ids the default localhost range does not cover


def _probe_counts(
    env: dict[str, str], tmp: Path, k: int, wait_s: float, server: dict[str, str] | None = None
) -> list[int]:
    """Start ``k`` probes (after the launch's discovery server, with its environment
    ``server``); return how many probe nodes each one saw (within ``wait_s``). The server must
    end with status 0 on SIGINT, as the launch stops it."""
    stop = tmp / "stop"
    script = (
        "import json, signal, subprocess, sys\n"
        f"server = json.loads({json.dumps(json.dumps(server))})\n"
        "if server is not None:\n"
        "    srv = subprocess.Popen([sys.executable, '-m', 'gossip_learning.nodes.dds_server'],\n"
        "                           env=server, stdout=subprocess.PIPE, text=True)\n"
        "    assert srv.stdout.readline().strip() == 'discovery server ready'\n"
        f"ps = [subprocess.Popen([sys.executable, {str(PROBE)!r}, str(i), '{k}', {str(stop)!r}, "
        f"'{wait_s}'], stdout=subprocess.PIPE, text=True) for i in range({k})]\n"
        "lines = [p.stdout.readline().strip() for p in ps]\n"
        f"open({str(stop)!r}, 'w').close()\n"
        "for p in ps:\n"
        "    try:\n"
        "        p.wait(timeout=20)\n"
        "    except subprocess.TimeoutExpired:\n"
        "        p.kill()\n"
        "if server is not None:\n"
        "    srv.send_signal(signal.SIGINT)\n"
        "    lines.append(f'server exit {srv.wait(timeout=20)}')\n"
        "print('\\n'.join(lines))\n"
    )
    cmd = [sys.executable, "-c", script]
    cmd = loopback_only(cmd)
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=wait_s + 120, cwd=tmp
    )
    counts = [int(line.split()[-1]) for line in proc.stdout.splitlines() if "sees" in line]
    assert len(counts) == k, proc.stdout[-2000:] + proc.stderr[-2000:]
    if server is not None:
        assert "server exit 0" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
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


def test_more_than_32_participants_meet_through_the_launchs_discovery_server(
    tmp_path: Path,
) -> None:
    """discovery:=server (auto's choice past 32 slots): the launch's server process and its
    clients on the loopback profile; every probe sees every other."""
    choice = choose_discovery(
        "server", PARTICIPANTS, {"ROS_DOMAIN_ID": "98"}, str(PROFILE), str(tmp_path)
    )
    assert choice.server_env is not None
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": "98",
        "ROS_LOG_DIR": str(tmp_path / "log"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        **choice.env,
    }
    start = time.monotonic()
    counts = _probe_counts(env, tmp_path, PARTICIPANTS, 150, {**env, **choice.server_env})
    assert counts == [PARTICIPANTS] * PARTICIPANTS, counts
    print(f"{PARTICIPANTS} participants met through the server in {time.monotonic() - start:.0f} s")


def test_discovery_env_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="discovery"):
        discovery_env("everywhere", "x.xml")
