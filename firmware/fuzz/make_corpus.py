"""Write the seed corpus of the libFuzzer targets (firmware/fuzz/corpus/<target>/): valid
packets, command sequences and model frames, built with the Python side of the protocol so the
fuzzers start from inputs that reach deep. Run from the repository root:

    python firmware/fuzz/make_corpus.py
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

from gossip_learning import wire
from gossip_learning.coprocessor.protocol import Cmd, packet
from gossip_learning.learner import HeadSpec, init_params
from gossip_learning.messages import DType, Kind, Message

OUT = Path(__file__).resolve().parent / "corpus"
SMALL = HeadSpec("linear", 16, 4)  # fuzz_commands configures this head, model version 0
BIG = HeadSpec("linear", 160, 10)  # fuzz_frames reassembles 1,610-value models


def _write(target: str, data: bytes) -> None:
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def _cmd(cmd: int, args: bytes) -> bytes:
    return struct.pack("<BH", cmd, len(args)) + args


def _frames(spec: HeadSpec, dtype: DType, mtu: int, version: int, sender: int) -> list[bytes]:
    msg = Message(kind=Kind.MODEL, sender=sender, samples=10, model_version=version,
                  model=init_params(spec, sender), dtype=dtype)  # fmt: skip
    return wire.encode_frames(msg, mtu - wire.OVERHEAD)


def main() -> None:
    # link: packets as they go on the line, some with noise around them
    hello, status = packet(Cmd.HELLO, 1), packet(Cmd.STATUS, 2)
    for data in (hello, status, hello + status, b"\x13\x37" + hello, hello[:-3] + b"\xfe" + status,
                 packet(Cmd.TRAIN, 3, struct.pack("<HH", 1, 1))):  # fmt: skip
        _write("link", data)
    # commands: a training round and a merge step on the configured 16 -> 4 head
    rng = np.random.default_rng(0)
    rows = b"".join(bytes([i % 4]) + rng.normal(size=16).astype("<f4").tobytes() for i in range(8))
    load = _cmd(Cmd.LOAD, struct.pack("<HH", 0, 8) + rows)
    own = b"".join(_cmd(Cmd.PUT_FRAME, b"\x00" + f) for f in _frames(SMALL, DType.F32, 512, 0, 3))
    train = _cmd(Cmd.TRAIN, struct.pack("<HH", 8, 2))
    get = b"".join(
        _cmd(Cmd.GET_FRAME, struct.pack("<BHHBBIIHiI", dt, mp, 0, 6, 0, 0, 0, 0, -1, 10))
        for dt, mp in ((1, 100), (2, 462), (3, 30), (4, 80))
    )
    merge = _cmd(Cmd.MERGE_RESET, struct.pack("<I", 10))
    for dtype, mtu in ((DType.F32, 512), (DType.F16, 100), (DType.I8, 80), (DType.I8_BLOCK, 90)):
        merge += b"".join(_cmd(Cmd.PUT_FRAME, b"\x01" + f)
                          for f in _frames(SMALL, dtype, mtu, 0, 5 + int(dtype)))  # fmt: skip
    merge += _cmd(Cmd.MERGE_FINALISE, b"")
    bench = _cmd(Cmd.BENCH, struct.pack("<BH", 1, 8)) + _cmd(Cmd.BENCH, struct.pack("<BH", 4, 1))
    for data in (load + own + train + get, own + merge, load + bench, _cmd(Cmd.HELLO, b"")):
        _write("commands", data)
    # frames: chunked models of every dtype (len u16 | frame)
    for dtype, mtu in ((DType.F32, 512), (DType.F16, 300), (DType.I8, 200), (DType.I8_BLOCK, 400),
                       (DType.F32, 0)):  # fmt: skip
        frames = _frames(BIG, dtype, mtu, BIG.version(), 2)
        _write("frames", b"".join(struct.pack("<H", len(f)) + f for f in frames))


if __name__ == "__main__":
    main()
