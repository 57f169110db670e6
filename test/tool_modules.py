"""Import a script from ``tools/`` as a module (the tools are scripts, not package code)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(stem: str) -> ModuleType:
    """``tools/<stem>.py`` imported under the name ``stem``."""
    spec = importlib.util.spec_from_file_location(stem, TOOLS / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    spec.loader.exec_module(module)
    return module
