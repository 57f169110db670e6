"""Mutation testing of the modules that carry the protocol's guarantees (mutmut 3).

    python tools/mutation.py                                   # every module, every mutant
    python tools/mutation.py --module aggregation --module schedule
    python tools/mutation.py --module aggregation --max-mutants 20 --seed 1 --out /tmp/m.json
    python tools/mutation.py --list                            # modules, tests, mutant counts

Each run copies the committed files of this checkout (``git ls-files``, as they are on disk) into
a scratch folder, writes there the ``[tool.mutmut]`` table for the chosen modules (source and the
tests that guard it, from :data:`MODULES`; the committed table in pyproject.toml is the one for
every module) and runs ``mutmut run`` on the chosen mutants by name. mutmut runs, for each mutant,
only the tests that call the mutated function. A mutant is *killed* when a test fails,
*timed out* when the tests ran past mutmut's limit (counted as killed: the mutant did not pass),
*survived* when every test passed and *no tests* when no selected test calls its function
(counted as survived).

Surviving mutants that are equivalent (no test can tell them from the original: same output,
same effects) are listed with the reason in ``tools/mutation_equivalent.yaml``; they are left out
of the score and reported beside it. The score of a module is
``(killed + timed out) / (mutants tested − equivalent)``.

The result goes to ``docs/results/mutation.json`` (``--out``): per module the mutants tested,
killed, survived, timed out, no tests, equivalent, score and the surviving names; the commit read
before the run starts, whether the tree had uncommitted changes (refused for docs/results unless
``--allow-dirty``), the command and the machine. A run on some modules keeps the other modules'
entries of an existing file, each with its own run record. Exit status 1 when a module scores
under ``--threshold``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gossip_learning.provenance import run_info  # noqa: E402

RESULTS = ROOT / "docs" / "results"
EQUIVALENT = ROOT / "tools" / "mutation_equivalent.yaml"
THRESHOLD = 0.85
PACKAGE = "gossip_learning"


@dataclass(frozen=True)
class Module:
    """A module under mutation and the test files that guard it."""

    path: str  # relative to src/gossip_learning
    tests: tuple[str, ...]

    @property
    def source(self) -> str:
        return f"src/{PACKAGE}/{self.path}"

    @property
    def dotted(self) -> str:
        return f"{PACKAGE}." + self.path.removesuffix(".py").replace("/", ".")


_PROTOCOL_TESTS = (
    "test/test_agent_inprocess.py",
    "test/test_agent_memory.py",
    "test/test_redteam.py",
    "test/test_driver.py",
    "test/test_mutation_protocol.py",
    "test/test_mutation_inbox.py",
    "test/test_mutation_membership.py",
    "test/test_repeat_loss.py",
)
MODULES: dict[str, Module] = {
    "aggregation": Module(
        "aggregation.py", ("test/test_aggregation.py", "test/test_mutation_aggregation.py")
    ),
    "pose_check": Module(
        "pose_check.py", ("test/test_pose_check.py", "test/test_mutation_pose_check.py")
    ),
    "schedule": Module("schedule.py", ("test/test_schedule.py", "test/test_mutation_schedule.py")),
    "auth": Module(
        "auth.py", ("test/test_auth.py", "test/test_wire.py", "test/test_mutation_auth.py")
    ),
    "wire": Module(
        "wire.py",
        (
            "test/test_wire.py",
            "test/test_wire_fuzz.py",
            "test/test_auth.py",
            "test/test_mutation_wire.py",
            "test/test_mutation_wire2.py",
        ),
    ),
    "dkmeans": Module(
        "dkmeans.py",
        ("test/test_dkmeans.py", "test/test_clusters.py", "test/test_mutation_dkmeans.py"),
    ),
    "learning.kernels": Module(
        "learning/kernels.py", ("test/test_numpy_trainer.py", "test/test_mutation_learning.py")
    ),
    "learning.numpy_trainer": Module(
        "learning/numpy_trainer.py",
        ("test/test_numpy_trainer.py", "test/test_mutation_learning.py"),
    ),
    "protocol.bounds": Module(
        "protocol/bounds.py", ("test/test_bounds.py", "test/test_dist_median.py")
    ),
    **{
        f"protocol.{name}": Module(f"protocol/{name}.py", _PROTOCOL_TESTS)
        for name in ("window", "pairwise", "exchange", "inbox", "handoff", "membership", "outbox")
    },
}
ALSO_COPY = ("config/", "tools/")  # test/ is copied by mutmut itself
PYTEST_ARGS = ("-p", "no:cacheprovider", "-m", "not slow and not acceptance and not ros")

# mutmut's exit codes, grouped the way the score counts them (mutmut.stats.status_by_exit_code)
STATUS = {
    "killed": "killed",
    "timeout": "timed_out",
    "survived": "survived",
    "no tests": "no_tests",
}


def mutmut_table(modules: Sequence[Module]) -> str:
    """The ``[tool.mutmut]`` table for ``modules`` (pyproject.toml holds the one for all)."""
    tests = sorted({t for m in modules for t in m.tests})

    def arr(items: Sequence[str]) -> str:
        return "[\n" + "".join(f'  "{i}",\n' for i in items) + "]"

    return (
        "[tool.mutmut]\n"
        "# Written by `python tools/mutation.py --write-config` (tools/mutation.py has the\n"
        "# modules and the tests that guard each): run that tool, not `mutmut run`, to measure.\n"
        'source_paths = ["src/"]\n'
        f"only_mutate = {arr([m.source for m in modules])}\n"
        f"also_copy = {arr(ALSO_COPY)}\n"
        f"pytest_add_cli_args = {arr(PYTEST_ARGS)}\n"
        f"pytest_add_cli_args_test_selection = {arr(tests)}\n"
    )


def with_table(pyproject: str, table: str) -> str:
    """``pyproject`` with its ``[tool.mutmut]`` table (the file's last) replaced by ``table``."""
    head, sep, _ = pyproject.partition("[tool.mutmut]\n")
    if not sep:
        raise SystemExit("error: pyproject.toml has no [tool.mutmut] table")
    return head + table


def mutant_names(module: Module, root: Path = ROOT) -> list[str]:
    """Every mutant mutmut makes of ``module`` (its names, as ``mutmut run`` takes them)."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    code = (root / module.source).read_text(encoding="utf-8")
    names = mutate_file_contents(module.source, code).mutant_names
    return sorted(get_mutant_name(Path(module.source), n) for n in names)


def sample(names: list[str], max_mutants: int | None, seed: int) -> list[str]:
    """At most ``max_mutants`` of ``names``, the same ones for the same seed."""
    if max_mutants is None or max_mutants >= len(names):
        return names
    return sorted(random.Random(seed).sample(names, max_mutants))


def load_equivalent(path: Path = EQUIVALENT) -> dict[str, str]:
    """Mutant name -> why it is equivalent."""
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for name, reason in data.items():
        if not isinstance(reason, str) or not reason.strip():
            raise SystemExit(f"error: {path.name}: '{name}' needs a reason")
    return dict(data)


def copy_tree(root: Path, dest: Path) -> None:
    """The files git tracks in ``root`` (as they are on disk) into ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in files:
        rel = raw.decode()
        src = root / rel
        if rel and src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def statuses(work: Path, module: Module, names: Sequence[str]) -> dict[str, str]:
    """mutmut's verdict on each of ``names`` (from its ``.meta`` file of the module)."""
    from mutmut.stats import status_by_exit_code

    meta = json.loads((work / "mutants" / f"{module.source}.meta").read_text(encoding="utf-8"))
    codes = meta["exit_code_by_key"]
    return {n: status_by_exit_code[codes.get(n)] for n in names}


def summarise(
    module: Module, total: int, verdicts: dict[str, str], equivalent: dict[str, str]
) -> dict[str, Any]:
    """One module's entry of mutation.json."""
    counts = dict.fromkeys(("killed", "timed_out", "survived", "no_tests", "other"), 0)
    survivors, equiv, stale = [], [], []
    for name, status in sorted(verdicts.items()):
        key = STATUS.get(status, "other")
        if name in equivalent:
            if key in ("survived", "no_tests"):
                equiv.append(name)
                continue
            stale.append(name)  # listed as equivalent, yet a test tells it apart
        counts[key] += 1
        if key in ("survived", "no_tests", "other"):
            survivors.append(f"{name} ({status})")
    scored = len(verdicts) - len(equiv)
    detected = counts["killed"] + counts["timed_out"]
    return {
        "module": module.dotted,
        "source": module.source,
        "tests": list(module.tests),
        "mutants_in_module": total,
        "mutants": len(verdicts),
        **counts,
        "equivalent": len(equiv),
        "score": round(detected / scored, 4) if scored else None,
        "survivors": survivors,
        "equivalent_names": equiv,
        "listed_equivalent_but_killed": stale,
    }


def run_mutmut(work: Path, names: Sequence[str], jobs: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"
    cmd = [mutmut, "run", "--max-children", str(jobs), *names]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    (work / "mutmut.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise SystemExit(f"error: mutmut run failed ({proc.returncode}):\n{tail}")


def measure(
    modules: dict[str, Module], max_mutants: int | None, seed: int, jobs: int, keep: Path | None
) -> dict[str, dict[str, Any]]:
    """Run mutmut on ``modules`` in a scratch copy; each module's entry of mutation.json."""
    equivalent = load_equivalent()
    work = Path(tempfile.mkdtemp(prefix="mutation-")) if keep is None else keep
    try:
        copy_tree(ROOT, work)
        py = work / "pyproject.toml"
        py.write_text(
            with_table(py.read_text(encoding="utf-8"), mutmut_table(list(modules.values()))),
            encoding="utf-8",
        )
        chosen = {
            key: (len(all_names), sample(all_names, max_mutants, seed))
            for key, m in modules.items()
            for all_names in [mutant_names(m, work)]
        }
        start = time.monotonic()
        run_mutmut(work, [n for _, names in chosen.values() for n in names], jobs)
        seconds = time.monotonic() - start
        out = {}
        for key, (total, names) in chosen.items():
            entry = summarise(modules[key], total, statuses(work, modules[key], names), equivalent)
            entry["seconds_all_modules"] = round(seconds, 1)
            out[key] = entry
        return out
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def write_record(out: Path, entries: list[dict[str, Any]], info: dict[str, Any] | None) -> None:
    """``out`` with ``entries`` (one per module, each with its ``run_info``) replacing the
    modules' earlier entries; ``info``: the latest run (None: keep the file's)."""
    old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    merged = {m["key"]: m for m in old.get("modules", []) if m.get("key") in MODULES}
    merged.update((e["key"], e) for e in entries)
    record = {
        "run_info": info or old.get("run_info"),  # the latest run; each module keeps its own
        "threshold": THRESHOLD,
        "score": "(killed + timed_out) / (mutants - equivalent); no_tests count as survived",
        "modules": [merged[k] for k in MODULES if k in merged],
        "not_run": [k for k in MODULES if k not in merged],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def merge_into(out: Path, other: dict[str, Any]) -> int:
    """Copy ``other``'s module entries into ``out`` (refused: entries from a dirty tree); its
    ``run_info`` (the run that made it) becomes the record's latest run."""
    entries = [m for m in other.get("modules", []) if m.get("key") in MODULES]
    dirty = [m["key"] for m in entries if m["run_info"].get("dirty")]
    if dirty and out.resolve().is_relative_to(RESULTS.resolve()):
        raise SystemExit(f"error: measured with uncommitted changes: {', '.join(dirty)}")
    write_record(out, entries, other.get("run_info"))  # the latest run, if it has one
    print(f"merged {', '.join(m['key'] for m in entries)} into {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--module", action="append", choices=sorted(MODULES), help="(repeatable)")
    p.add_argument("--max-mutants", type=int, help="per module, a seeded sample (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants in parallel")
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    p.add_argument("--out", type=Path, default=RESULTS / "mutation.json")
    p.add_argument("--allow-dirty", action="store_true", help="write docs/results from a tree "
                   "with uncommitted changes (recorded as such)")  # fmt: skip
    p.add_argument("--keep", type=Path, help="work in this folder and keep it (mutmut browse)")
    p.add_argument("--list", action="store_true", help="list modules and mutant counts, run none")
    p.add_argument("--merge", type=Path, help="copy the module entries of another mutation.json "
                   "(each with the run that measured it) into --out, run none")  # fmt: skip
    p.add_argument("--write-config", action="store_true",
                   help="write pyproject.toml's [tool.mutmut] table (every module)")  # fmt: skip
    args = p.parse_args(argv)
    if args.max_mutants is not None and args.max_mutants < 1:
        p.error("--max-mutants must be >= 1")
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    modules = {k: MODULES[k] for k in (args.module or MODULES)}
    if args.write_config:
        py = ROOT / "pyproject.toml"
        table = mutmut_table(list(MODULES.values()))
        py.write_text(with_table(py.read_text(encoding="utf-8"), table), encoding="utf-8")
        return 0
    if args.list:
        for key, m in modules.items():
            print(f"{key:24} {len(mutant_names(m)):5d} mutants  {' '.join(m.tests)}")
        return 0
    if args.merge:
        return merge_into(args.out, json.loads(args.merge.read_text(encoding="utf-8")))
    command = ["python", "tools/mutation.py", *(argv if argv is not None else sys.argv[1:])]
    info = run_info(command)  # read before the run: the commit that is measured
    dirty = bool(info.get("git_dirty")) or info["git_commit"].endswith("+local changes")
    out = args.out.resolve()
    if dirty and out.is_relative_to(RESULTS.resolve()) and not args.allow_dirty:
        raise SystemExit(
            "error: uncommitted changes: commit first, or pass --allow-dirty "
            "(the result then says so)"
        )
    info.update(
        dirty=dirty,
        mutmut=_mutmut_version(),
        max_mutants=args.max_mutants,
        seed=args.seed,
        jobs=args.jobs,
    )
    results = measure(modules, args.max_mutants, args.seed, args.jobs, args.keep)
    info["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    write_record(out, [{"key": k, **e, "run_info": info} for k, e in results.items()], info)
    low = []
    for key, entry in results.items():
        print(
            f"{key:24} {entry['mutants']:4d} mutants  killed {entry['killed']:4d}  "
            f"timed out {entry['timed_out']:3d}  survived {entry['survived']:3d}  "
            f"no tests {entry['no_tests']:3d}  equivalent {entry['equivalent']:3d}  "
            f"score {entry['score']}"
        )
        for s in entry["survivors"]:
            print(f"    survived: {s}")
        if entry["score"] is not None and entry["score"] < args.threshold:
            low.append(key)
    print(f"wrote {out}")
    if low:
        print(f"under the threshold {args.threshold}: {', '.join(low)}")
        return 1
    return 0


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    sys.exit(main())
