"""Provenance: the commit is read before a run, a dirty checkout is recorded, and nothing is
written into docs/results/ from one unless asked. Real git, in a repository made for the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gossip_learning import provenance, reproduce

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with a code file and a result file, committed; provenance asks it."""
    root = tmp_path / "repo"
    (root / "docs" / "results").mkdir(parents=True)
    (root / "code.py").write_text("x = 1\n")
    (root / "docs" / "results" / "r.json").write_text("{}\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "one")
    monkeypatch.setattr(provenance, "CHECKOUT", root)
    return root


def test_clean_dirty_and_outputs(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    assert provenance.git_record() == {"git_commit": head, "git_dirty": False}
    (repo / "docs" / "results" / "r.json").write_text('{"new": 1}\n')  # an output: still clean
    assert provenance.run_info(["c"])["git_dirty"] is False
    (repo / "code.py").write_text("x = 2\n")
    info = provenance.run_info(["c", "--x"])
    assert info["git_commit"] == head and info["command"] == "c --x"
    assert info["git_dirty"] is True and info["git_changed"] == ["code.py"]
    assert provenance.run_info(["c"], allow_dirty=True)["allow_dirty"] is True


def test_dirty_checkout_may_not_write_into_docs_results(repo: Path, tmp_path: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    dirty = provenance.git_record()
    with pytest.raises(SystemExit, match="--allow-dirty"):
        provenance.refuse_dirty(dirty, repo / "docs" / "results" / "new.json")
    provenance.refuse_dirty(dirty, tmp_path / "elsewhere.json")  # not published: fine
    provenance.refuse_dirty(provenance.git_record(allow_dirty=True), repo / "docs" / "results")
    _git(repo, "commit", "-qam", "two")
    provenance.refuse_dirty(provenance.git_record(), repo / "docs" / "results" / "new.json")


def test_a_benchmark_refuses_before_any_work_and_records_when_allowed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import _report

    out = repo / "docs" / "results" / "bench.json"
    (repo / "code.py").write_text("x = 2\n")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        _report.Report("b", ["b.py"], out=out)
    report = _report.Report("b", ["b.py"], out=out, allow_dirty=True)
    _git(repo, "commit", "-qam", "two")  # the commit moves during the "measurement"
    written = report.write(out)
    assert written["git_commit"] != _git(repo, "rev-parse", "HEAD")
    assert written["git_commit"] == _git(repo, "rev-parse", "HEAD~1")
    assert written["git_dirty"] is True and written["allow_dirty"] is True
    assert json.loads(out.read_text())["git_changed"] == ["code.py"]


def test_reproduce_records_the_commit_from_before_the_run(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _git(repo, "rev-parse", "HEAD")

    def run_and_commit(*_args: Any) -> dict[str, Any]:  # the run ends on another commit
        (repo / "code.py").write_text(f"x = {len(_git(repo, 'log', '--oneline'))}\n")
        _git(repo, "commit", "-qam", "during the run")
        return {"backend": "local"}

    monkeypatch.setattr(reproduce, "run_sweep", run_and_commit)
    monkeypatch.setattr(reproduce, "write_tables", lambda out, exps: "")
    out = tmp_path / "paper"
    assert reproduce.main(["--only", "iid_n30", "--out", str(out)]) == 0
    info = json.loads((out / "run_info.json").read_text())
    assert info["git_commit"] == before != _git(repo, "rev-parse", "HEAD")
    assert info["git_dirty"] is False
    assert len(info["machine"]["load_avg"]) == 3 and len(info["machine"]["load_avg_after"]) == 3


def test_an_older_checkout_without_provenance_records_its_own_commit(tmp_path: Path) -> None:
    """The before-rework benchmark runs today's script on an older checkout (PYTHONPATH) whose
    package has no provenance module: the report names that checkout's commit and clean state."""
    old = tmp_path / "old"
    pkg = old / "src" / "gossip_learning"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "atomic.py").write_text(
        "from pathlib import Path\n\n\ndef write_text(path, text):\n"
        "    Path(path).write_text(text)\n"
    )
    _git(old, "init", "-q")
    _git(old, "add", ".")
    _git(old, "commit", "-qm", "old")
    code = "import _report, json; print(json.dumps(_report.Report('b', ['b.py']).git))"
    env = {"PYTHONPATH": f"{old / 'src'}:{BENCH}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert json.loads(out) == {"git_commit": _git(old, "rev-parse", "HEAD"), "git_dirty": False}
    (pkg / "__init__.py").write_text("x = 1\n")
    dirty = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert json.loads(dirty)["git_changed"] == ["src/gossip_learning/__init__.py"]
