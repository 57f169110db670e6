"""tools/mutation.py: how mutants are counted, sampled and configured (no mutmut run here; the
seeded slice that runs mutmut is test_mutation_slice.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]
mutation = load_tool("mutation")


def test_the_committed_mutmut_table_is_the_one_for_every_module() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert text.endswith(mutation.mutmut_table(list(mutation.MODULES.values())))
    table = tomllib.loads(text)["tool"]["mutmut"]
    assert table["source_paths"] == ["src/"]
    assert set(table["also_copy"]) >= {"config/", "tools/"}
    for m in mutation.MODULES.values():
        assert (ROOT / m.source).is_file(), m.source
        assert m.source in table["only_mutate"]
        for t in m.tests:
            assert (ROOT / t).is_file(), t
            assert t in table["pytest_add_cli_args_test_selection"]


def test_the_listed_modules_are_the_protocols_guarantees() -> None:
    assert set(mutation.MODULES) == {
        "aggregation", "pose_check", "schedule", "auth", "wire", "dkmeans", "learning.kernels",
        "learning.numpy_trainer", "protocol.window", "protocol.pairwise", "protocol.exchange",
        "protocol.inbox", "protocol.handoff", "protocol.membership", "protocol.outbox",
        "protocol.bounds",
    }  # fmt: skip
    assert mutation.MODULES["protocol.window"].dotted == "gossip_learning.protocol.window"


def test_a_partial_table_replaces_the_committed_one() -> None:
    tomllib = pytest.importorskip("tomllib")
    text = "[tool.ruff]\nx = 1\n\n[tool.mutmut]\nold = 1\n"
    out = mutation.with_table(text, mutation.mutmut_table([mutation.MODULES["schedule"]]))
    table = tomllib.loads(out)["tool"]["mutmut"]
    assert table["only_mutate"] == ["src/gossip_learning/schedule.py"]
    assert "old" not in table and tomllib.loads(out)["tool"]["ruff"] == {"x": 1}
    with pytest.raises(SystemExit, match=r"no \[tool.mutmut\]"):
        mutation.with_table("[tool.ruff]\n", "")


def test_the_sample_is_fixed_by_the_seed() -> None:
    names = [f"m.x_f__mutmut_{i}" for i in range(100)]
    a = mutation.sample(names, 10, seed=3)
    assert a == mutation.sample(names, 10, seed=3) and len(set(a)) == 10
    assert a != mutation.sample(names, 10, seed=4)
    assert mutation.sample(names, None, seed=3) == names
    assert mutation.sample(names, 500, seed=3) == names


def test_mutant_names_are_mutmuts() -> None:
    names = mutation.mutant_names(mutation.MODULES["pose_check"])
    assert len(names) > 50
    assert all(n.startswith("gossip_learning.pose_check.x") and "__mutmut_" in n for n in names)


def test_counting_timeouts_no_tests_and_equivalent_mutants() -> None:
    verdicts = {
        "a": "killed", "b": "killed", "c": "timeout", "d": "survived", "e": "no tests",
        "f": "survived", "g": "killed", "h": "segfault",
    }  # fmt: skip
    entry = mutation.summarise(
        mutation.MODULES["schedule"], 120, verdicts, {"f": "same output", "g": "listed wrongly"}
    )
    assert (entry["killed"], entry["timed_out"], entry["survived"]) == (3, 1, 1)
    assert (entry["no_tests"], entry["other"], entry["equivalent"]) == (1, 1, 1)
    assert entry["score"] == round(4 / 7, 4)  # (3 killed + 1 timeout) / (8 − 1 equivalent)
    assert entry["equivalent_names"] == ["f"]
    assert entry["listed_equivalent_but_killed"] == ["g"]
    assert entry["survivors"] == ["d (survived)", "e (no tests)", "h (segfault)"]
    assert (entry["mutants"], entry["mutants_in_module"]) == (8, 120)


def test_an_equivalent_mutant_needs_a_reason(tmp_path: Path) -> None:
    f = tmp_path / "eq.yaml"
    f.write_text("gossip_learning.schedule.x_f__mutmut_1: ''\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="needs a reason"):
        mutation.load_equivalent(f)
    f.write_text("gossip_learning.schedule.x_f__mutmut_1: same result\n", encoding="utf-8")
    assert mutation.load_equivalent(f) == {"gossip_learning.schedule.x_f__mutmut_1": "same result"}
    assert mutation.load_equivalent(tmp_path / "none.yaml") == {}


def test_the_committed_equivalent_list_names_real_mutants() -> None:
    by_module: dict[str, list[str]] = {}
    for name in mutation.load_equivalent():
        key = next(k for k, m in mutation.MODULES.items() if name.startswith(m.dotted + ".x"))
        by_module.setdefault(key, []).append(name)
    for key, names in by_module.items():
        assert set(names) <= set(mutation.mutant_names(mutation.MODULES[key])), key


def test_docs_results_refuses_a_dirty_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    def dirty(command: list[str]) -> dict[str, object]:
        return {"git_commit": "abc+local changes", "command": " ".join(command), "machine": {}}

    monkeypatch.setattr(mutation, "run_info", dirty)
    monkeypatch.setattr(mutation, "measure", lambda *a: pytest.fail("ran from a dirty tree"))
    with pytest.raises(SystemExit, match="uncommitted changes"):
        mutation.main(["--module", "schedule"])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit):
        mutation.main(["--max-mutants", "0"])
    with pytest.raises(SystemExit):
        mutation.main(["--module", "nope"])


def test_the_committed_record_says_where_each_module_came_from() -> None:
    path = ROOT / "docs" / "results" / "mutation.json"
    if not path.is_file():
        pytest.skip("docs/results/mutation.json not measured yet")
    rec = json.loads(path.read_text(encoding="utf-8"))
    assert rec["threshold"] == mutation.THRESHOLD
    assert rec["run_info"]["git_commit"] and rec["run_info"]["command"]
    for m in rec["modules"]:
        assert m["key"] in mutation.MODULES
        info = m["run_info"]
        assert len(info["git_commit"].split("+")[0]) == 40 and info["dirty"] is False, m["key"]
        assert info["command"].startswith("python tools/mutation.py")
        assert (
            m["killed"]
            + m["timed_out"]
            + m["survived"]
            + m["no_tests"]
            + m["other"]
            + m["equivalent"]
            == m["mutants"]
        )


def test_merging_keeps_each_modules_run_and_refuses_dirty_ones(tmp_path: Path) -> None:
    def entry(key: str, commit: str, dirty: bool) -> dict[str, object]:
        return {"key": key, "score": 0.9, "run_info": {"git_commit": commit, "dirty": dirty}}

    out = tmp_path / "mutation.json"
    first = {"run_info": {"git_commit": "a"}, "modules": [entry("schedule", "a", False)]}
    assert mutation.merge_into(out, first) == 0
    mutation.merge_into(
        out, {"modules": [entry("auth", "b", False), entry("schedule", "c", False)]}
    )
    rec = json.loads(out.read_text(encoding="utf-8"))
    assert [(m["key"], m["run_info"]["git_commit"]) for m in rec["modules"]] == [
        ("schedule", "c"), ("auth", "b")
    ]  # fmt: skip
    assert "schedule" not in rec["not_run"] and "wire" in rec["not_run"]
    assert rec["run_info"] == {"git_commit": "a"}  # the second file named no run of its own
    mutation.merge_into(
        out, {"run_info": {"git_commit": "e"}, "modules": [entry("wire", "e", False)]}
    )
    assert json.loads(out.read_text(encoding="utf-8"))["run_info"] == {"git_commit": "e"}
    with pytest.raises(SystemExit, match="uncommitted changes: auth"):
        mutation.merge_into(
            mutation.RESULTS / "never_written.json", {"modules": [entry("auth", "d", True)]}
        )
