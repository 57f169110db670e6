"""Cost of authenticated frames (wire version 3) per frame: bytes and microseconds to seal and to
open, next to plain version-1 encode/decode, for a beacon and for the quickstart MLP head
(17,226 parameters) and the paper head (29,514) in fp32. Prints figures with the machine's load
average; not a test.

    python benchmarks/auth_cost.py
    python benchmarks/auth_cost.py --repeat 2000 --json auth.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _report import Report, allow_dirty_flag, format_load

from gossip_learning import wire
from gossip_learning.auth import TRAILER_SIZE, FleetAuth
from gossip_learning.wire import Beacon, Kind, Layer, Message, Role


def frames() -> dict[str, Message]:
    beacon = Beacon(1.0, 2.0, Role.MEMBER, 3, 5, tuple([0.1] * 10))
    out = {"beacon": Message(Kind.BEACON, sender=4, round=1, layer=Layer.CLUSTER, cluster=3,
                             samples=67, beacon=beacon)}  # fmt: skip
    for name, n in (("model_17226", 17_226), ("model_29514", 29_514)):
        model = np.random.default_rng(0).normal(size=n).astype(np.float32)
        out[name] = Message(Kind.MODEL, sender=4, round=1, layer=Layer.INTRA, cluster=3,
                            samples=67, model_version=1, model=model)  # fmt: skip
    return out


def per_call_us(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t) / repeat)
    return best * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=300, help="calls per timing (>= 5)")
    p.add_argument("--json", default=None)
    allow_dirty_flag(p)
    args = p.parse_args()
    report = Report("auth_cost", out=args.json, allow_dirty=args.allow_dirty)
    print(f"{'frame':<12} {'bytes v1':>9} {'bytes v3':>9} {'enc v1 us':>10} {'enc v3 us':>10} "
          f"{'dec v1 us':>10} {'dec v3 us':>10}")  # fmt: skip
    for name, msg in frames().items():
        tx = FleetAuth("benchmark fleet key", 1, window=1 << 12)
        plain, sealed = wire.encode(msg), wire.encode(msg, tx)
        rx = FleetAuth("benchmark fleet key", 1, window=1 << 12)
        many = [wire.encode(msg, tx) for _ in range(args.repeat * 5)]
        it = iter(many)
        rec = report.add(
            frame=name, bytes_v1=len(plain), bytes_v2=len(sealed),
            encode_v1_us=per_call_us(lambda m=msg: wire.encode(m), args.repeat),
            encode_v2_us=per_call_us(lambda m=msg, a=tx: wire.encode(m, a), args.repeat),
            decode_v1_us=per_call_us(lambda f=plain: wire.decode(f), args.repeat),
            decode_v2_us=per_call_us(lambda i=it, a=rx: wire.decode(next(i), a), args.repeat // 5),
        )  # fmt: skip
        assert len(sealed) - len(plain) == TRAILER_SIZE
        print(f"{name:<12} {rec['bytes_v1']:>9} {rec['bytes_v2']:>9} {rec['encode_v1_us']:>10.1f} "
              f"{rec['encode_v2_us']:>10.1f} {rec['decode_v1_us']:>10.1f} "
              f"{rec['decode_v2_us']:>10.1f}")  # fmt: skip
    out = report.write(args.json)
    print(format_load(out["machine"]["load_avg_before"]), "->",
          format_load(out["machine"]["load_avg_after"]))  # fmt: skip


if __name__ == "__main__":
    main()
