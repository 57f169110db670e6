"""Cost of authenticated frames per frame: bytes and microseconds to seal and to open with the
fleet key (wire version 3: HMAC) and with per-robot keys (version 4: Ed25519 signature, and the
signature's sign and verify alone), next to plain version-1 encode/decode, for a beacon and for
the quickstart MLP head (17,226 parameters) and the paper head (29,514) in fp32. Prints figures
with the machine's load average; not a test.

    python benchmarks/auth_cost.py
    python benchmarks/auth_cost.py --repeat 2000 --json auth.json
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import Report, allow_dirty_flag, format_load

from gossip_learning import identity, wire
from gossip_learning.auth import TRAILER_SIZE, FleetAuth
from gossip_learning.keyring import create_fleet, load_keyring, signing_keys
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
    folder = Path(tempfile.mkdtemp(prefix="auth_cost_"))
    create_fleet(folder / "keys", [4], fleet_id=1)
    ring = load_keyring(f"file:{folder / 'keys' / 'keyring.json'}", 1)
    signer = signing_keys(f"file:{folder / 'keys'}", ring, [4])
    key, public = signer[4][0], ring.current[4].public
    print(f"{'frame':<12} {'bytes v1':>9} {'v3':>7} {'v4':>7} {'enc v1':>8} {'enc v3':>8} "
          f"{'enc v4':>8} {'dec v1':>8} {'dec v3':>8} {'dec v4':>8} {'sign':>7} {'verify':>7}"
          "  (us)")  # fmt: skip
    for name, msg in frames().items():
        tx = FleetAuth("benchmark fleet key", 1, window=1 << 12)
        plain, sealed = wire.encode(msg), wire.encode(msg, tx)
        rx = FleetAuth("benchmark fleet key", 1, window=1 << 12)
        many = [wire.encode(msg, tx) for _ in range(args.repeat * 5)]
        it = iter(many)
        robot_tx = identity.RobotAuth(ring, signer, window=1 << 12)
        robot_rx = identity.RobotAuth(ring, {}, window=1 << 12)
        signed = wire.encode(msg, robot_tx)
        many4 = [wire.encode(msg, robot_tx) for _ in range(args.repeat * 5)]
        it4 = iter(many4)
        body, sig = signed[: -4 - identity.SIG_SIZE], signed[-4 - identity.SIG_SIZE : -4]
        rec = report.add(
            frame=name, bytes_v1=len(plain), bytes_v2=len(sealed), bytes_v4=len(signed),
            encode_v1_us=per_call_us(lambda m=msg: wire.encode(m), args.repeat),
            encode_v2_us=per_call_us(lambda m=msg, a=tx: wire.encode(m, a), args.repeat),
            encode_v4_us=per_call_us(lambda m=msg, a=robot_tx: wire.encode(m, a), args.repeat),
            decode_v1_us=per_call_us(lambda f=plain: wire.decode(f), args.repeat),
            decode_v2_us=per_call_us(lambda i=it, a=rx: wire.decode(next(i), a), args.repeat // 5),
            decode_v4_us=per_call_us(lambda i=it4, a=robot_rx: wire.decode(next(i), a),
                                     args.repeat // 5),
            sign_us=per_call_us(lambda b=body: key.sign(b), args.repeat),
            verify_us=per_call_us(lambda b=body, s=sig: public.verify(s, b), args.repeat),
        )  # fmt: skip
        assert len(sealed) - len(plain) == TRAILER_SIZE
        assert len(signed) - len(plain) == identity.TRAILER_SIZE
        print(f"{name:<12} {rec['bytes_v1']:>9} {rec['bytes_v2']:>7} {rec['bytes_v4']:>7} "
              + " ".join(f"{rec[k]:>8.1f}" for k in (
                  "encode_v1_us", "encode_v2_us", "encode_v4_us", "decode_v1_us",
                  "decode_v2_us", "decode_v4_us"))
              + f" {rec['sign_us']:>7.1f} {rec['verify_us']:>7.1f}")  # fmt: skip
    shutil.rmtree(folder)  # the throw-away key
    out = report.write(args.json)
    print(format_load(out["machine"]["load_avg_before"]), "->",
          format_load(out["machine"]["load_avg_after"]))  # fmt: skip


if __name__ == "__main__":
    main()
