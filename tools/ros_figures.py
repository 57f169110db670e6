"""Figures of the ROS setup that follow from its config, for docs/ros.md (not measured: derived).

    python tools/ros_figures.py                       # writes docs/results/ros_config.json

The round length (the sum of the schedule's phases on the round clock), its phases and the
metres a robot covers per round with ``motion:=time``, for ``config/ros_swarm.yaml``;
test/test_ros_figures.py fails when the config changes and the file was not regenerated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gossip_learning.config import load_config  # noqa: E402
from gossip_learning.provenance import run_info  # noqa: E402
from gossip_learning.schedule import RoundClock, build_schedule  # noqa: E402

CONFIG = "config/ros_swarm.yaml"


def figures(config: Path = ROOT / CONFIG) -> dict[str, Any]:
    """Round length, phase count and metres per round of ``config`` (and with single matching)."""
    out: dict[str, Any] = {"config": CONFIG}
    for key, overrides in (("default", []), ("single_matching", ["gossip.matching=single"])):
        cfg = load_config(config, overrides)
        schedule = build_schedule("bilayer", cfg.clustering.passes, cfg.gossip)
        period = RoundClock(schedule, cfg.timing).period
        out[key] = {
            "matching": cfg.gossip.matching,
            "phases": len(schedule),
            "round_s": round(period, 6),
            "metres_per_round": round(period * cfg.mobility.speed, 6),
            "speed": cfg.mobility.speed,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(ROOT / "docs" / "results" / "ros_config.json"))
    args = parser.parse_args(argv)
    record = {**figures(), "run_info": run_info(["python", "tools/ros_figures.py"])}
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["default"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
