"""Insiders (issue 20): a fleet robot that holds its own per-robot key signs every frame with it
(the simulator's real signing path, ``RobotAuth.seal_as``), so what it says in its own id
verifies and is met by the relative bounds only, and what it says in another robot's id is
refused as a bad signature, counted by reason. benchmarks/robustness.py's ``keys`` defence gives
the insider, and only the insider, its own key."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("cryptography", reason="robot keys need cryptography (.[identity])")

from gossip_learning.config import load_config
from gossip_learning.keyring import create_fleet, load_keyring

ROOT = Path(__file__).resolve().parents[1]
SIM = ["swarm.num_robots=12", "learning.epochs=1", "channel.comm_range=200", "faults.rogues=1"]


def _swarm(attack: str, keys: Path | None, *extra: str):  # type: ignore[no-untyped-def]
    """12 robots (ids 0..11) and one rogue (id 12) doing ``attack``; ``keys``: a key folder
    (per-robot keys; the rogue is an insider if the folder holds its key)."""
    from gossip_learning.experiment import Swarm, load_data

    ids = [] if keys is None else [f"defence.keyring=file:{keys / 'keyring.json'}",
                                   f"defence.robot_keys=file:{keys}"]  # fmt: skip
    cfg = load_config("config/quickstart.yaml", [*SIM, f"faults.rogue_attack={attack}", *ids,
                                                 *extra])  # fmt: skip
    return Swarm(cfg, "bilayer", 0, load_data(cfg))


def _run(sw, rounds: int = 2) -> tuple[Counter[str], Counter[str]]:  # type: ignore[no-untyped-def]
    """Step ``rounds``; (what the medium refused, what the robots refused), by reason."""
    for _ in range(rounds):
        sw.step()
    robots: Counter[str] = Counter()
    for a in sw.agents:
        robots.update(a.inbox.rejected)
    return Counter(sw.network.stats.reasons), robots


def _fleet(tmp_path: Path, insider: bool) -> Path:
    keys = tmp_path / "keys"
    create_fleet(keys, list(range(13 if insider else 12)), fleet_id=0)
    return keys


@pytest.mark.parametrize("holds_key", [True, False])
def test_an_insiders_own_frames_verify_and_a_radio_without_its_key_is_refused(
    holds_key: bool, tmp_path: Path
) -> None:
    """The insider (its key in the keyring and in defence.robot_keys) speaks only in its own
    id: the medium refuses none of its frames, and the robots refuse its honest-norm random
    models by distance (``dist_ratio``). The same attack without the key: every frame refused as
    unsigned, none reaches a robot."""
    sw = _swarm("insider", _fleet(tmp_path, holds_key))
    medium, robots = _run(sw)
    rogue = sw.rogues[0]
    assert rogue.sent > 0 and rogue.forged == 0
    if holds_key:
        assert not medium, medium
        assert robots["dist_ratio"] > 0, robots
    else:
        assert medium == {"unauthenticated": rogue.sent}
        assert not robots, robots


def test_an_insider_inside_the_bounds_is_merged_with_a_capped_weight_and_only_there(
    tmp_path: Path,
) -> None:
    """``insider_near`` sends each robot that robot's own model plus 2.7 norms orthogonally
    (under 2.9 norms in all), declaring 10^6 samples. With the default bounds (norm 3 ×)
    robots merge it, each time at the capped weight (honest robots declare about 67 samples,
    under the cap of 4 × the median: only the insider's merges are capped). With the norm bound
    at 2 × every such model is refused (``norm_ratio``) and none is merged."""
    keys = _fleet(tmp_path, True)
    sw = _swarm("insider_near", keys)
    medium, robots = _run(sw)
    assert not medium, medium
    assert sw.rogues[0].sent > 0
    assert sum(a.bounds.capped for a in sw.agents) > 0
    tight = _swarm("insider_near", keys, "defence.norm_ratio=2")
    medium, robots = _run(tight)
    assert not medium, medium
    assert robots["norm_ratio"] > 0, robots
    assert sum(a.bounds.capped for a in tight.agents) == 0


def test_an_insider_forging_other_ids_with_its_own_key_is_refused_by_reason(
    tmp_path: Path,
) -> None:
    """``insider_forge``: its own lies plus ACCEPTs and HANDOVERs in other robots' ids, all
    signed with its own key. Every frame in another id, and only those, is refused as
    ``bad_signature``; nothing else is refused by the medium."""
    sw = _swarm("insider_forge", _fleet(tmp_path, True))
    medium, _ = _run(sw)
    rogue = sw.rogues[0]
    assert 0 < rogue.forged < rogue.sent
    assert medium == {"bad_signature": rogue.forged}


def test_with_a_fleet_key_an_insider_holds_it_and_its_forgeries_pass_the_key() -> None:
    """Under a shared fleet key the insider holds it, as every robot of the fleet does: none of
    its frames is refused as unauthenticated or with a bad tag (those in other ids meet the
    no-key checks only)."""
    import os

    os.environ.setdefault("GL_TEST_INSIDER_KEY", "a fleet secret for the insider test")
    sw = _swarm("insider_forge", None, "defence.fleet_key=env:GL_TEST_INSIDER_KEY")
    medium, _ = _run(sw, rounds=1)
    assert sw.rogues[0].forged > 0
    assert not {"unauthenticated", "bad_tag", "wrong_fleet"} & set(medium), medium


def test_the_benchmarks_keys_defence_gives_only_an_insider_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/robustness.py ``keys``: a fresh fleet per run, the rogue in it only when its
    attack is an insider's."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("robustness", None)
    robustness = importlib.import_module("robustness")
    for attack, members in (("insider_near", 21), ("dominate_cap", 20)):
        folder = tmp_path / attack
        over = (*robustness.SCENARIOS[f"e: rogue {attack}"], *robustness.DEFENCES["keys"])
        extra = robustness._robot_keys(robustness.CONFIG, over, folder)
        ring = load_keyring(extra[0].removeprefix("defence.keyring="), 0)
        assert sorted(ring.current) == list(range(members))
        assert extra[1] == f"defence.robot_keys=file:{folder}"
    table = robustness.TABLE["keys"]
    assert "e: rogue insider" in table and robustness.CLEAN in table
    # every defence on: its honest cost (clean, b+c) and every insider, in the default table
    every = robustness.TABLE[robustness.EVERY]
    assert every == [robustness.CLEAN, "b+c", *robustness.INSIDERS] and len(every) == 5
    assert "defence.dist_median=1.5" in robustness.DEFENCES[robustness.EVERY]
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    assert importlib.import_module("render_docs").EVERY == robustness.EVERY  # the docs read it


def test_dist_median_keeps_an_insider_near_the_own_model_from_taking_the_swarm(
    tmp_path: Path,
) -> None:
    """The learning control: ``insider_near`` on the same 12 robots, 3 rounds, with and without
    ``defence.dist_median`` 1.5. Without it the robots' mean accuracy collapses; with it the
    insider's models are pulled to 1.5 training moves of each receiver and the swarm learns."""
    keys = _fleet(tmp_path, True)
    acc = {}
    for k in ("0", "1.5"):
        sw = _swarm("insider_near", keys, f"defence.dist_median={k}")
        acc[k] = [sw.step()[0]["acc_mean"] for _ in range(3)][-1]
        assert (sum(a.bounds.clipped for a in sw.agents) > 0) == (k != "0")
    assert acc["1.5"] > acc["0"] + 0.2, acc
