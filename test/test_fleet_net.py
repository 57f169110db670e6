"""The fleet's network without ROS (root): namespaces on a bridge, and the nftables links really
cut and thin the datagrams between them.

Inside a private network and mount namespace (as the harness runs), three hosts; host 0 sends
multicast datagrams, the links say 0 -> 1 loses 30 % and 0 -> 2 is out of range. Host 1 must hear
about 70 %, host 2 nothing, the loss chain's counters must agree, and MTU and rate must be set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in ("unshare", "ip", "nft", "tc")),
    reason="needs root, unshare, ip, nft and tc",
)

RECEIVE = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 9000))
mreq = struct.pack("4sl", socket.inet_aton("239.255.0.9"), socket.INADDR_ANY)
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.settimeout(3.0)
n = 0
try:
    while True:
        s.recv(4096)
        n += 1
except socket.timeout:
    pass
print(n)
"""
SEND = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
for _ in range(600):
    s.sendto(b"x" * 200, ("239.255.0.9", 9000))
    time.sleep(0.001)
"""

INSIDE = textwrap.dedent(
    """
    import json, subprocess, sys, time
    import numpy as np
    from gossip_learning.fleet.links import loss_seen, port_name, update
    from gossip_learning.fleet.netns import FleetNet, netns_name

    net = FleetNet(3, mtu=1400, rate="50mbit")
    net.open()
    try:
        loss = np.array([[0, 30, 100], [30, 0, 0], [100, 0, 0]])
        net.apply(update(loss, [port_name(i) for i in range(3)]))
        def inside(i, code):
            return subprocess.Popen(net.exec_prefix(i) + [sys.executable, "-c", code],
                                    stdout=subprocess.PIPE, text=True)
        receivers = [inside(1, RECEIVE), inside(2, RECEIVE)]
        time.sleep(0.5)
        inside(0, SEND).wait()
        heard = [int(r.communicate()[0]) for r in receivers]
        mtu = subprocess.run(["ip", "-n", netns_name(0), "-j", "link", "show", "eth0"],
                             capture_output=True, text=True).stdout
        qdisc = subprocess.run(["ip", "netns", "exec", netns_name(0), "tc", "qdisc", "show",
                                "dev", "eth0"], capture_output=True, text=True).stdout
        seen = loss_seen(net.listing())
        snooping = open("/sys/class/net/fleetbr0/bridge/multicast_snooping").read().strip()
        print(json.dumps({"heard": heard, "mtu": json.loads(mtu)[0]["mtu"], "qdisc": qdisc,
                          "snooping": snooping,
                          "seen": {str(k): v for k, v in seen.items()}}))
    finally:
        net.close()
    """
)


def test_links_cut_and_thin_datagrams_between_namespaces() -> None:
    code = f"RECEIVE = {RECEIVE!r}\nSEND = {SEND!r}\n{INSIDE}"
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", sys.executable, "-c", code],
        env={**os.environ, "GOSSIP_LEARNING_FLEET_INSIDE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    heard_1, heard_2 = out["heard"]
    assert heard_2 == 0  # out of range: cut
    assert 600 * 0.6 <= heard_1 <= 600 * 0.8  # 30 % loss (binomial sd ~11 datagrams)
    reached, dropped = out["seen"]["30"]
    assert reached >= 600 and 0.2 <= dropped / reached <= 0.4
    assert out["mtu"] == 1400
    assert "tbf" in out["qdisc"]
    # multicast reaches every host whether or not the bridge registered its IGMP join (with
    # snooping on, 26 of 61 hosts never got DDS's discovery multicast)
    assert out["snooping"] == "0"
