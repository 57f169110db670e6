"""Turn what a fleet run recorded into ``fleet.json``: per round, reporters, accuracy, bytes the
package counted against bytes on the veths; discovery; loss applied against loss seen.

Pure functions of plain data (no root, no ROS), so they are unit-tested on made-up inputs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from gossip_learning.fleet.links import CLASSES, CUT


def _by_round(statuses: Sequence[dict[str, Any]]) -> dict[int, dict[int, dict[str, Any]]]:
    """round -> robot id -> its status (round 0: the report before round 1)."""
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for entry in statuses:
        st = entry.get("status")
        if st is not None:
            out.setdefault(int(st["round"]), {})[int(st["id"])] = st
    return out


def _sent(st: dict[str, Any]) -> int:
    return int(st.get("transport", {}).get("bytes_sent", 0))


def _wire(samples: Sequence[dict[str, Any]], rnd: int, hosts: int) -> dict[str, int] | None:
    """Bytes and packets the robots' veths carried from round ``rnd``'s start to the next
    sample (None where the harness did not see that round start)."""
    for k, s in enumerate(samples[:-1]):
        if s["round"] == rnd:
            nxt = samples[k + 1]
            diff = [
                [b - a for a, b in zip(c0, c1, strict=True)]
                for c0, c1 in zip(s["counters"][:hosts], nxt["counters"][:hosts], strict=True)
            ]
            kinds = {
                f"{name}_bytes": nxt.get("classes", {}).get(name, (0, 0))[1]
                - s.get("classes", {}).get(name, (0, 0))[1]
                for name in CLASSES
            }
            return {
                **kinds,
                "sent_bytes": sum(d[0] for d in diff),
                "sent_packets": sum(d[1] for d in diff),
                "delivered_bytes": sum(d[2] for d in diff),
                "delivered_packets": sum(d[3] for d in diff),
                "seconds": nxt["t"] - s["t"],
            }
    return None


def udp_totals(samples: Sequence[dict[str, Any]]) -> dict[str, int]:
    """UDP datagrams the robots' hosts received and dropped (socket buffer full, other
    errors) and the sends that failed for want of a buffer, from the first sample to the last
    each host was seen in."""
    first: dict[int, list[int]] = {}
    last: dict[int, list[int]] = {}
    for s in samples:
        for i, row in enumerate(s.get("udp") or []):
            if row is not None:
                first.setdefault(i, row)
                last[i] = row
    keys = ("received", "rcvbuf_errors", "in_errors", "sndbuf_errors")
    return {k: sum(last[i][j] - first[i][j] for i in last) for j, k in enumerate(keys)}


def clock_residual_ms(
    clocks: Sequence[tuple[float, float]], last: dict[int, dict[str, Any]]
) -> float:
    """Largest pairwise disagreement of the robots' clocks at their last report: each robot's
    offset plus the correction it made (``protocol.clock_sync``); drift not counted."""
    now = [c[0] + float(last[i].get("clock_correction_s", 0.0)) for i, c in enumerate(clocks)
           if i in last]  # fmt: skip
    return 1000 * (max(now) - min(now)) if now else math.nan


def loss_totals(loss: dict[int, tuple[int, int]]) -> dict[str, float]:
    """Frames through the lossy chains: the applied loss weighted by frames, the loss seen, and
    the frames of out-of-range pairs (all dropped)."""
    lossy = {p: v for p, v in loss.items() if p < CUT}
    reached = sum(v[0] for v in lossy.values())
    dropped = sum(v[1] for v in lossy.values())
    applied = sum(p * v[0] for p, v in lossy.items()) / reached / 100 if reached else math.nan
    return {
        "lossy_frames": reached,
        "lossy_dropped": dropped,
        "loss_applied": applied,
        "loss_seen": dropped / reached if reached else math.nan,
        "cut_frames": loss.get(CUT, (0, 0))[0],
    }


def summarise(
    *,
    options: dict[str, Any],
    statuses: Sequence[dict[str, Any]],
    samples: Sequence[dict[str, Any]],
    loss: dict[int, tuple[int, int]],
    applied: Sequence[float],
    exits: Sequence[int | None],
    observer_exit: int | None,
    started: float,
    epoch: float,
    period: float,
    clocks: Sequence[tuple[float, float]],
    channel: str,
) -> dict[str, Any]:
    """The run's record (see the module doc)."""
    n, rounds = int(options["robots"]), int(options["rounds"])
    by_round = _by_round(statuses)
    per_round = []
    for r in range(1, rounds + 1):
        got = by_round.get(r, {})
        prev = by_round.get(r - 1, {})
        accs = [float(s["acc"]) for s in got.values() if s.get("acc") is not None]
        computed = sum(_sent(s) - _sent(prev[i]) for i, s in got.items() if i in prev)
        row: dict[str, Any] = {
            "round": r,
            "reporting": len(got),
            "acc_mean": sum(accs) / len(accs) if accs else math.nan,
            "computed_bytes": computed,
            "clusters": len({s.get("cluster") for s in got.values() if s.get("cluster", -1) >= 0}),
        }
        wire = _wire(samples, r, n)
        if wire is not None:
            row.update({f"wire_{k}": v for k, v in wire.items()})
        per_round.append(row)
    discovered = [e["t"] for e in statuses if "discovered" in e]
    found = [(e["t"] - started, int(e["found"])) for e in statuses if "found" in e]
    before = _wire(samples, 0, n)
    last = {i: s for r in sorted(by_round) for i, s in by_round[r].items()}
    reasons: Counter[str] = Counter()
    for s in last.values():
        reasons.update(s.get("transport", {}).get("reasons", {}))
        reasons.update(s.get("rejected", {}))
    full = [row for row in per_round if row.get("wire_sent_bytes") is not None]
    wire_per_robot_round = (
        sum(row["wire_sent_bytes"] for row in full) / len(full) / n if full else math.nan
    )
    computed_per_robot_round = (
        sum(row["computed_bytes"] for row in full) / len(full) / n if full else math.nan
    )
    kinds = {
        f"{name}_bytes_per_robot_round": (
            sum(row.get(f"wire_{name}_bytes", 0) for row in full) / len(full) / n
            if full
            else math.nan
        )
        for name in CLASSES
    }
    ok = (
        all(e == 0 for e in exits)
        and len(exits) == n
        and all(row["reporting"] == n for row in per_round)
    )
    return {
        "options": options,
        "channel": channel,
        "robots": n,
        "rounds": rounds,
        "round_period_s": period,
        "ok": ok,
        "exits": list(exits),
        "observer_exit": observer_exit,
        "robots_exit_0": sum(1 for e in exits if e == 0),
        "reporting_min": min((row["reporting"] for row in per_round), default=0),
        "rounds_all_reported": sum(1 for row in per_round if row["reporting"] == n),
        "merged_per_robot_round": (
            sum(int(s.get("merged_total", 0)) for s in last.values()) / n / rounds
        ),
        "acc_last": per_round[-1]["acc_mean"] if per_round else math.nan,
        "discovery_s": discovered[0] - started if discovered else math.nan,
        "epoch_after_s": epoch - started,
        "discovery_found_max": max((f for _, f in found), default=0),
        "discovery_half_s": next((t for t, f in found if 2 * f >= n), math.nan),
        "udp": udp_totals(samples),
        "clock_residual_ms": clock_residual_ms(clocks, last),
        "clock_corrections_s": [
            float(last[i].get("clock_correction_s", 0.0)) if i in last else None for i in range(n)
        ],
        "startup_wire_bytes": before["sent_bytes"] if before else math.nan,
        "wire_bytes_per_robot_round": wire_per_robot_round,
        "computed_bytes_per_robot_round": computed_per_robot_round,
        "wire_over_computed": (
            wire_per_robot_round / computed_per_robot_round
            if computed_per_robot_round
            else math.nan
        ),
        **kinds,
        "robot_kbit_s": wire_per_robot_round * 8 / period / 1000 if period else math.nan,
        "bytes_per_packet": (
            sum(row["wire_sent_bytes"] for row in full)
            / max(1, sum(row["wire_sent_packets"] for row in full))
            if full
            else math.nan
        ),
        "loss": {str(k): list(v) for k, v in loss.items()},
        **loss_totals(loss),
        "loss_applied_pairs_mean": (
            sum(a for a in applied if not math.isnan(a)) / 100 / max(1, len(applied))
        ),
        "rejected": dict(reasons),
        "late": int(reasons.get("late", 0)),
        "clock_offsets_s": [c[0] for c in clocks],
        "clock_drift_ppm": [c[1] for c in clocks],
        "per_round": per_round,
    }


def headline(result: dict[str, Any]) -> str:
    """One paragraph for the terminal."""
    return (
        f"fleet: {result['robots']} robots, {result['rounds']} rounds, every round reported by "
        f">= {result['reporting_min']}/{result['robots']}, exit 0: "
        f"{result['robots_exit_0']}/{result['robots']}; final acc {result['acc_last']:.3f}; "
        f"discovery {result['discovery_s']:.1f} s; wire {result['wire_bytes_per_robot_round']:,.0f}"
        f" B/robot/round vs computed {result['computed_bytes_per_robot_round']:,.0f} "
        f"({result['robot_kbit_s']:.1f} kbit/s per robot); loss applied "
        f"{result['loss_applied']:.3f} seen {result['loss_seen']:.3f}"
    )
