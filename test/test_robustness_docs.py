"""The robustness tables of docs/robustness.md (tools/render_docs.py): mean ± std over seeds,
seeds at 95 % of CFL, and the threat-model table from the report's threats and records."""

from __future__ import annotations

from test_docs_generated import render_docs


def _rec(seed: int, scenario: str, defence: str, acc: float, rejected: str = "none") -> dict:
    return {"seed": seed, "scenario": scenario, "defence": defence, "acc_final": acc,
            "cfl_final": 0.96, "rounds_to_95_cfl": None, "rejected": rejected}  # fmt: skip


def _report() -> dict:
    recs = []
    for seed, clean, attacked in ((0, 0.95, 0.93), (1, 0.93, 0.90)):
        recs += [
            _rec(seed, "a: no faults", "none", clean + 0.01),
            _rec(seed, "a: no faults", "checks", clean),
            _rec(seed, "e: rogue dominate_cap", "none", 0.3),
            _rec(seed, "e: rogue dominate_cap", "checks", attacked, "dist_ratio 9, unexpected 4"),
        ]
    threats = {
        "dominate_cap": {"attacker": "radio", "holds": "nothing", "attack": "cap"},
        "insider": {"attacker": "fleet robot", "holds": "its own key", "attack": "lies"},
    }
    return {"robustness": {"records": recs, "threats": threats, "command": "c",
                           "git_commit": "a" * 40, "git_dirty": False, "date": "d",
                           "machine": {"cpus": 2}}}  # fmt: skip


def test_the_threat_table_averages_seeds_and_names_what_the_defaults_refused() -> None:
    out = render_docs.block_robustness_threats(_report())
    row = next(line for line in out.splitlines() if line.startswith("| `dominate_cap`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4:] == ["0.300 ± 0.000", "·", "0.915 ± 0.015", "·", "·",
                         "`dist_ratio`, `unexpected`", "2.5", "·"]  # fmt: skip
    insider = next(line for line in out.splitlines() if line.startswith("| `insider`"))
    assert "not measured yet" in insider
    honest = next(line for line in out.splitlines() if line.startswith("| a: no faults"))
    assert honest.split("|")[2].strip() == "+1.0"  # checks end a point under none


def test_the_threat_table_gives_every_defence_on_its_insider_and_honest_cost() -> None:
    """``median15`` (every defence on) beside the others: an insider's points against its own
    clean run with the worst seed, and its honest cost against ``checks``, mean and worst seed
    (one seed 0.8 points under, the other 0.4 over: +0.2 on the mean, +0.8 on the worst)."""
    rep = _report()
    for seed, clean, near, bc in ((0, 0.942, 0.92, 0.90), (1, 0.934, 0.924, 0.91)):
        rep["robustness"]["records"] += [
            _rec(seed, "a: no faults", "median15", clean),
            _rec(seed, "b+c", "median15", bc),
            _rec(seed, "e: rogue insider", "median15", near),
        ]
    out = render_docs.block_robustness_threats(rep)
    insider = next(line for line in out.splitlines() if line.startswith("| `insider`"))
    cells = [c.strip() for c in insider.strip("|").split("|")]
    # (0.942 - 0.92 + 0.934 - 0.924) / 2 = 1.6 points; seed 0 loses 2.2
    assert cells[8] == "0.922 ± 0.002" and cells[-1] == "1.6 (2.2)"
    assert "With `median15` the farthest attack costs 1.6 points (`insider`)." in out
    honest = next(line for line in out.splitlines() if line.startswith("| a: no faults"))
    assert honest.split("|")[4].strip() == "+0.20 (+0.80)"
    assert "| b+c |" not in out  # no checks run of b+c in this report: no honest row


def test_the_scenario_table_counts_the_seeds_at_95_percent_of_cfl() -> None:
    out = render_docs.block_robustness(_report())
    row = next(line for line in out.splitlines() if line.startswith("| e: rogue dominate_cap"))
    assert "| 0.915 ± 0.015 (1/2) |" in row  # 95 % of CFL is 0.912: seed 1's 0.90 is under


def _insider_report() -> dict:
    recs = []
    for seed, clean, near in ((0, 0.95, (0.89, 0.93)), (1, 0.93, (0.92, 0.92))):
        for d, acc in zip(("checks", "keys"), near, strict=True):
            recs += [
                _rec(seed, "a: no faults", d, clean - (0.002 if d == "keys" else 0.0)),
                _rec(seed, "e: rogue insider_near", d, acc, "dist_ratio 3"),
                {**_rec(seed, "e: rogue insider_forge", d, clean,
                        "bad_signature 40, dist_ratio 2" if d == "keys" else "unknown_sender 9"),
                 "rogue_frames": 50},
            ]  # fmt: skip
    return {"records": recs, "command": "c", "git_commit": "b" * 40, "git_dirty": False,
            "date": "d", "machine": {"cpus": 2}}  # fmt: skip


def test_the_insider_table_gives_the_points_lost_and_the_goals() -> None:
    """Points lost against the same defence's clean run (seed by seed, averaged), issue 20's
    goals (an insider at most 3 points; keys at most 0.5 on an honest run), the forged frames
    refused as bad signatures; the threat table points at it for the insider rows."""
    data = {**_report(), "robustness_insider": _insider_report()}
    out = render_docs.block_robustness_insider(data)
    row = next(line for line in out.splitlines() if line.startswith("| e: rogue insider_near"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # checks: (0.95 - 0.89 + 0.93 - 0.92) / 2 = 3.5 points; keys: (0.018 + 0.008) / 2 = 1.3
    assert cells[1:] == ["0.905 ± 0.015", "0.925 ± 0.005", "3.5", "1.3", "`dist_ratio`"]
    assert "costs 3.5 points (`insider_near`; 6.0 on its worst seed). " in out  # no goal
    assert (
        "costs 1.3 points (`insider_near`; 1.8 on its worst seed; issue 20's goal with per-robot "
        "keys, at most 3: met)" in out
    )
    assert (
        "+0.20 points against `checks` (+0.20 on its worst seed; positive: lower; issue 20's goal, "
        "at most 0.5 on the mean and on every seed: met)" in out
    )
    assert "sent (those in its own id verify): seed 0: 40 of 50; seed 1: 40 of 50." in out
    threats = render_docs.block_robustness_threats(data)
    insider = next(line for line in threats.splitlines() if line.startswith("| `insider`"))
    assert "not measured yet" in insider  # `insider` itself is not in this insider report
    data["robustness_insider"]["records"].append(_rec(0, "e: rogue insider", "keys", 0.9))
    threats = render_docs.block_robustness_threats(data)
    insider = next(line for line in threats.splitlines() if line.startswith("| `insider`"))
    assert "in the insider table" in insider


def test_the_bounded_table_takes_keys_from_the_insider_report_as_its_baseline() -> None:
    """``robustness_insider_bounded`` holds only the ``bounded`` runs; the ``keys`` runs of the
    same scenarios come from ``robustness_insider`` (its other scenarios and defences stay out),
    the goals apply to ``bounded`` and both files are named in the provenance."""
    bounded = {**_insider_report(), "records": [
        _rec(s, sc, "bounded", acc) for s, sc, acc in (
            (0, "a: no faults", 0.949), (0, "e: rogue insider_near", 0.933),
            (1, "a: no faults", 0.926), (1, "e: rogue insider_near", 0.89))]}  # fmt: skip
    data = {"robustness_insider": _insider_report(), "robustness_insider_bounded": bounded}
    out = render_docs.BLOCKS["robustness-insider-bounded"](data)
    row = next(line for line in out.splitlines() if line.startswith("| e: rogue insider_near"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # keys: 1.3 (as above); bounded: (0.949 - 0.933 + 0.926 - 0.89) / 2 = 2.6
    assert [cells[1], cells[3], cells[4]] == ["0.925 ± 0.005", "1.3", "2.6"]
    assert "insider_forge" not in out and "`checks`" not in out
    assert "costs 2.6 points (`insider_near`; 3.6 on its worst seed; issue 20's goal" in out
    assert "at most 3: **not met**)" in out  # 2.6 <= 3 on the mean, yet one seed loses 3.6
    # the clean runs: keys 0.948 and 0.928, bounded 0.949 and 0.926
    assert "`bounded` ends +0.05 points against `keys`" in out
    # against keys' clean runs (0.948, 0.928): (0.015 + 0.038) / 2 = 2.65, worst seed 3.8
    assert "`insider_near` with `bounded` costs 2.6 points (3.8 on its worst seed)" in out
    assert "robustness_insider_bounded.json" in out and "robustness_insider.json" in out
    assert "Not generated yet" in render_docs.BLOCKS["robustness-insider-bounded"](
        {"robustness_insider_bounded": bounded}
    )


def test_the_honest_goal_holds_only_if_every_seed_is_within_it() -> None:
    """A clean run 0.8 points under on one seed and 0.4 over on the other is +0.20 on the mean
    but not within issue 20's 0.5 on every seed; the models each robot pulled are counted."""
    recs = []
    for seed, keys, median in ((0, 0.95, 0.942), (1, 0.93, 0.934)):
        recs += [
            _rec(seed, "a: no faults", "keys", keys),
            _rec(seed, "e: rogue insider_near", "keys", 0.6),
            {**_rec(seed, "a: no faults", "median15", median), "clipped": 1200 + seed},
            {**_rec(seed, "e: rogue insider_near", "median15", 0.93), "clipped": 900},
        ]
    data = {"robustness_insider": {**_insider_report(), "records": recs}}
    out = render_docs.block_robustness_insider(data)
    assert (
        "`median15` ends +0.20 points against `keys` (+0.80 on its worst seed; positive: lower; "
        "issue 20's goal, at most 0.5 on the mean and on every seed: **not met**)" in out
    )
    assert "`median15` pulled 1,200, 1,201 models in its clean runs (seed by seed" in out
    assert "`keys` pulled" not in out  # no count recorded: no sentence
