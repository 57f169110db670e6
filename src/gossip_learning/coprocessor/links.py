"""Byte streams to a coprocessor firmware.

* :class:`SerialLink`: a pyserial-like object (``read(n)``, ``write(b)``, ``timeout``), e.g.
  :func:`open_serial` on ``/dev/ttyACM0`` for a Pico wired to the robot's computer;
* :class:`ProcessLink`: a subprocess speaking the link on stdin/stdout: the rp2040js emulator
  running the Pico image (``firmware/emulator/run.mjs``);
* :class:`HostLibraryLink`: the host build of the same C core (``libglcore.so``) through ctypes.
"""

from __future__ import annotations

import ctypes
import os
import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class Link(Protocol):
    """A byte stream to the firmware."""

    def write(self, data: bytes) -> None:
        """Send bytes to the firmware."""
        ...

    def read(self, timeout: float) -> bytes:
        """Bytes from the firmware that have arrived (waiting up to ``timeout`` s for the first
        one); ``b""`` if none came."""
        ...

    def close(self) -> None:
        """Release the stream."""
        ...


class SerialLink:
    """A pyserial-like port (``serial.Serial``) as a :class:`Link`."""

    def __init__(self, port: Any) -> None:
        self.port = port

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, timeout: float) -> bytes:
        self.port.timeout = timeout
        first = self.port.read(1)
        if not first:
            return b""
        waiting = int(getattr(self.port, "in_waiting", 0) or 0)
        return bytes(first) + (bytes(self.port.read(waiting)) if waiting else b"")

    def close(self) -> None:
        self.port.close()


def open_serial(device: str, baud: int = 921_600) -> SerialLink:
    """Open ``device`` (8N1, raw) with pyserial (``pip install pyserial``)."""
    try:
        import serial  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the robot's installation
        raise RuntimeError("a coprocessor link needs pyserial (pip install pyserial)") from exc
    return SerialLink(serial.Serial(device, baud, timeout=1.0))


class ProcessLink:
    """A subprocess whose stdin/stdout are the serial link (the emulator runner)."""

    def __init__(self, argv: Sequence[str], cwd: str | Path | None = None) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            bufsize=0,
        )
        self._q: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._q.put(b"")
                return
            self._q.put(chunk)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise ConnectionError(f"emulator exited: {self.stderr_tail()}") from exc

    def read(self, timeout: float) -> bytes:
        try:
            chunk = self._q.get(timeout=timeout)
        except queue.Empty:
            return b""
        if chunk == b"":
            self._q.put(b"")
            raise ConnectionError(f"emulator exited: {self.stderr_tail()}")
        parts = [chunk]
        while not self._q.empty():
            more = self._q.get_nowait()
            if more == b"":
                self._q.put(b"")
                break
            parts.append(more)
        return b"".join(parts)

    def stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read().decode("utf-8", "replace")[-2000:]

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class HostLibraryLink:
    """The host build of the firmware core (``make -C firmware host``) as a :class:`Link`.

    The library has one static device state, so a process has one such link at a time (it is
    reset when the link is made). Replies are produced during :meth:`write`."""

    synchronous = True

    def __init__(self, library: str | Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        self.lib.gl_host_feed.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self.lib.gl_host_take.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self.lib.gl_host_take.restype = ctypes.c_size_t
        self.lib.gl_host_poll.argtypes = []
        self.lib.gl_host_reset()
        self._buf = ctypes.create_string_buffer(1 << 20)

    def write(self, data: bytes) -> None:
        self.lib.gl_host_feed(data, len(data))

    def read(self, timeout: float) -> bytes:
        self.lib.gl_host_poll()  # the idle loop's inter-byte timeout
        n = self.lib.gl_host_take(self._buf, len(self._buf))
        if not n:
            time.sleep(0)  # replies are produced synchronously by write()
        return self._buf.raw[:n]

    def close(self) -> None:
        pass
