"""Sweeps (gossip_learning.sweep, .backends): one task per (experiment, seed), the results folder
as checkpoint, the same results on every backend, and a real two-node Ray cluster."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gossip_learning import backends, sweep
from gossip_learning.backends import Backend, BackendError, Progress
from gossip_learning.errors import ConfigError
from gossip_learning.nodes.launch_support import loopback_only

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "config" / "quickstart.yaml"
# A small sweep: 2 settings x 2 seeds, 2 rounds, bilayer beside local-only.
SMALL = [
    "--grid",
    "gossip.mode=pairwise,broadcast",
    "--set",
    "experiment.rounds=2",
    "--set",
    "experiment.seeds=[0,1]",
    "--set",
    "experiment.methods=[bilayer,local]",
]


def _run(args: list[str]) -> None:
    """The sweep CLI in a fresh process, as a user runs it: a fork-pool worker forked from this
    test process (which may hold rclpy/DDS threads of earlier tests) once crashed in its garbage
    collector and left the pool waiting forever."""
    cmd = [sys.executable, "-c", "import sys; from gossip_learning import sweep; "
           "sys.exit(sweep.main(sys.argv[1:]))", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_split_values_keeps_brackets() -> None:
    assert sweep.split_values("a, b,[1, 2],{x: 1, y: 2}") == ["a", "b", "[1, 2]", "{x: 1, y: 2}"]


def test_grid_has_every_combination_and_bad_grids_name_the_option() -> None:
    items = sweep.grid_items(
        QUICK, ["gossip.mode=pairwise,broadcast", "gossip.intra_steps=1,2"], []
    )
    assert [it.name for it, _ in items] == [
        "gossip.mode=pairwise__gossip.intra_steps=1",
        "gossip.mode=pairwise__gossip.intra_steps=2",
        "gossip.mode=broadcast__gossip.intra_steps=1",
        "gossip.mode=broadcast__gossip.intra_steps=2",
    ]
    assert items[3][0].cfg.gossip.mode == "broadcast" and items[3][0].cfg.gossip.intra_steps == 2
    with pytest.raises(ConfigError, match="--grid"):
        sweep.grid_items(QUICK, ["gossip.mode"], [])
    with pytest.raises(ConfigError, match=r"gossip\.mode"):
        sweep.grid_items(QUICK, ["gossip.mode=pairwise,smoke"], [])
    assert [it.name for it, _ in sweep.grid_items(QUICK, [], [])] == ["quickstart"]


def test_backend_options_are_checked_before_any_work() -> None:
    with pytest.raises(BackendError, match="--backend"):
        Backend("slurm")
    with pytest.raises(BackendError, match="--jobs"):
        Backend("local", 0)
    with pytest.raises(BackendError, match="--address"):
        Backend("local", 1, "127.0.0.1:6379")


def test_progress_bar_counts_every_task() -> None:
    stream = io.StringIO()
    bar = Progress(4, stream, done=1)
    bar.advance("a seed 0")
    assert "2/4 (50 %)" in stream.getvalue() and "a seed 0" in stream.getvalue()
    assert "[##########..........]" in stream.getvalue()


def test_restart_skips_finished_tasks_and_reruns_a_torn_one(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    items = [
        it for it, _ in sweep.grid_items(QUICK, ["gossip.mode=pairwise,broadcast"], SMALL[3::2])
    ]
    ran: list[tuple[str, int]] = []

    def note(task: sweep.SeedTask, _result: dict[str, Any]) -> None:
        ran.append((task.name, task.seed))

    sweep.run_sweep(items, out, Backend(), ["test"], on_task=note)
    assert sorted(ran) == sorted((it.name, s) for it in items for s in (0, 1))
    first = sweep.comparable_results(out)
    ran.clear()
    sweep.run_sweep(items, out, Backend(), ["test"], on_task=note)
    assert ran == []  # everything finished: nothing runs again
    # An interrupted sweep: one seed file torn, that experiment never assembled.
    folder = out / items[1].name
    (folder / "summary.md").unlink()
    sweep.seed_file(folder, 1).write_text('{"seed": 1, "ru', encoding="utf-8")
    sweep.run_sweep(items, out, Backend(), ["test"], on_task=note)
    assert ran == [(items[1].name, 1)]
    assert sweep.comparable_results(out) == first


def test_local_pool_writes_what_one_process_writes(tmp_path: Path) -> None:
    _run([str(QUICK), *SMALL, "--out", str(tmp_path / "one")])
    _run([str(QUICK), *SMALL, "--out", str(tmp_path / "pool"), "--jobs", "2"])
    one, pool = (
        sweep.comparable_results(tmp_path / "one"),
        sweep.comparable_results(tmp_path / "pool"),
    )
    assert one == pool
    assert "gossip.mode=broadcast/seeds/seed1.json" in one
    info = json.loads((tmp_path / "pool" / "run_info.json").read_text(encoding="utf-8"))
    assert info["sweep"]["backend"] == "local" and info["sweep"]["jobs"] == 2
    assert info["sweep"]["nodes"][0]["cpus"] == os.cpu_count()


# Run in a fresh process (see _run): task 2's worker is killed; the others return their task.
DYING_WORKER = """
import os, signal, sys
from gossip_learning.backends import Backend, BackendError, run_tasks

def task(n, shared):
    if n == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return n * shared

got = []
try:
    for n, result in run_tasks(task, [0, 1, 2, 3], 10, Backend(jobs=2)):
        got.append(result)
except BackendError as exc:
    print("BackendError:", exc, "| got", sorted(got))
    sys.exit(3)
print("no error", sorted(got))
"""


def _python(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_a_worker_that_dies_ends_the_sweep_with_an_error_not_a_hang() -> None:
    proc = _python(DYING_WORKER)
    assert proc.returncode == 3, proc.stdout + proc.stderr[-4000:]
    assert "--jobs 2: a worker process died" in proc.stdout
    assert "run the same command again" in proc.stdout


def test_the_local_pool_returns_every_task_with_the_shared_object() -> None:
    proc = _python(DYING_WORKER.replace("n == 2", "n == -1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert "no error [0, 10, 20, 30]" in proc.stdout


def test_ray_backend_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BackendError, match=r"\[cluster\]"):
        backends._import_ray()


RAY_MISSING = importlib.util.find_spec("ray") is None or shutil.which("ray") is None


@pytest.mark.slow
@pytest.mark.skipif(RAY_MISSING, reason='needs Ray: pip install -e ".[cluster]"')
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="the Ray cluster runs in a private network namespace (needs root and unshare)",
)
def test_real_ray_cluster_with_a_killed_worker_gives_the_local_results(tmp_path: Path) -> None:
    _run([str(QUICK), *SMALL, "--out", str(tmp_path / "local")])
    script = ROOT / "test" / "ray_cluster_sweep.py"
    proc = subprocess.run(
        loopback_only([sys.executable, str(script), str(tmp_path / "ray"), str(QUICK), *SMALL]),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0, report["tail"]
    assert report["killed"] is not None, "no Ray worker was seen running a task"
    assert len(report["nodes"]) == 2 and all(n["cpus"] == 1 for n in report["nodes"])
    assert sweep.comparable_results(tmp_path / "ray") == sweep.comparable_results(
        tmp_path / "local"
    )


def test_only_the_backend_module_imports_ray() -> None:
    importers = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if any(
            line.strip().startswith(("import ray", "from ray"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert importers == ["src/gossip_learning/backends.py"]
    probe = (
        "import sys, gossip_learning.sweep, gossip_learning.reproduce, gossip_learning.cli;"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_address_where_nothing_listens_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    if RAY_MISSING:
        pytest.skip('needs Ray: pip install -e ".[cluster]"')
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    args = [str(QUICK), "--out", str(out), "--backend", "ray", "--address", f"127.0.0.1:{port}"]
    with pytest.raises(BackendError, match="no Ray head answers"):
        sweep.main(args)
    assert not out.exists()
