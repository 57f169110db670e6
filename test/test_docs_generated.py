"""The published numbers: README.md and docs/ agree with the committed JSON in docs/results/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]


render_docs = load_tool("render_docs")


def test_docs_match_the_committed_results() -> None:
    """Fails when a table or value in README.md/docs was edited by hand or the JSON changed."""
    assert render_docs.main(["--check"]) == 0


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
    (run / "run_info.json").write_text(json.dumps({"command": "c"}), encoding="utf-8")
    out = tmp_path / "results"
    out.mkdir()
    monkeypatch.setattr(render_docs, "RESULTS", out)
    monkeypatch.setattr(render_docs, "ROOT", tmp_path)
    monkeypatch.setattr(render_docs, "PAGES", ())
    assert render_docs.main(["--import-run", str(run), "qs"]) == 0
    assert json.loads((out / "qs.json").read_text()) == {
        "run_info": {"command": "c"},
        "summary": {"methods": {}},
    }
    with pytest.raises(SystemExit, match="not found"):
        render_docs.main(["--import-run", str(tmp_path / "missing"), "x"])
