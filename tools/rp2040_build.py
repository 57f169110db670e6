"""Build the RP2040 coprocessor firmware: the host library (``make -C firmware host``) and the
Pico image (Pico SDK 2.2.0, offline, ``PICO_NO_PICOTOOL=1``). Used by the tests, the benchmark
(``benchmarks/rp2040.py``) and ``.ci/run``; docs/rp2040.md describes the same steps by hand.

    python tools/rp2040_build.py            # both (the Pico image only if its tools are here)
    python tools/rp2040_build.py --host

The SDK is taken from ``$PICO_SDK_PATH``, else ``.gl-sdk/pico-sdk`` (git-ignored), which is
unpacked there from ``../shared/rp2040/pico-sdk-2.2.0.tar.gz`` when missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
SHARED = ROOT.parent / "shared" / "rp2040"
SDK_TARBALL = SHARED / "pico-sdk-2.2.0.tar.gz"
BOOTROM = SHARED / "bootrom-b1.bin"
SDK_DIR = ROOT / ".gl-sdk"
HOST_LIB = FIRMWARE / "build" / "host" / "libglcore.so"
PICO_BUILD = FIRMWARE / "build" / "pico"
PICO_ELF = PICO_BUILD / "gl_coproc.elf"
PICO_BIN = PICO_BUILD / "gl_coproc.bin"
PICO_MAP = PICO_BUILD / "gl_coproc.elf.map"
RUNNER = FIRMWARE / "emulator" / "run.mjs"
RP2040JS = FIRMWARE / "emulator" / "node_modules" / "rp2040js"


def build_host() -> Path:
    """Build (or bring up to date) the host library; return its path."""
    subprocess.run(["make", "-s", "-C", str(FIRMWARE), "host"], check=True)
    return HOST_LIB


def missing_pico_tools() -> str | None:
    """Why the Pico image cannot be built here (None if it can)."""
    for tool in ("arm-none-eabi-gcc", "cmake", "make"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt: gcc-arm-none-eabi libnewlib-arm-none-eabi cmake)"
    if sdk_path() is None and not SDK_TARBALL.is_file():
        return f"no Pico SDK: set PICO_SDK_PATH or provide {SDK_TARBALL}"
    return None


def sdk_path() -> Path | None:
    """The Pico SDK to use, if one is unpacked."""
    env = os.environ.get("PICO_SDK_PATH")
    if env and (Path(env) / "external" / "pico_sdk_import.cmake").is_file():
        return Path(env)
    local = SDK_DIR / "pico-sdk"
    return local if (local / "external" / "pico_sdk_import.cmake").is_file() else None


def unpack_sdk() -> Path:
    """Unpack the shared SDK tarball into ``.gl-sdk`` (once)."""
    found = sdk_path()
    if found is not None:
        return found
    SDK_DIR.mkdir(exist_ok=True)
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(SDK_TARBALL) as tar:
        tar.extractall(SDK_DIR, **safe)  # type: ignore[arg-type]
    found = sdk_path()
    if found is None:
        raise RuntimeError(f"{SDK_TARBALL} did not unpack to a Pico SDK")
    return found


def build_pico(quiet: bool = True) -> Path:
    """Configure (once) and build the Pico image; return the .bin path."""
    sdk = unpack_sdk()
    env = {**os.environ, "PICO_SDK_PATH": str(sdk)}
    out = subprocess.DEVNULL if quiet else None
    if not (PICO_BUILD / "Makefile").is_file():
        subprocess.run(
            ["cmake", "-S", str(FIRMWARE), "-B", str(PICO_BUILD), "-DPICO_BOARD=pico",
             "-DPICO_PLATFORM=rp2040", "-DPICO_NO_PICOTOOL=1"],
            check=True, env=env, stdout=out,
        )  # fmt: skip
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    subprocess.run(["make", "-C", str(PICO_BUILD), "-j", jobs], check=True, env=env, stdout=out)
    return PICO_BIN


def missing_emulator() -> str | None:
    """Why the emulator cannot run the image here (None if it can)."""
    if shutil.which("node") is None:
        return "node not found"
    if not RP2040JS.is_dir():
        return "rp2040js not installed (cd firmware/emulator && npm ci)"
    if not BOOTROM.is_file():
        return f"no RP2040 boot ROM at {BOOTROM}"
    return None


def emulator_argv(image: Path = PICO_BIN) -> list[str]:
    """Command line that runs ``image`` on rp2040js with UART0 on stdin/stdout."""
    return ["node", str(RUNNER), "--bin", str(image), "--bootrom", str(BOOTROM)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", action="store_true", help="the host library only")
    ap.add_argument("--pico", action="store_true", help="the Pico image only (fails if it cannot)")
    args = ap.parse_args(argv)
    if not args.pico:
        print(build_host())
    if not args.host:
        why = missing_pico_tools()
        if why is not None:
            print(f"Pico image not built: {why}", file=sys.stderr)
            return 1 if args.pico else 0
        print(build_pico(quiet=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
