"""The fleet's network: a bridge, one network namespace and veth pair per host, nftables links.

Everything here runs inside the private namespaces the harness made for itself
(:func:`private_namespace_command`: ``unshare`` of network, mount and PID namespaces with a
private tmpfs on ``/run/netns``), so every address, bridge and rule exists only there and nothing
can leave the machine: the bridge has no uplink and the outer namespace has only ``lo``. When the
harness ends, however it ends, the kernel kills every process of its PID namespace and frees the
mount namespace that held the ``ip netns`` bind mounts; the network namespaces, veths, qdiscs and
rules go with them. :meth:`FleetNet.close` removes them one by one before that, on a clean exit.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gossip_learning.fleet.links import TABLE, classes, port_name, ruleset

BRIDGE = "fleetbr0"
SUBNET = ipaddress.ip_network("10.77.0.0/16")  # exists only inside the harness's namespace
MULTICAST = "224.0.0.0/4"
#: Set in the harness's own process once it runs inside its private namespaces.
INSIDE_ENV = "GOSSIP_LEARNING_FLEET_INSIDE"
TOOLS = ("unshare", "ip", "nft", "tc")


class FleetError(RuntimeError):
    """The fleet's network could not be set up (not root, a tool missing, a command failed)."""


def check_can_run() -> None:
    """Raise :class:`FleetError` unless this process is root and has every tool it needs."""
    if os.geteuid() != 0:
        raise FleetError(
            "the fleet harness needs root: it creates network namespaces, veth pairs, a bridge "
            "and nftables rules (inside a private namespace of its own); run it as root"
        )
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise FleetError(
            f"the fleet harness needs {', '.join(missing)} (Debian: apt-get install iproute2 "
            "nftables util-linux)"
        )


def private_namespace_command(argv: Sequence[str]) -> list[str]:
    """``argv`` run as PID 1 of new network, mount and PID namespaces; ``unshare`` kills it (and
    with it every process of the namespace) if ``unshare`` itself is killed."""
    return [
        "unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
        "--propagation", "private", *argv,
    ]  # fmt: skip


def run(cmd: Sequence[str], stdin: str | None = None) -> str:
    """Run a setup command; a failure is a :class:`FleetError` with its output."""
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FleetError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def host_address(index: int) -> str:
    """Address of host ``index`` on the bridge (10.77.0.0/16, private to the harness)."""
    return str(SUBNET.network_address + 1 + index)


def netns_name(index: int) -> str:
    return f"fleet{index}"


def host_mac(index: int) -> str:
    """MAC address of host ``index``'s ``eth0`` (locally administered, unicast; fixed so that
    every host's neighbour table can be written before any frame is sent)."""
    return "02:77:" + ":".join(f"{b:02x}" for b in (index + 1).to_bytes(4, "big"))


def neighbour_batch(me: int, hosts: int) -> str:
    """``ip -batch`` text that gives host ``me`` a permanent neighbour entry for every other
    host (see :meth:`FleetNet._neighbours`)."""
    return "".join(
        f"neigh replace {host_address(j)} lladdr {host_mac(j)} dev eth0 nud permanent\n"
        for j in range(hosts)
        if j != me
    )


@dataclass
class FleetNet:
    """``hosts`` network namespaces on one bridge (the last one is the observer's), with MTU
    ``mtu`` and an optional egress rate (``rate``, tc syntax such as ``2mbit``) on each host's
    interface."""

    hosts: int
    mtu: int = 1500
    rate: str = ""
    made: list[str] = field(default_factory=list)  # what close() removes, newest last

    def open(self) -> None:
        """Create everything; on any failure remove what was made and raise."""
        if os.environ.get(INSIDE_ENV) != "1":
            raise FleetError("FleetNet.open runs only inside the harness's private namespace")
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        netns_dir = Path("/run/netns")
        netns_dir.mkdir(parents=True, exist_ok=True)
        run(["mount", "-t", "tmpfs", "fleet-netns", str(netns_dir)])  # private: see module doc
        run(["mount", "-t", "sysfs", "fleet-sys", "/sys"])  # this namespace's interfaces
        run(["ip", "link", "set", "lo", "up"])
        # IGMP snooping off: the bridge floods multicast to every host, as a WiFi access point or
        # mesh sends a multicast frame to every station. With snooping on and no querier, the
        # bridge forwarded DDS's discovery group only to the hosts whose IGMP joins it happened
        # to register (35 of 61 at 60 robots), and the rest were never discovered.
        run(["ip", "link", "add", BRIDGE, "mtu", str(self.mtu), "type", "bridge",
             "mcast_snooping", "0"])  # fmt: skip
        self.made.append(f"link:{BRIDGE}")
        run(["ip", "link", "set", BRIDGE, "up"])
        for i in range(self.hosts):
            ns, port = netns_name(i), port_name(i)
            run(["ip", "netns", "add", ns])
            self.made.append(f"netns:{ns}")
            run(["ip", "link", "add", port, "mtu", str(self.mtu), "type", "veth", "peer",
                 "name", "eth0", "address", host_mac(i), "mtu", str(self.mtu),
                 "netns", ns])  # fmt: skip
            run(["ip", "link", "set", port, "master", BRIDGE, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{host_address(i)}/16", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "route", "add", MULTICAST, "dev", "eth0"])
            if self.rate:
                run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root",
                     "tbf", "rate", self.rate, "burst", "32kbit", "latency", "400ms"])  # fmt: skip
        self._neighbours()
        run(["nft", "-f", "-"], ruleset(observer=port_name(self.hosts - 1)))
        self.made.append(f"table:{TABLE}")

    def _neighbours(self) -> None:
        """Every host knows every other host's MAC address from the start (permanent entries).

        The kernel keeps one ARP table for all network namespaces of the machine, and its
        limits (``net.ipv4.neigh.default.gc_thresh1/2/3``: 128/512/1024 by default) exist only
        in the machine's first namespace and count the entries of every namespace together. A
        fleet of N hosts that talk to each other needs N(N-1) entries: 3,660 at 60 robots and
        the observer. Past 1,024 the kernel refused new entries, sends to the hosts without one
        failed with ENOBUFS (a UDP socket without ``IP_RECVERR`` counts them as
        ``SndbufErrors`` and returns success), each namespace ended up with about 1024/N
        neighbours, and DDS discovery, which answers the multicast announcements by unicast,
        never completed (the observer found 15 of 60 robots). A computer of a real fleet has
        its own table. Permanent entries are exempt from those limits, need no ARP exchange
        and take nothing from the machine's table that other programs use; nothing outside
        the harness's own namespaces is changed.
        """
        for i in range(self.hosts):
            run(["ip", "-n", netns_name(i), "-batch", "-"], neighbour_batch(i, self.hosts))

    def exec_prefix(self, index: int) -> list[str]:
        """Prefix that runs a command inside host ``index``'s namespace."""
        return ["ip", "netns", "exec", netns_name(index)]

    def apply(self, text: str) -> None:
        """Run one nft transaction (``links.update``)."""
        run(["nft", "-f", "-"], text)

    def listing(self) -> str:
        """The table as JSON, counters included."""
        return run(["nft", "-j", "list", "table", "bridge", TABLE])

    def classes(self) -> dict[str, tuple[int, int]]:
        """Packets and bytes the robots sent, by kind (:data:`links.CLASSES`)."""
        return classes(run(["nft", "-j", "list", "counters", "table", "bridge", TABLE]))

    def counters(self) -> list[tuple[int, int, int, int]]:
        """Per host: bytes and packets it sent onto the bridge, bytes and packets the bridge
        delivered to it (the bridge-side veth's rx and tx)."""
        out = []
        for i in range(self.hosts):
            stats = Path("/sys/class/net", port_name(i), "statistics")
            out.append(tuple(
                int((stats / name).read_text())
                for name in ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")
            ))  # fmt: skip
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Remove what :meth:`open` made, newest first; errors are reported, not raised."""
        while self.made:
            kind, name = self.made.pop().split(":", 1)
            cmd = {
                "table": ["nft", "delete", "table", "bridge", name],
                "netns": ["ip", "netns", "del", name],  # its veth end goes with it
                "link": ["ip", "link", "del", name],
            }[kind]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"fleet: could not remove {kind} {name}: {proc.stderr.strip()}",
                      file=sys.stderr)  # fmt: skip
