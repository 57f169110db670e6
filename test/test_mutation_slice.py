"""A fixed, seeded slice of mutation testing (tools/mutation.py, mutmut): the tests of these
modules must still kill at least the threshold's share of the sampled mutants, so the score
cannot rot unseen between full runs (docs/testing.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLICE = ("pose_check", "schedule", "dkmeans")
MAX_MUTANTS = 40  # per module
SEED = 17


@pytest.mark.slow
def test_a_seeded_slice_of_mutants_is_killed(tmp_path: Path) -> None:
    pytest.importorskip("mutmut")
    out = tmp_path / "mutation.json"
    modules = [a for m in SLICE for a in ("--module", m)]
    cmd = [sys.executable, "tools/mutation.py", *modules, "--max-mutants", str(MAX_MUTANTS),
           "--seed", str(SEED), "--jobs", "2", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.is_file(), proc.stdout + proc.stderr
    record = json.loads(out.read_text(encoding="utf-8"))
    assert [m["key"] for m in record["modules"]] == list(SLICE)
    for m in record["modules"]:
        assert m["mutants"] == MAX_MUTANTS
        assert m["score"] >= record["threshold"], (m["key"], m["score"], m["survivors"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
