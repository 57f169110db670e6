"""The firmware's command decoder, frame reassembly and link layer under libFuzzer with
AddressSanitizer and UndefinedBehaviorSanitizer (clang-14 from Debian; ``make -C firmware
fuzz``), each for a bounded time from the committed corpus (firmware/fuzz/corpus, made by
firmware/fuzz/make_corpus.py). Any finding (a crash, a sanitizer report, a malformed reply
packet, a timeout) fails. ``GL_FUZZ_SECONDS`` sets the time per target (default 20)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rp2040_support import ROOT

pytestmark = pytest.mark.slow
FIRMWARE = ROOT / "firmware"
TARGETS = ("link", "commands", "frames")
SECONDS = int(os.environ.get("GL_FUZZ_SECONDS", "20"))


@pytest.fixture(scope="module")
def fuzzers() -> Path:
    if shutil.which("clang-14") is None:
        pytest.skip("clang-14 not found (apt: clang-14 libclang-rt-14-dev)")
    proc = subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE), "fuzz"], capture_output=True, text=True, timeout=600
    )
    if "fuzzer" in proc.stderr and "cannot find" in proc.stderr:
        pytest.skip(f"libFuzzer runtime missing (apt: libclang-rt-14-dev): {proc.stderr[-500:]}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return FIRMWARE / "build" / "fuzz"


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_nothing(fuzzers: Path, target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"  # a copy: the committed seeds stay as they are
    shutil.copytree(FIRMWARE / "fuzz" / "corpus" / target, corpus)
    proc = subprocess.run(
        [str(fuzzers / f"fuzz_{target}"), str(corpus), f"-max_total_time={SECONDS}",
         "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
         f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path,
    )  # fmt: skip
    found = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash", "timeout")))
    assert proc.returncode == 0 and not found, (found, proc.stderr[-6000:])
    runs = [
        line for line in proc.stderr.splitlines() if line.startswith("stat::number_of_executed")
    ]
    assert runs and int(runs[0].split(":")[-1]) > 1000, proc.stderr[-2000:]  # it did run
