"""Shared by the RP2040 coprocessor tests: building the firmware, links to it, skip reasons."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gossip_learning.coprocessor.client import Coprocessor
from gossip_learning.coprocessor.links import HostLibraryLink, ProcessLink
from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]


build = load_tool("rp2040_build")
_host: Path | None = None
_pico: Path | None = None


def host_library() -> Path:
    """The host build of the core (built once per session); skip without gcc/make."""
    global _host
    if _host is None:
        if shutil.which("gcc") is None or shutil.which("make") is None:
            pytest.skip("gcc and make are needed for the firmware's host build")
        _host = build.build_host()
    return _host


def pico_image() -> Path:
    """The Pico image (built or brought up to date once per session); skip without tools."""
    global _pico
    if _pico is None:
        why = build.missing_pico_tools()
        if why is not None:
            pytest.skip(f"Pico image cannot be built: {why}")
        _pico = build.build_pico()
    return _pico


def emulator_argv() -> list[str]:
    """Command running the Pico image on rp2040js; skip without node/rp2040js/boot ROM."""
    image = pico_image()
    why = build.missing_emulator()
    if why is not None:
        pytest.skip(f"RP2040 emulator unavailable: {why}")
    return list(build.emulator_argv(image))


@contextmanager
def host_device() -> Iterator[Coprocessor]:
    """A fresh host-build device."""
    link = HostLibraryLink(host_library())
    yield Coprocessor(link, timeout=5.0)


@contextmanager
def emulated_device() -> Iterator[Coprocessor]:
    """A fresh emulated RP2040 running the Pico image."""
    link = ProcessLink(emulator_argv())
    try:
        yield Coprocessor(link, timeout=120.0)
    finally:
        link.close()


@contextmanager
def device(kind: str) -> Iterator[Coprocessor]:
    """``"host"`` or ``"emulator"``."""
    ctx = host_device() if kind == "host" else emulated_device()
    with ctx as dev:
        yield dev
