"""The published numbers: README.md and docs/ agree with the committed JSON in docs/results/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]


render_docs = load_tool("render_docs")


def test_docs_match_the_committed_results() -> None:
    """Fails when a table or value in README.md/docs was edited by hand or the JSON changed."""
    assert render_docs.main(["--check"]) == 0


def _copy_of_the_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """README.md and docs/results/ copied into ``tmp_path``, the renderer pointed at the copy."""
    results = tmp_path / "docs" / "results"
    results.mkdir(parents=True)
    for f in render_docs.RESULTS.glob("*.json"):
        (results / f.name).write_bytes(f.read_bytes())
    readme = tmp_path / "README.md"
    readme.write_bytes((ROOT / "README.md").read_bytes())
    monkeypatch.setattr(render_docs, "ROOT", tmp_path)
    monkeypatch.setattr(render_docs, "RESULTS", results)
    monkeypatch.setattr(render_docs, "PAGES", ("README.md",))
    return readme, results


def test_check_fails_on_a_page_edited_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme, _ = _copy_of_the_docs(tmp_path, monkeypatch)
    assert render_docs.main(["--check"]) == 0  # the untouched copy is current
    text = readme.read_text(encoding="utf-8")
    row = "| bilayer | "
    assert row in text
    readme.write_text(text.replace(row, "| bilayer | 0.999 | ", 1), encoding="utf-8")
    before = readme.read_text(encoding="utf-8")
    assert render_docs.main(["--check"]) == 1
    assert "README.md: block quickstart" in capsys.readouterr().out
    assert readme.read_text(encoding="utf-8") == before  # --check writes nothing
    value = "<!--v:matching_quickstart/records/1/pairs_matched|.2f-->"
    assert value in text
    readme.write_text(text.replace(value + "0.", value + "1.", 1), encoding="utf-8")
    assert render_docs.main(["--check"]) == 1
    assert "value matching_quickstart/records/1/pairs_matched" in capsys.readouterr().out


def test_check_fails_when_a_result_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme, results = _copy_of_the_docs(tmp_path, monkeypatch)
    qs = results / "quickstart.json"
    record = json.loads(qs.read_text(encoding="utf-8"))
    record["summary"]["methods"]["bilayer"]["final_acc_mean"] -= 0.1
    qs.write_text(json.dumps(record), encoding="utf-8")
    assert render_docs.main(["--check"]) == 1
    assert "README.md: block quickstart" in capsys.readouterr().out
    assert render_docs.main([]) == 0  # rendering brings the page up to date
    assert render_docs.main(["--check"]) == 0
    assert readme.read_text(encoding="utf-8") != (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_results_file_says_where_it_came_from() -> None:
    for name, record in render_docs.load_results().items():
        if name == "paper_reference":
            assert "arXiv 2501.04817" in record["citation"]
            continue
        if name == "independent_reference":  # numbers quoted from an issue, not a command
            assert "Issue 12" in record["source"] and record["definition"]
            continue
        info = record.get("run_info") or record
        assert info.get("command"), name
        assert info.get("date"), name
        assert info.get("machine", {}).get("cpus"), name


#: Result files made before runs recorded a clean commit, still to be rerun (the command in each
#: file's ``command``; the page that shows it names it too). Empty this as they are rerun.
NOT_YET_RERUN: set[str] = set()


def _clean_commit(info: dict[str, object]) -> bool:
    commit = str(info.get("git_commit", ""))
    clean = info.get("git_dirty") is False or bool(info.get("allow_dirty"))
    return bool(re.fullmatch(r"[0-9a-f]{40}", commit)) and clean


def test_every_results_file_records_the_commit_it_ran_on() -> None:
    """Every file records a full commit and that the checkout was clean (or that it was allowed
    not to be); the files still to be rerun are listed by name, and only those."""
    lacking = set()
    for name, record in render_docs.load_results().items():
        if name in ("paper_reference", "independent_reference"):  # quoted, not run
            continue
        if not _clean_commit(record.get("run_info") or record):
            lacking.add(name)
    assert lacking == NOT_YET_RERUN, (
        f"no clean commit: {sorted(lacking - NOT_YET_RERUN)}; "
        f"rerun, drop from NOT_YET_RERUN: {sorted(NOT_YET_RERUN - lacking)}"
    )


def test_a_stale_value_or_block_is_reported(tmp_path: Path) -> None:
    data = {"q": {"acc": 0.91234, "none": None}}
    text = "acc <!--v:q/acc|.3f-->0.800<!--/v--> and <!--v:q/none|.1f-->x<!--/v-->\n"
    new = render_docs.render(text, data)
    assert new == "acc <!--v:q/acc|.3f-->0.912<!--/v--> and <!--v:q/none|.1f-->—<!--/v-->\n"
    assert render_docs.stale_parts(text, new) == [
        "value q/acc ('0.800' should be '0.912')",
        "value q/none ('x' should be '—')",
    ]
    block = "<!-- generated:t -->\nold\n<!-- /generated:t -->\n"
    out = render_docs.render(block, data, extra={"t": lambda d: f"acc {d['q']['acc']:.2f}\n"})
    assert out == "<!-- generated:t -->\nacc 0.91\n<!-- /generated:t -->\n"
    assert render_docs.stale_parts(block, out) == ["block t"]
    assert render_docs.fmt(0.0161, ".1fpts") == "1.6"


def test_unknown_block_is_an_error() -> None:
    with pytest.raises(KeyError, match="nope"):
        render_docs.render("<!-- generated:nope -->\n<!-- /generated:nope -->", {})


def test_import_run_copies_summary_and_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"methods": {}}), encoding="utf-8")
    info = {"command": "c", "git_commit": "a" * 40, "git_dirty": False}
    (run / "run_info.json").write_text(json.dumps(info), encoding="utf-8")
    out = tmp_path / "results"
    out.mkdir()
    monkeypatch.setattr(render_docs, "RESULTS", out)
    monkeypatch.setattr(render_docs, "ROOT", tmp_path)
    monkeypatch.setattr(render_docs, "PAGES", ())
    assert render_docs.main(["--import-run", str(run), "qs"]) == 0
    assert json.loads((out / "qs.json").read_text()) == {
        "run_info": info,
        "summary": {"methods": {}},
    }
    for bad in ({"git_dirty": True}, {"git_commit": "unknown"}, {"git_commit": "a" * 40 + "+x"}):
        (run / "run_info.json").write_text(json.dumps({**info, **bad}), encoding="utf-8")
        with pytest.raises(SystemExit, match="--allow-dirty"):
            render_docs.main(["--import-run", str(run), "dirty"])
        assert not (out / "dirty.json").exists()
    assert render_docs.main(["--import-run", str(run), "dirty", "--allow-dirty"]) == 0
    assert json.loads((out / "dirty.json").read_text())["run_info"]["allow_dirty"] is True
    with pytest.raises(SystemExit, match="not found"):
        render_docs.main(["--import-run", str(tmp_path / "missing"), "x"])


def test_import_reproduction_records_each_experiments_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reproduction folder extended from a later commit: the record names both commits and
    which experiments ran on each; an experiment with no clean commit is refused."""
    run = tmp_path / "run"
    (run / "x").mkdir(parents=True)
    (run / "y").mkdir()
    (run / "tables.json").write_text(json.dumps({"x": {}, "y": {}}), encoding="utf-8")
    info = {"command": "c", "git_commit": "b" * 40, "git_dirty": False, "date": "2026-12-07"}
    (run / "run_info.json").write_text(json.dumps(info), encoding="utf-8")
    for exp, commit in (("x", "a" * 40), ("y", "b" * 40)):
        exp_info = {**info, "git_commit": commit, "command": f"run {exp}"}
        (run / exp / "run_info.json").write_text(json.dumps(exp_info), encoding="utf-8")
    out = tmp_path / "results"
    out.mkdir()
    monkeypatch.setattr(render_docs, "RESULTS", out)
    monkeypatch.setattr(render_docs, "ROOT", tmp_path)
    monkeypatch.setattr(render_docs, "PAGES", ())
    assert render_docs.main(["--import-reproduction", str(run), "--name", "rep"]) == 0
    record = json.loads((out / "rep.json").read_text())
    assert record["run_info"]["experiment_runs"] == [
        {"command": "run x", "git_commit": "a" * 40, "experiments": ["x"]},
        {"command": "run y", "git_commit": "b" * 40, "experiments": ["y"]},
    ]
    line = render_docs.provenance({"rep": record}, "rep")
    assert "`run x` (commit aaaaaaaaaa: x_* (1)); `run y` (commit bbbbbbbbbb: y_* (1))" in line
    (run / "y" / "run_info.json").write_text(json.dumps({**info, "git_dirty": True}))
    with pytest.raises(SystemExit, match="no clean commit"):
        render_docs.main(["--import-reproduction", str(run), "--name", "rep2"])


# A figure: a number with two or more decimals, or a number with a unit of size, time, share or
# ratio. Outside the generated parts (blocks, values), code and link targets, every such figure
# must be one of these, which are not measurements: definitions (95 % of CFL), config inputs,
# limits and targets, datasheet values, arithmetic on them, and citations.
FIGURE = re.compile(
    r"(?<![\w.-])(\d+\.\d{2,}|\d[\d,]*(?:\.\d+)?\s?(?:MB|KiB|KB|kB|GB|ms|µs|s|minutes|%|×|x))"
    r"(?![\w.])"
)
NOT_MEASURED = {
    "README.md": {"2501.04817", "95 %", "100 ×"},
    "docs/results.md": {"100 ×", "0.05", "95 %"},
    "docs/vision.md": {"2501.04817"},
    "docs/ros.md": {
        "10 s", "2 s", "5 s", "2.14", "1 s", "0.25", "0.2 s", "60 s", "4 s", "80 MB",
        "0.5 s", "20 s", "0.842",  # pose period and monitor grace (settings); a log-line example
        "3 s", "30 s",  # start_delay per process, monitor grace (settings); "1 s": the stagger
    },
    "docs/robustness.md": {"30 %", "20 %", "95 %", "3 ×", "4 ×"},  # 3 ×, 4 ×: the ratio settings
    "docs/rp2040.md": {
        "264 KiB", "2 MB", "236 KB", "3 ×", "4 ×", "8 ×", "128 ×", "136 KiB", "82,048 ×", "0.9 s",
        "0.01",
        "2 KiB", "2 s", "50 ms", "5.6 ms",  # firmware settings; the line rate (arithmetic)
    },
    "docs/architecture.md": {"3 ×"},
    "docs/testing.md": {"0.85"},  # the mutation score target
    # fleet: skew settings, phase lengths and delays (config, harness); a frame: 650 × 4 B
    "docs/fleet.md": {
        "0 ms", "100 ms", "250 ms", "0.25", "0.3 s", "2 s", "4 s", "5 s", "8 s", "10 s", "20 s",
        "2.6 kB",
    },
}  # fmt: skip


def hand_written_figures(text: str) -> list[str]:
    """The figures in ``text`` outside generated blocks and values, code and link targets."""
    text = render_docs.VALUE_RE.sub(" ", render_docs.BLOCK_RE.sub(" ", text))
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return [m.group(1) for m in FIGURE.finditer(text)]


def test_no_measured_figure_is_written_by_hand() -> None:
    """Measured figures come from docs/results/ through the renderer; prose may not carry one."""
    for page in render_docs.PAGES:
        found = set(hand_written_figures((ROOT / page).read_text(encoding="utf-8")))
        assert found <= NOT_MEASURED.get(page, set()), (page, sorted(found - NOT_MEASURED[page]))


def test_a_figure_in_prose_is_found() -> None:
    text = (
        "The run ends at 0.912 (<!--v:q/acc|.3f-->0.912<!--/v-->), takes about 12 minutes and "
        "75 MB, `2.5 s` in code; 95 % of CFL.\n<!-- generated:t -->\n0.777 3 s\n"
        "<!-- /generated:t -->\n"
    )
    assert hand_written_figures(text) == ["0.912", "12 minutes", "75 MB", "95 %"]
