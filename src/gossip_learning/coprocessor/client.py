"""The robot computer's side of the command set: one method per firmware command."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from gossip_learning.coprocessor.links import Link
from gossip_learning.coprocessor.protocol import (
    LINK_ERROR,
    PROTO_VERSION,
    STATUS_NAMES,
    Cmd,
    ProtocolError,
    packet,
    parse_reply,
)
from gossip_learning.errors import GossipLearningError

OPTIMIZER_CODES = {"sgd": 0, "adam": 1}
DTYPE_CODES = {"f32": 1, "f16": 2, "int8": 3, "int8_block": 4}
_STATUS_HEAD = struct.Struct("<15IH")
_HELLO = struct.Struct("<HIHHHHHHHHHIIfffIIIBBII")
#: Longest a command may take on a real chip is ~2.2 s (GL_MAX_TRAIN_STEPS steps of 128 rows);
#: a reply later than this means the chip is gone or rebooted. The emulator needs more.
DEFAULT_TIMEOUT = 5.0
STATUS_FIELDS = (
    "firmware",
    "rx_packets",
    "tx_packets",
    "frames_ok",
    "merged_total",
    "train_steps",
    "free_ram",
    "state_bytes",
    "clock_hz",
    "last_train_us",
    "last_decode_us",
    "last_merge_us",
    "last_finalise_us",
    "rx_dropped",
    "last_link_us",
)


class CoprocessorError(GossipLearningError):
    """The firmware refused a command; ``reason`` is its status name (``STATUS_NAMES``)."""

    def __init__(self, cmd: int, status: int) -> None:
        self.status = status
        self.reason = STATUS_NAMES[status] if status < len(STATUS_NAMES) else f"status {status}"
        name = Cmd(cmd).name if cmd in Cmd._value2member_map_ else f"0x{cmd:02x}"
        super().__init__(f"coprocessor refused {name}: {self.reason}")


class CoprocessorTimeout(TimeoutError):
    """No reply to a command in time (the chip is gone, busy past its budget, or rebooted)."""


@dataclass(frozen=True)
class Hello:
    """What ``HELLO`` reports (docs/rp2040-link.md): protocol and firmware version, the
    compile-time limits, and this boot: watchdog reboots, whether the last reset was the
    watchdog's, whether it is configured, the host's session token (0 after a reset), uptime."""

    proto: int
    firmware: int
    max_in: int
    max_classes: int
    max_batch: int
    max_params: int
    max_packet_data: int
    default_mtu: int
    max_chunks: int
    max_train_steps: int
    max_senders: int
    ram_budget: int
    state_bytes: int
    max_lr: float
    max_weight_decay: float
    max_abs_feature: float
    interbyte_us: int
    watchdog_ms: int
    boot_count: int
    watchdog_reset: bool
    configured: bool
    session: int
    uptime_us: int
    name: str


class Coprocessor:
    """Commands to one firmware over ``link``; replies are waited for up to ``timeout`` s.

    Every request goes out as ``0x00`` + COBS packet + ``0x00`` (the leading delimiter ends any
    line noise before it). A reply whose sequence number is not the one just sent (a late reply
    to a command that timed out), a corrupt one, or a link-layer error report is dropped and
    counted in :attr:`dropped`; the wait goes on until the deadline."""

    def __init__(
        self, link: Link, timeout: float = DEFAULT_TIMEOUT, train_timeout: float | None = None
    ) -> None:
        self.link = link
        self.timeout = timeout
        self.train_timeout = timeout if train_timeout is None else train_timeout
        self.lost = False  # a command went unanswered: recover() before trusting the chip again
        self._config: tuple[Any, ...] | None = None
        self._seq = 0
        self._rx = bytearray()
        self.hello_info: Hello | None = None
        self.session = 0  # the token the last CONFIG gave the chip (0: not configured by us)
        self.dropped: Counter[str] = Counter()
        # Held for whole command sequences (a training round, a merge) by the trainer and the
        # accumulator, which may run in different threads of a ROS node.
        self.lock = threading.RLock()

    # ----------------------------------------------------------------- link
    def send_raw(self, data: bytes) -> None:
        """Put raw bytes on the line (tests of the link layer)."""
        self.link.write(data)

    def drain(self, timeout: float = 0.0) -> None:
        """Throw away every byte received (and arriving within ``timeout`` s)."""
        while self.link.read(timeout):
            pass
        self._rx.clear()

    def read_reply(self, timeout: float | None = None) -> tuple[int, int, int, bytes]:
        """The next well-formed reply ``(cmd, seq, status, data)``; corrupt ones are dropped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        synchronous = getattr(self.link, "synchronous", False)
        while True:
            end = self._rx.find(0)
            if end >= 0:
                encoded = bytes(self._rx[:end])
                del self._rx[: end + 1]
                if encoded:
                    try:
                        return parse_reply(encoded)
                    except ProtocolError:
                        self.dropped["corrupt"] += 1
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise CoprocessorTimeout("no reply from the coprocessor")
            chunk = self.link.read(min(left, 1.0))
            if not chunk and synchronous:
                raise CoprocessorTimeout("no reply from the coprocessor")
            self._rx += chunk

    def call(self, cmd: Cmd, args: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one command and return its reply data; raise CoprocessorError if refused,
        CoprocessorTimeout if no reply with this command's sequence number comes in time."""
        wait = self.timeout if timeout is None else timeout
        with self.lock:
            self._seq = (self._seq + 1) & 0xFF
            self.link.write(packet(int(cmd), self._seq, args))
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                try:
                    rcmd, seq, status, data = self.read_reply(max(0.0, left))
                except CoprocessorTimeout:
                    self.lost = True
                    name = Cmd(cmd).name
                    raise CoprocessorTimeout(
                        f"no reply to {name} (seq {self._seq}) within {wait:g} s"
                    ) from None
                if rcmd == LINK_ERROR:
                    reason = STATUS_NAMES[status] if status < len(STATUS_NAMES) else str(status)
                    self.dropped[f"link_{reason}"] += 1  # noise, or this packet damaged
                elif rcmd != (int(cmd) | 0x80) or seq != self._seq:
                    self.dropped["stale"] += 1  # a late reply to an earlier command
                else:
                    break
        if status:
            raise CoprocessorError(int(cmd), status)
        return data

    # ------------------------------------------------------------- commands
    def hello(self, timeout: float | None = None) -> Hello:
        d = self.call(Cmd.HELLO, timeout=timeout)
        (proto,) = struct.unpack_from("<H", d, 0)
        if proto != PROTO_VERSION or len(d) < _HELLO.size:
            raise ProtocolError(
                f"firmware speaks link protocol {proto}, this host {PROTO_VERSION}: reflash it"
            )
        v: list[Any] = list(_HELLO.unpack_from(d, 0))
        v[19], v[20] = bool(v[19]), bool(v[20])
        fields: tuple[Any, ...] = (*v, d[_HELLO.size :].decode("ascii", "replace"))
        self.hello_info = Hello(*fields)
        return self.hello_info

    def rebooted(self, timeout: float | None = None) -> bool:
        """Whether the chip lost the configuration this client gave it (a reset in between):
        its HELLO no longer carries this client's session token."""
        return self.hello(timeout).session != self.session

    def recover(self, timeout: float = 0.5) -> bool:
        """After a fault: drop what is on the line, ask HELLO (waiting ``timeout`` s) and, if the
        chip lost this client's configuration (it rebooted), send the last CONFIG again with a
        new session token. Returns whether it had rebooted; raises if it does not answer."""
        with self.lock:
            self.drain(0.05)
            rebooted = self.rebooted(timeout)
            if rebooted and self._config is not None:
                self.configure(*self._config)
            self.lost = False
            return rebooted

    def configure(
        self,
        in_dim: int,
        classes: int,
        optimizer: str,
        lr: float,
        weight_decay: float,
        model_version: int,
        robot_id: int,
    ) -> None:
        """Set the head's shape and optimiser; params become zero. A fresh session token goes
        with it (:meth:`rebooted`)."""
        session = int.from_bytes(os.urandom(4), "little") or 1
        args = struct.pack(
            "<HHBddIII", in_dim, classes, OPTIMIZER_CODES[optimizer], lr, weight_decay,
            model_version, robot_id, session,
        )  # fmt: skip
        self.call(Cmd.CONFIG, args)
        self.session = session
        self._config = (in_dim, classes, optimizer, lr, weight_decay, model_version, robot_id)

    def reset_optimizer(self) -> None:
        self.call(Cmd.OPT_RESET)

    def rows_per_load(self, in_dim: int) -> int:
        """Batch rows that fit one LOAD packet."""
        limit = self.hello_info.max_packet_data if self.hello_info else 2048
        return max(1, (limit - 4) // (1 + 4 * in_dim))

    def load(self, X: np.ndarray, y: np.ndarray, row0: int = 0) -> None:
        """Load rows ``row0 ..`` of the minibatch buffer with features X (n, d) and labels y."""
        x = np.ascontiguousarray(X, dtype="<f4")
        labels = np.asarray(y, dtype=np.uint8)
        per = self.rows_per_load(x.shape[1])
        for s in range(0, len(labels), per):
            e = min(len(labels), s + per)
            rows = np.empty((e - s, 1 + 4 * x.shape[1]), dtype=np.uint8)
            rows[:, 0] = labels[s:e]
            rows[:, 1:] = x[s:e].view(np.uint8).reshape(e - s, -1)
            self.call(Cmd.LOAD, struct.pack("<HH", row0 + s, e - s) + rows.tobytes())

    def train(self, rows: int, steps: int = 1) -> tuple[float, int]:
        """``steps`` optimiser steps on the first ``rows`` loaded rows: (last loss, µs)."""
        args = struct.pack("<HH", rows, steps)
        loss, us, _ = struct.unpack("<fII", self.call(Cmd.TRAIN, args, self.train_timeout))
        return float(loss), int(us)

    def predict(self, rows: int, classes: int, row0: int = 0) -> np.ndarray:
        """Logits (rows, classes) of loaded rows."""
        out = []
        per = max(1, 2048 // (4 * classes))
        for s in range(row0, row0 + rows, per):
            n = min(per, row0 + rows - s)
            d = self.call(Cmd.PREDICT, struct.pack("<HH", s, n))
            out.append(np.frombuffer(d, dtype="<f4").reshape(n, classes))
        return np.concatenate(out).astype(np.float32)

    def get_frame(
        self,
        dtype: str = "f32",
        max_payload: int = 462,
        chunk: int = 0,
        *,
        kind: int = 6,
        layer: int = 0,
        receiver: int = 0xFFFFFFFF,
        round_no: int = 0,
        step: int = 0,
        cluster: int = -1,
        samples: int = 0,
    ) -> bytes:
        """Chunk ``chunk`` of the head as a wire frame (sender: the configured robot id)."""
        args = struct.pack(
            "<BHHBBIIHiI", DTYPE_CODES[dtype], max_payload, chunk, kind, layer, receiver,
            round_no, step, cluster, samples,
        )  # fmt: skip
        return self.call(Cmd.GET_FRAME, args)

    def get_frames(self, dtype: str = "f32", max_payload: int = 462, **header: int) -> list[bytes]:
        """Every chunk of the head as wire frames."""
        first = self.get_frame(dtype, max_payload, 0, **header)
        (count,) = struct.unpack_from("<H", first, 24)
        return [first] + [self.get_frame(dtype, max_payload, i, **header) for i in range(1, count)]

    def put_frame(self, frame: bytes, merge: bool) -> tuple[bool, int]:
        """Give one wire frame: the own model (merge False) or a neighbour's to merge.
        Returns (message complete, µs of decode + apply)."""
        d = self.call(Cmd.PUT_FRAME, bytes([1 if merge else 0]) + frame)
        return bool(d[0]), struct.unpack_from("<I", d, 1)[0]

    def merge_reset(self, weight: int) -> None:
        self.call(Cmd.MERGE_RESET, struct.pack("<I", weight))

    def merge_finalise(self) -> tuple[int, int]:
        """Write S / N into the head: (senders merged, µs)."""
        merged, us = struct.unpack("<HI", self.call(Cmd.MERGE_FINALISE))
        return int(merged), int(us)

    def merge_discard(self) -> None:
        self.call(Cmd.MERGE_DISCARD)

    def status(self) -> dict[str, int]:
        """Counters (``rejects`` by reason name), free RAM, last timings."""
        d = self.call(Cmd.STATUS)
        *values, n = _STATUS_HEAD.unpack_from(d, 0)
        out: dict[str, int] = dict(zip(STATUS_FIELDS, values, strict=True))
        counts = struct.unpack_from(f"<{n}I", d, _STATUS_HEAD.size)
        for code, count in enumerate(counts):
            name = STATUS_NAMES[code] if code < len(STATUS_NAMES) else f"status_{code}"
            out[f"rejects.{name}"] = int(count)
        return out

    def bench(self, which: int, rows: int) -> tuple[int, float]:
        """Firmware micro-benchmark ``which`` (0 float forward, 1 Q15 forward, 2/3/4 merge-add
        into float64 / float32 / int64-Q24): (µs, max abs error against float)."""
        us, err = struct.unpack("<If", self.call(Cmd.BENCH, struct.pack("<BH", which, rows)))
        return int(us), float(err)
