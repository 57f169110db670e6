"""docs/ros-messages.schema.json: the documented schema of the JSON status and the summary line,
for the ROS tests to check the messages real nodes publish against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "docs" / "ros-messages.schema.json").read_text()
)


def _validator(name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (dev extra)")
    return jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{name}"})


def check_status(status: dict[str, Any] | str) -> None:
    """Raise if ``status`` (a dict, or the JSON text on /<ns>/status) breaks the schema."""
    if isinstance(status, str):
        status = json.loads(status)
    _validator("status").validate(status)


def check_summary(line: str) -> None:
    """Raise if ``line`` (on /<ns>/summary) breaks the schema."""
    _validator("summary").validate(line)
