"""Wall time of one sweep on the local process pool against a two-node Ray cluster on this
machine, and whether both wrote the same results (docs/cluster.md).

The same ``gossip-learning reproduce`` command runs twice: ``--backend local --jobs 2``, then
``--backend ray`` on a real Ray cluster started here (a head and a second worker node, 1 CPU
each, bound to 127.0.0.1, inside a private network namespace when root). On 2 cores no speed-up
is expected: the point is that it runs, identically. Prints the figures with the load beside them.

    python benchmarks/sweep_backends.py --json docs/results/sweep_backends.json \
        -- --only iid_n30 dirichlet_a0.5 --set experiment.seeds=[0,1,2]
    python benchmarks/sweep_backends.py -- --only ...   # any reproduce arguments after --
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import Report, allow_dirty_flag, format_load, load_avg

from gossip_learning.backends import local_ray_cluster
from gossip_learning.nodes.launch_support import loopback_only
from gossip_learning.sweep import comparable_results

IN_NAMESPACE = "GOSSIP_LEARNING_BENCH_NETNS"


def _timed(args: list[str]) -> tuple[float, int, str]:
    t = time.perf_counter()
    proc = subprocess.run(["gossip-learning", "reproduce", *args], capture_output=True, text=True)
    return time.perf_counter() - t, proc.returncode, (proc.stdout + proc.stderr)[-2000:]


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    ours, rest = (raw[: raw.index("--")], raw[raw.index("--") + 1 :]) if "--" in raw else (raw, [])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument("--jobs", type=int, default=2, help="local pool size (default 2)")
    allow_dirty_flag(p)
    args = p.parse_args(ours)
    if os.geteuid() == 0 and not os.environ.get(IN_NAMESPACE):
        # Ray listens on its node address: keep the whole benchmark off every real network.
        cmd = loopback_only([sys.executable, __file__, *raw])
        return subprocess.run(cmd, env={**os.environ, IN_NAMESPACE: "1"}).returncode
    report = Report("sweep_backends", [__file__, *raw], out=args.json, allow_dirty=args.allow_dirty)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        local_out, ray_out = Path(tmp) / "local", Path(tmp) / "ray"
        load0 = load_avg()
        local_s, local_rc, local_tail = _timed(
            [*rest, "--out", str(local_out), "--jobs", str(args.jobs)]
        )
        load1 = load_avg()
        with local_ray_cluster(nodes=2, cpus_per_node=1) as address:
            ray_s, ray_rc, ray_tail = _timed(
                [*rest, "--out", str(ray_out), "--backend", "ray", "--address", address]
            )
        load2 = load_avg()
        for name, rc, tail in (("local", local_rc, local_tail), ("ray", ray_rc, ray_tail)):
            if rc != 0:
                print(f"{name} run failed ({rc}):\n{tail}", file=sys.stderr)
                return 1
        same = comparable_results(local_out) == comparable_results(ray_out)
        tasks = len(list(local_out.glob("*/seeds/seed*.json")))
    report.add(
        backend="local", nodes=1, cpus=args.jobs, tasks=tasks, wall_s=round(local_s, 1),
        load_before=load0[0], load_after=load1[0], same_results=True,
    )  # fmt: skip
    report.add(
        backend="ray", nodes=2, cpus=2, tasks=tasks, wall_s=round(ray_s, 1),
        load_before=load1[0], load_after=load2[0], same_results=same,
    )  # fmt: skip
    out = report.write(args.json)
    out_args = " ".join(rest) or "(every experiment)"
    print(f"reproduce {out_args}: {tasks} tasks")
    print(f"local pool ({args.jobs} jobs): {local_s:.0f} s; 2-node Ray: {ray_s:.0f} s; "
          f"same results: {same}")  # fmt: skip
    print(format_load(out["machine"]["load_avg_before"]), "->",
          format_load(out["machine"]["load_avg_after"]))  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
