"""docs/results/ros_config.json (the figures docs/ros.md shows for config/ros_swarm.yaml) is the
config's: regenerate it with `python tools/ros_figures.py` after changing the config."""

from __future__ import annotations

import json
from pathlib import Path

from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_round_length_is_the_configs() -> None:
    committed = json.loads((ROOT / "docs/results/ros_config.json").read_text(encoding="utf-8"))
    now = load_tool("ros_figures").figures()
    assert {k: committed[k] for k in now} == now, "run: python tools/ros_figures.py"
    assert committed["default"]["round_s"] > committed["single_matching"]["round_s"]
