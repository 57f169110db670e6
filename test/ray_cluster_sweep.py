"""Run inside a private network namespace (test_sweep.py starts it there): a real two-node Ray
cluster bound to 127.0.0.1 (``ray start --head`` and a second worker node), a small sweep on it
through ``gossip-learning sweep --backend ray``, and one worker process killed while it runs a
task. Prints one JSON line: the sweep's exit code, the pid killed, and the nodes Ray reported.

    python test/ray_cluster_sweep.py OUT_DIR SWEEP_ARGS...
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from gossip_learning.backends import local_ray_cluster


def _kill_one_task_worker(deadline: float) -> int | None:
    """SIGKILL the first Ray worker seen running a sweep task; its pid, or None by deadline."""
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if " ".join(proc.info.get("cmdline") or []).startswith("ray::run_seed"):
                proc.kill()
                return int(proc.info["pid"])
        time.sleep(0.1)
    return None


def main() -> int:
    out, sweep_args = Path(sys.argv[1]), sys.argv[2:]
    with local_ray_cluster(nodes=2, cpus_per_node=1) as address:
        sweep = subprocess.Popen(
            ["gossip-learning", "sweep", *sweep_args, "--out", str(out),
             "--backend", "ray", "--address", address],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        killed = _kill_one_task_worker(time.monotonic() + 120)
        text, _ = sweep.communicate(timeout=600)
    info = out / "run_info.json"
    nodes = json.loads(info.read_text(encoding="utf-8"))["sweep"]["nodes"] if info.exists() else []
    print(json.dumps({"rc": sweep.returncode, "killed": killed, "nodes": nodes,
                      "tail": text[-3000:]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
