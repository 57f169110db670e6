"""A serial device for a robot node, backed by the emulated RP2040: a pseudo-terminal pair
whose far end is bridged to the UART0 of rp2040js running the Pico image
(``firmware/emulator/run.mjs``). The robot opens ``--link`` as it would open ``/dev/ttyUSB0``
(``coprocessor_port``); bytes cross the pty, the runner and the emulated UART at the line rate.

    python tools/rp2040_pty.py --link /tmp/rp2040-1 [--pidfile /tmp/rp2040-1.pid]

When the emulator exits (killed, or a watchdog reset, which the runner reports with code 3) the
bridge says so on stderr, drops what the robot sends meanwhile (a dead chip) and, after
``--restart-delay`` seconds, starts it again: a freshly booted chip, as after a power cycle.
``--pidfile`` always holds the running emulator's pid (tests kill it to pull the plug).
SIGTERM / SIGINT stop the emulator and remove the link.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rp2040_build


def _log(text: str) -> None:
    print(f"rp2040_pty: {text}", file=sys.stderr, flush=True)


class Bridge:
    """The pty (``link`` -> its slave side) and the emulator process behind it."""

    def __init__(self, link: Path, argv: list[str], pidfile: Path | None, delay: float) -> None:
        self.link, self.argv, self.pidfile, self.delay = link, argv, pidfile, delay
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # no line discipline: binary bytes pass untouched
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.ttyname(self.slave))
        self.proc: subprocess.Popen[bytes] | None = None
        self.down_since = 0.0
        self.running = True

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        if self.pidfile is not None:
            tmp = self.pidfile.with_suffix(".tmp")
            tmp.write_text(str(self.proc.pid))
            tmp.replace(self.pidfile)
        _log(f"emulator started (pid {self.proc.pid}) behind {self.link}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        with_link = self.link.is_symlink()
        if with_link:
            self.link.unlink()

    def run(self) -> None:
        self.start()
        while self.running:
            proc = self.proc
            assert proc is not None and proc.stdout is not None and proc.stdin is not None
            alive = proc.poll() is None
            fds = [self.master] + ([proc.stdout.fileno()] if alive else [])
            ready, _, _ = select.select(fds, [], [], 0.1)
            if self.master in ready:
                data = os.read(self.master, 65536)
                if alive and data:
                    try:
                        proc.stdin.write(data)
                    except BrokenPipeError:
                        alive = False
            if alive and proc.stdout.fileno() in ready:
                data = os.read(proc.stdout.fileno(), 65536)
                if data:
                    os.write(self.master, data)
            if proc.poll() is not None:
                if not self.down_since:
                    self.down_since = time.monotonic()
                    _log(f"emulator exited with code {proc.returncode}; restarting it")
                elif time.monotonic() - self.down_since >= self.delay:
                    self.down_since = 0.0
                    self.start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--link", type=Path, required=True, help="path of the serial device to make")
    ap.add_argument("--pidfile", type=Path, help="file holding the running emulator's pid")
    ap.add_argument("--restart-delay", type=float, default=1.0, help="s before a restart")
    ap.add_argument("--image", type=Path, default=rp2040_build.PICO_BIN, help="Pico image")
    args = ap.parse_args(argv)
    why = rp2040_build.missing_emulator()
    if why is not None or not args.image.is_file():
        _log(f"cannot run the emulator: {why or f'no image at {args.image}'}")
        return 2
    bridge = Bridge(args.link, rp2040_build.emulator_argv(args.image), args.pidfile,
                    args.restart_delay)  # fmt: skip

    def stop(*_: object) -> None:
        bridge.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        bridge.run()
    finally:
        bridge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
