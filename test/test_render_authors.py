"""docs/results.md's authors tables (issue 22): our protocol's columns come from the authors run
when it has them, else from paper.json (and the provenance line says which files were read);
the table of causes computes the sample-weighted gap against the same CFL run."""

from __future__ import annotations

from typing import Any

from tool_modules import load_tool

render_docs = load_tool("render_docs")


def _method(acc: float, weighted: float, gap: float, mb: float = 1.0) -> dict[str, Any]:
    return {
        "final_acc_mean": acc,
        "final_acc_weighted_mean": weighted,
        "gap_to_cfl_points": gap,
        "bytes_sent_per_round": mb * 1e6,
    }


def _data(with_ours: bool) -> dict[str, Any]:
    exps: dict[str, Any] = {
        "authors_a0.5": {
            "methods": {
                "bilayer": _method(0.69, 0.70, 3.0, 3.6),
                "cfl": _method(0.72, 0.72, 0.0, 0.0),
            }
        },
        "authorsinit_a0.5": {"methods": {"bilayer": _method(0.62, 0.60, 10.0)}},
        "authorspre_a0.5": {"methods": {"bilayer": _method(0.68, 0.68, 4.0)}},
        "authorsboth_a0.5": {"methods": {"bilayer": _method(0.66, 0.65, 6.0)}},
    }
    for key, *_ in render_docs.AUTHORS_ROWS if with_ours else ():
        exps[f"ours_{key}"] = {"methods": {"bilayer": _method(0.66, 0.66, 6.1, 6.9)}}
        exps[f"oursbc_{key}"] = {"methods": {"bilayer": _method(0.71, 0.71, 0.9, 7.7)}}
    info = {"command": "c", "git_commit": "a" * 40, "date": "2026-12-07", "machine": {}}
    paper = {
        "dirichlet_a0.5": {"methods": {"bilayer": _method(0.66, 0.66, 5.9, 6.9)}},
        "broadcast_a0.5": {"methods": {"bilayer": _method(0.71, 0.71, 0.5, 7.7)}},
    }
    ref = {
        "iid_n30": {"gap_to_cfl_points": 0.9},
        "dirichlet_gap_to_cfl_points": {"10": 0.9, "1": 5.1, "0.5": 7.9, "0.1": 11.4},
    }
    return {
        "authors": {"experiments": exps, "run_info": info},
        "paper_reference": ref,
        "paper": {"experiments": paper, "run_info": {**info, "command": "p"}},
    }


def _row(text: str, label: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_our_columns_from_the_authors_run_else_paper_json() -> None:
    text = render_docs.block_authors_side_by_side(_data(with_ours=True))
    assert _row(text, "α = 0.5")[2:4] == ["+6.1 · 6.9", "+0.9 · 7.7"]
    assert "docs/results/paper.json" not in text
    text = render_docs.block_authors_side_by_side(_data(with_ours=False))
    assert _row(text, "α = 0.5")[2:4] == ["+5.9 · 6.9", "+0.5 · 7.7"]
    assert "docs/results/paper.json" in text


def test_causes_weighted_gap_against_the_same_cfl() -> None:
    text = render_docs.block_authors_causes(_data(with_ours=False))
    # columns: log, ours, weighted, their heads, untrained start, both, both weighted (against
    # the CFL of authors_a0.5: 0.72 - weighted accuracy)
    assert _row(text, "α = 0.5")[1:] == ["7.9", "+3.0", "+2.0", "+10.0", "+4.0", "+6.0", "+7.0"]
    assert _row(text, "α = 1")[2:] == ["not run"] * 6
