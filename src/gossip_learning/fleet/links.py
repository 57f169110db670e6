"""The radio as the network sees it: per-pair loss from the channel model, as nftables text.

Nothing here runs a command or needs root, so it is unit-tested anywhere. The harness
(:mod:`gossip_learning.fleet.harness`) feeds :func:`ruleset` to ``nft -f`` once and
:func:`update` once per tick: one transaction that replaces every link at once.

The table lives in the bridge family of the namespace that holds the fleet's bridge. A frame from
robot ``i`` to robot ``j`` (also each copy of a flooded multicast frame) passes the bridge's
forward hook with ``iifname`` = ``i``'s port and ``oifname`` = ``j``'s port, where the verdict map
``links`` sends it to a chain per loss percentage: ``cut`` drops everything (out of range),
``l<P>`` drops ``P`` % at random (``numgen random mod 100 < P``). A pair absent from the map gets
through untouched. Every chain counts what it saw and what it dropped, so the loss seen on the wire
can be read beside the loss applied (:func:`loss_seen`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gossip_learning.channel import Channel, GilbertElliott, pairwise_distances

TABLE = "fleet"
CUT = 100  # a loss of 100 % is the out-of-range chain


def port_name(index: int) -> str:
    """The bridge-side veth of robot ``index`` (``fp<i>``; short: interface names end at 15)."""
    return f"fp{index}"


def chain_name(percent: int) -> str:
    """The chain a pair with ``percent`` % loss jumps to."""
    return "cut" if percent >= CUT else f"l{percent}"


@dataclass
class LinkModel:
    """Loss of every ordered robot pair from positions: the channel's reception probability times
    a Gilbert-Elliott burst state (``bursts``, stepped by the caller once per phase)."""

    channel: Channel
    bursts: GilbertElliott | None = None

    def loss_percent(self, positions: Any) -> np.ndarray:
        """(N, N) integer drop percentages: 100 out of range, 0 on the diagonal."""
        dist = pairwise_distances(positions)
        p = self.channel.reception_probability(dist)
        cut = ~self.channel.in_range(dist)
        if self.bursts is not None:
            p = p * self.bursts.keep
        loss = np.rint(100.0 * (1.0 - p)).astype(np.int64)
        loss = np.clip(loss, 0, CUT - 1)  # in range stays in range, however lossy
        loss[cut] = CUT
        np.fill_diagonal(loss, 0)
        return loss


#: What the robots send, by kind (named counters of the ``classify`` chain): RTPS discovery
#: (SPDP/SEDP: the even ports of the RTPS port mapping), RTPS user traffic (data, heartbeats and
#: acknacks of the topics: the odd ports), continuation fragments of IP datagrams larger than the
#: MTU (no UDP header, so no port), and anything else (IGMP, ARP, ...).
CLASSES = ("rtps_discovery", "rtps_user", "ip_fragments", "other")


def ruleset(observer: str = "") -> str:
    """The table: the ``links`` map, ``cut`` and ``l1``..``l99``, the forward chain, and the
    ``classify`` chain that counts what the robots (every port but ``observer``) send."""
    lines = [f"table bridge {TABLE} {{", "  map links {", "    type ifname . ifname : verdict"]
    lines += ["  }"]
    for name in CLASSES:
        lines += [f"  counter {name} {{", "  }"]
    lines += ["  chain classify {", "    type filter hook prerouting priority 0; policy accept;"]
    if observer:
        lines += [f'    iifname "{observer}" accept']
    lines += [
        '    ip frag-off & 0x1fff != 0 counter name "ip_fragments" accept',
        '    udp dport & 1 == 0 counter name "rtps_discovery" accept',
        '    udp dport & 1 == 1 counter name "rtps_user" accept',
        '    counter name "other"',
        "  }",
    ]
    lines += ["  chain cut {", "    counter drop", "  }"]
    for pct in range(1, CUT):
        lines += [
            f"  chain {chain_name(pct)} {{",
            "    counter",
            f"    numgen random mod 100 < {pct} counter drop",
            "  }",
        ]
    lines += [
        "  chain forward_links {",
        "    type filter hook forward priority 0; policy accept;",
        "    iifname . oifname vmap @links",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def update(loss: np.ndarray, ports: Sequence[str]) -> str:
    """One transaction that replaces every element of ``links`` with the pairs of ``loss``
    ((N, N) percentages; row = sender, column = receiver) between ``ports``."""
    out = [f"flush map bridge {TABLE} links"]
    elements = [
        f'"{ports[i]}" . "{ports[j]}" : jump {chain_name(int(loss[i, j]))}'
        for i, j in zip(*np.nonzero(loss), strict=True)
        if i != j
    ]
    for start in range(0, len(elements), 500):  # keep single commands short
        out.append(
            f"add element bridge {TABLE} links {{ {', '.join(elements[start : start + 500])} }}"
        )
    return "\n".join(out) + "\n"


def loss_seen(listing: str) -> dict[int, tuple[int, int]]:
    """From ``nft -j list table bridge fleet``: per loss chain percentage (100 = cut), the frames
    that reached it and the frames it dropped."""
    seen: dict[int, tuple[int, int]] = {}
    for item in json.loads(listing).get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        name = rule["chain"]
        if name == "cut":
            pct = CUT
        elif name.startswith("l") and name[1:].isdigit():
            pct = int(name[1:])
        else:
            continue
        counts = [e["counter"]["packets"] for e in rule["expr"] if "counter" in e]
        if not counts:
            continue
        reached, dropped = seen.get(pct, (0, 0))
        if pct == CUT:
            seen[pct] = (reached + counts[0], dropped + counts[0])
        elif any("drop" in e for e in rule["expr"]):
            seen[pct] = (reached, dropped + counts[0])
        else:
            seen[pct] = (reached + counts[0], dropped)
    return {k: v for k, v in sorted(seen.items()) if v[0]}


def classes(listing: str) -> dict[str, tuple[int, int]]:
    """From ``nft -j list counters table bridge fleet``: packets and bytes per class."""
    out = {}
    for item in json.loads(listing).get("nftables", []):
        c = item.get("counter")
        if c and c.get("name") in CLASSES:
            out[c["name"]] = (int(c["packets"]), int(c["bytes"]))
    return out
