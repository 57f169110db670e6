"""Where the tasks of a sweep run: a local process pool (the default) or a Ray cluster.

A sweep is a list of independent tasks (one per experiment and seed) and one read-only object
that every task needs (the datasets). ``run_tasks`` yields each task's result as it finishes, in
any order; the caller writes it down, so the results folder is the checkpoint.

- ``local``: the tasks run in this process (``jobs`` 1) or in a pool of forked processes that
  inherit the shared object; a worker that dies ends the sweep with an error (never a hang).
- ``ray``: one Ray task per sweep task on an existing cluster (``--address HOST:PORT`` or
  ``auto``). The shared object is put in Ray's object store once and reaches each node once,
  not once per task. A task whose worker dies is retried (``max_retries``); a task that raises
  fails the sweep. Ray is an optional extra (``pip install -e ".[cluster]"``): only this module
  imports it, and only for ``--backend ray``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Generic, TextIO, TypeVar

from gossip_learning.errors import GossipLearningError

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("local", "ray")
#: How often Ray runs a task again after its worker process or node died.
RAY_TASK_RETRIES = 3


class BackendError(GossipLearningError):
    """A sweep backend that cannot be used as asked (names the option to change)."""


@dataclass(frozen=True)
class Backend:
    """``kind`` local or ray; ``jobs`` processes for local; ``address`` of a Ray head."""

    kind: str = "local"
    jobs: int = 1
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise BackendError(f"--backend: {self.kind!r} is not one of {', '.join(BACKENDS)}")
        if self.jobs < 1:
            raise BackendError(f"--jobs: {self.jobs} must be at least 1")
        if self.kind == "local" and self.address:
            raise BackendError("--address is for --backend ray (a Ray head HOST:PORT or 'auto')")


def add_backend_args(p: argparse.ArgumentParser, jobs_help: str = "local processes") -> None:
    """``--backend``, ``--address`` and ``--jobs`` on a sweep command's parser."""
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where the tasks run: local process pool (default) or an existing Ray cluster",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="HOST:PORT",
        help="Ray head to connect to, or 'auto' (default for --backend ray: $RAY_ADDRESS, "
        "else auto)",
    )
    p.add_argument("--jobs", type=int, default=1, help=f"{jobs_help} in parallel (1 thread each)")


def backend_from_args(args: argparse.Namespace) -> Backend:
    """The Backend an ``add_backend_args`` parser asked for (checked before any work)."""
    backend = Backend(args.backend, args.jobs, args.address)
    if backend.kind == "ray":  # connect now: fail before any folder or feature cache is made
        _ray_init(_import_ray(), backend.address)
    return backend


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendError(
            "--backend ray needs Ray: pip install -e \".[cluster]\" (or pip install 'ray>=2.40')"
        ) from exc
    return ray


class Progress:
    """A progress bar over all tasks: ``[done/total] pct elapsed eta last-task`` on ``stream``.
    On a terminal the line is redrawn; elsewhere one line per finished task."""

    def __init__(self, total: int, stream: TextIO | None = None, done: int = 0) -> None:
        self.total = total
        self.done = done
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self._started = done
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, label: str) -> str:
        """The bar for the current count, ending in ``label``."""
        elapsed = time.perf_counter() - self.t0
        ran = self.done - self._started
        left = self.total - self.done
        eta = f"{elapsed / ran * left:.0f} s" if ran else "?"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        width = 20
        fill = int(width * pct / 100)
        bar = "#" * fill + "." * (width - fill)
        return (
            f"[{bar}] {self.done}/{self.total} ({pct:.0f} %) "
            f"elapsed {elapsed:.0f} s, eta {eta} | {label}"
        )

    def advance(self, label: str) -> None:
        self.done += 1
        text = self.line(label)
        if self._tty:
            end = "\n" if self.done >= self.total else ""
            print(f"\r\033[K{text}", end=end, file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)


class _PoolWorker:
    """A pool worker's copy of the sweep's shared object, set once when the worker starts
    (``initializer``; with fork it is inherited, not pickled). The parent never sets it."""

    shared: Any = None

    @staticmethod
    def start(shared: Any) -> None:
        _PoolWorker.shared = shared


@dataclass(frozen=True)
class _Call(Generic[T, R]):
    fn: Callable[[T, Any], R]

    def __call__(self, task: T) -> tuple[T, R]:
        return task, self.fn(task, _PoolWorker.shared)


def run_tasks(
    fn: Callable[[T, Any], R], tasks: Sequence[T], shared: Any, backend: Backend
) -> Iterator[tuple[T, R]]:
    """Run ``fn(task, shared)`` for every task on ``backend``; yield ``(task, result)`` as each
    finishes. ``fn`` must be a module-level function (it is pickled)."""
    if not tasks:
        return
    if backend.kind == "ray":
        yield from _run_ray(fn, tasks, shared, backend.address)
    elif backend.jobs == 1 or len(tasks) == 1:
        for task in tasks:
            yield task, fn(task, shared)
    else:
        yield from _run_local_pool(fn, tasks, shared, min(backend.jobs, len(tasks)))


def _run_local_pool(
    fn: Callable[[T, Any], R], tasks: Sequence[T], shared: Any, jobs: int
) -> Iterator[tuple[T, R]]:
    """``jobs`` forked processes. A worker that dies (killed, out of memory, a crash in native
    code) ends the sweep with a BackendError at once: the tasks already written stay, and a
    rerun does the rest."""
    pool = ProcessPoolExecutor(
        jobs, mp_context=mp.get_context("fork"), initializer=_PoolWorker.start, initargs=(shared,)
    )
    finished = False
    try:
        futures = [pool.submit(_Call(fn), task) for task in tasks]
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool as exc:
                raise BackendError(
                    f"--jobs {jobs}: a worker process died ({exc}); the results written so far "
                    "are kept: run the same command again to finish the rest"
                ) from exc
        finished = True
    finally:
        if not finished:  # an error or Ctrl-C here: stop the tasks still running, not wait
            for worker in list((pool._processes or {}).values()):
                worker.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_init(ray: Any, address: str | None) -> None:
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    target = address or os.environ.get("RAY_ADDRESS") or "auto"
    _check_reachable(target)
    try:
        ray.init(address=target, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BackendError(
            f"--address {target}: cannot connect to a Ray cluster ({exc}); start one with "
            "`ray start --head` or name its head as HOST:PORT"
        ) from exc


def _check_reachable(target: str, timeout_s: float = 5.0) -> None:
    """A HOST:PORT that nothing listens on fails here in seconds (Ray itself retries for
    minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    host, sep, port = target.rpartition(":")
    if target == "auto" or "://" in target or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BackendError(
            f"--address {target}: no Ray head answers there ({exc.strerror or exc}); start one "
            "with `ray start --head --port PORT` or name a running head as HOST:PORT"
        ) from exc


def _run_ray(
    fn: Callable[[T, Any], R], tasks: Sequence[T], shared: Any, address: str | None
) -> Iterator[tuple[T, R]]:
    ray = _import_ray()
    _ray_init(ray, address)
    remote = ray.remote(num_cpus=1, max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(fn)
    shared_ref = ray.put(shared)  # stored once; each node fetches it once
    pending = {remote.remote(task, shared_ref): task for task in tasks}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                yield task, ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def backend_info(backend: Backend) -> dict[str, Any]:
    """Provenance of where a sweep ran: the backend, its nodes and their CPU counts."""
    if backend.kind == "local":
        nodes = [{"host": socket.gethostname(), "cpus": os.cpu_count()}]
        return {"backend": "local", "jobs": backend.jobs, "nodes": nodes}
    ray = _import_ray()
    _ray_init(ray, backend.address)
    nodes = [
        {
            "host": n.get("NodeManagerHostname", ""),
            "address": n.get("NodeManagerAddress", ""),
            "cpus": int(n.get("Resources", {}).get("CPU", 0)),
        }
        for n in ray.nodes()
        if n.get("Alive")
    ]
    nodes.sort(key=lambda n: (n["address"], n["host"], n["cpus"]))
    return {"backend": "ray", "ray_version": ray.__version__, "nodes": nodes}


@contextlib.contextmanager
def local_ray_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[str]:
    """A real Ray cluster on this machine, bound to 127.0.0.1: a head (``ray start --head``) and
    ``nodes - 1`` worker nodes; yields the head's ``HOST:PORT`` and stops the cluster after.
    For tests and the backend benchmark (run it inside a private network namespace)."""
    if shutil.which("ray") is None:
        raise BackendError(
            'a local Ray cluster needs the `ray` command: pip install -e ".[cluster]"'
        )
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": ""}
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--disable-usage-stats"]

    def ray_cli(*args: str) -> None:
        subprocess.run(["ray", *args], check=True, env=env, capture_output=True, timeout=300)

    try:
        ray_cli("start", "--head", f"--port={port}", f"--temp-dir={tmp}",
                "--include-dashboard=false", *common)  # fmt: skip
        for _ in range(nodes - 1):
            ray_cli("start", f"--address=127.0.0.1:{port}", *common)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
