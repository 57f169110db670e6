"""Which DDS discovery a launched swarm uses, chosen from how many participants it starts.

rmw_fastrtps with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` announces a participant to the
discovery ports of participant ids 0..31 on 127.0.0.1 (Fast DDS's ``maxInitialPeersRange`` of
32): past 32 participants on one host, two with high ids never meet and part of the swarm runs on
its own. The shipped profile ``config/fastdds_localhost.xml`` (loopback UDP only) widens that to
256 ids. Every participant id also needs two UDP ports, ``7400 + 250 * domain + 10 + 2 * id`` and
the next, below 65536, so a high ``ROS_DOMAIN_ID`` caps the ids too.

:func:`choose_discovery` picks, for ``discovery:=auto`` (the launch's default):

- the caller's own discovery where the environment chooses one that reaches beyond this host or
  shapes discovery itself (``ROS_AUTOMATIC_DISCOVERY_RANGE`` SUBNET, SYSTEM_DEFAULT or OFF,
  ``ROS_STATIC_PEERS``, ``ROS_DISCOVERY_SERVER``, a Fast DDS profile): kept as it is, so RViz on
  another host still sees the swarm, and checked that it holds the swarm;
- else (nothing set, or LOCALHOST: stay on this host) localhost while the swarm's participants
  fit its 32 slots (keeping :data:`RESERVE` for the launch process and the user's tools), else
  a discovery server on loopback (``server``).

Why a server past 32: with simple discovery (``wide``: the loopback profile, 256 slots) every
participant announces every endpoint (a robot process has about 40, two thirds of them the
parameter and lifecycle services of its robot's node) to every other and keeps what the others
announce. At 60 robot processes on two cores that took more CPU than the robots' start-ups
(1 to 2 cores for a minute and more, before round 1) and about 9 MB per process
(``benchmarks/ros_swarm.py``). A Fast DDS discovery server (``server``: a participant of the
launch, :mod:`gossip_learning.nodes.dds_server`) hands each client only the endpoints it can
match, so a robot hears of the other robots' swarm topics, not of their services. Tools see
the whole graph as a super client: ``ROS_DISCOVERY_SERVER=127.0.0.1:<port>
ROS_SUPER_CLIENT=TRUE`` (the launch logs the port).

An explicit or inherited setting that cannot hold the swarm is a :class:`DiscoveryError` before
any process starts. Pure Python, no ROS import.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DISCOVERY_MODES = ("auto", "localhost", "wide", "server", "inherit")
#: Participant ids ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` reaches (rmw_fastrtps, Jazzy).
LOCALHOST_SLOTS = 32
#: Participants kept free besides the swarm's: the ``ros2 launch`` process itself (launch_ros's
#: node), the ros2 daemon and a tool or two (``ros2 topic echo``, RViz).
RESERVE = 4
FASTDDS_RMW = "rmw_fastrtps_cpp"
#: GUID prefix of server 0 as ``ROS_DISCOVERY_SERVER`` names it (Fast DDS's convention).
SERVER_PREFIX = "44.53.00.5f.45.50.52.4f.53.49.4d.41"
#: Fast DDS's default discovery server port, used where the launch picks none.
SERVER_PORT = 11811
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


#: Appended to the log line when the launch keeps discovery on this host.
_HINT = (
    "; this host only: set ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET (or a discovery server) in the "
    "environment for tools on other hosts to see the swarm"
)


def _server_hint(port: int) -> str:
    return (
        f"; tools on this host see the swarm with ROS_DISCOVERY_SERVER=127.0.0.1:{port} "
        "ROS_SUPER_CLIENT=TRUE (e.g. ros2 topic echo --no-daemon)"
    )


class DiscoveryError(ValueError):
    """The discovery setting cannot hold the swarm; raised before any process starts."""


@dataclass(frozen=True)
class DiscoveryChoice:
    """What :func:`choose_discovery` decided: the mode used, the environment every node gets,
    the participants counted, how many the setting holds, and why (one line for the log)."""

    mode: str
    env: dict[str, str] = field(default_factory=dict)
    participants: int = 0
    capacity: int | None = None
    reason: str = ""
    server_env: dict[str, str] | None = None  # ``server``: the discovery server process's


def launch_participants(sim: str, robots: int, single_process: bool, monitor: bool) -> int:
    """DDS participants a launch starts (one per ROS process): the robot processes, per robot a
    mobility (cmd_vel) controller with ``sim:=plant``/``gazebo``, the plant node or the Gazebo
    bridge and spawners (``ros_gz_sim create``, one per robot, all starting at once), the
    monitor."""
    if sim == "kinematic":
        count = 1 if single_process else robots
    elif sim == "plant":
        count = 2 * robots + 1
    elif sim == "gazebo":
        count = 3 * robots + 1
    else:
        raise ValueError(f"unknown sim mode {sim!r}")
    return count + (1 if monitor else 0)


def port_capacity(domain: int) -> int:
    """Participant ids whose two unicast ports stay below 65536 in ROS domain ``domain``."""
    return max(0, (65535 - (7400 + 250 * domain + 11)) // 2 + 1)


def profile_capacity(path: str) -> int | None:
    """``maxInitialPeersRange`` of a Fast DDS profile's UDP transport, or None when the file
    does not set one (then it does not bound discovery in a way this module can tell)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DiscoveryError(f"Fast DDS profile {path!r} cannot be read: {exc}") from None
    ranges = [
        int(el.text or "0")
        for el in root.iter()
        if el.tag.rsplit("}", 1)[-1] == "maxInitialPeersRange"
    ]
    return min(ranges) if ranges else None


def sized_profile(profile: str, slots: int, folder: str) -> str:
    """A copy of the Fast DDS profile ``profile`` whose ``maxInitialPeersRange`` is ``slots``,
    written to ``folder``; returns its path."""
    text = Path(profile).read_text(encoding="utf-8")
    sized, count = re.subn(
        r"<maxInitialPeersRange>\s*\d+\s*</maxInitialPeersRange>",
        f"<maxInitialPeersRange>{slots}</maxInitialPeersRange>",
        text,
    )
    if not count:
        raise DiscoveryError(f"Fast DDS profile {profile!r} has no maxInitialPeersRange to widen")
    out = Path(folder) / f"fastdds_localhost_{slots}.xml"
    out.write_text(sized, encoding="utf-8")
    return str(out)


def server_profile(folder: str, port: int) -> str:
    """Write the Fast DDS profile of the launch's discovery server (UDP on 127.0.0.1 only,
    listening on ``port``, server 0's GUID prefix) to ``folder``; returns its path."""
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>gossip_learning_loopback</transport_id>
      <type>UDPv4</type>
      <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="gossip_learning_discovery_server" is_default_profile="true">
    <rtps>
      <prefix>{SERVER_PREFIX}</prefix>
      <userTransports><transport_id>gossip_learning_loopback</transport_id></userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
      <builtin>
        <discovery_config><discoveryProtocol>SERVER</discoveryProtocol></discovery_config>
        <metatrafficUnicastLocatorList>
          <locator><udpv4><address>127.0.0.1</address><port>{int(port)}</port></udpv4></locator>
        </metatrafficUnicastLocatorList>
      </builtin>
    </rtps>
  </participant>
</profiles>
"""
    out = Path(folder) / f"fastdds_server_{int(port)}.xml"
    out.write_text(text, encoding="utf-8")
    return str(out)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing holds now (the discovery server's)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _domain(environ: Mapping[str, str]) -> int:
    text = environ.get("ROS_DOMAIN_ID", "").strip() or "0"
    try:
        return int(text)
    except ValueError:
        raise DiscoveryError(f"ROS_DOMAIN_ID={text!r} is not an integer") from None


def _inherited(environ: Mapping[str, str], profile: str) -> tuple[str, int | None]:
    """What the caller's environment gives: a label and how many participants it holds."""
    if environ.get("ROS_LOCALHOST_ONLY", "").strip() == "1" or (
        environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper() == "LOCALHOST"
    ):
        return "localhost (from the environment)", LOCALHOST_SLOTS
    for var in PROFILE_VARS:
        path = environ.get(var, "").strip()
        if path:
            same = Path(path).resolve() == Path(profile).resolve()
            return f"{var}={path}", 256 if same else profile_capacity(path)
    return "the rmw's default (multicast)", None


def users_own_discovery(environ: Mapping[str, str]) -> str | None:
    """The variable by which the caller's environment chooses a discovery that ``auto`` keeps
    (one that reaches other hosts or shapes discovery itself), or None when it sets nothing or
    only asks to stay on this host (``LOCALHOST``, ``ROS_LOCALHOST_ONLY=1``)."""
    scope = environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper()
    if scope in ("SUBNET", "SYSTEM_DEFAULT", "OFF"):
        return f"ROS_AUTOMATIC_DISCOVERY_RANGE={scope}"
    for var in ("ROS_STATIC_PEERS", "ROS_DISCOVERY_SERVER", *PROFILE_VARS):
        if environ.get(var, "").strip():
            return f"{var}={environ[var].strip()}"
    return None


def _no_localhost_only(environ: Mapping[str, str]) -> dict[str, str]:
    """Jazzy's rcl still honours the deprecated ``ROS_LOCALHOST_ONLY=1`` over the discovery
    range; the chosen setting (loopback only as well) overrides it."""
    return {"ROS_LOCALHOST_ONLY": "0"} if "ROS_LOCALHOST_ONLY" in environ else {}


def choose_discovery(
    requested: str,
    participants: int,
    environ: Mapping[str, str],
    profile: str,
    folder: str | None = None,
) -> DiscoveryChoice:
    """The discovery for a launch of ``participants`` DDS participants.

    ``requested``: ``auto`` (the caller's own discovery where :func:`users_own_discovery` finds
    one, else localhost while ``participants + RESERVE`` fits its 32 slots, else ``server``),
    ``localhost``, ``wide`` (the profile ``profile``), ``server`` (a discovery server on a free
    loopback port, clients on ``profile``'s transport; its profile is written to ``folder``) or
    ``inherit`` (``environ`` as it is).
    Past the profile's ``maxInitialPeersRange``, a copy with the range the swarm needs is
    written to ``folder`` (when given) and used instead.
    Raises :class:`DiscoveryError`, naming the launch argument or variable to change, when the
    chosen setting or the domain's port range cannot hold them."""
    if requested not in DISCOVERY_MODES:
        raise DiscoveryError(
            f"launch argument discovery:={requested!r} must be one of {', '.join(DISCOVERY_MODES)}"
        )
    domain = _domain(environ)
    ports = port_capacity(domain)
    if participants > ports:
        raise DiscoveryError(
            f"{participants} DDS participants do not fit ROS_DOMAIN_ID={domain}: its ports hold "
            f"{ports} participant ids; use a smaller ROS_DOMAIN_ID (e.g. 0-101) or fewer robots"
        )
    need = participants + RESERVE
    rmw = environ.get("RMW_IMPLEMENTATION", "").strip() or FASTDDS_RMW
    own = users_own_discovery(environ) if requested == "auto" else None
    if requested == "inherit" or own is not None or (requested == "auto" and rmw != FASTDDS_RMW):
        label, capacity = _inherited(environ, profile)
        if own is not None:
            label = f"{own} (from the environment)"
            if own.endswith("=OFF"):
                capacity = 1  # no process meets another
            elif own.startswith(("ROS_AUTOMATIC_DISCOVERY_RANGE=", "ROS_DISCOVERY_SERVER=")):
                capacity = None  # multicast or a server: nothing this module can bound
        if rmw != FASTDDS_RMW:
            label, capacity = f"{rmw}'s own discovery, not checked", None
        if capacity is not None and need > capacity:
            other = (
                "discovery:=wide (loopback only)" if own else "discovery:=auto or discovery:=wide"
            )
            raise DiscoveryError(
                f"{participants} DDS participants (+{RESERVE} kept free) cannot all meet with "
                f"discovery:={requested} and {label}: it holds {capacity}; change that setting, "
                f"use {other}, or fewer robots"
            )
        return DiscoveryChoice("inherit", {}, participants, capacity, f"inherit: {label}")
    if requested == "auto":
        requested = "localhost" if need <= LOCALHOST_SLOTS else "server"
    if requested == "localhost":
        if need > LOCALHOST_SLOTS:
            raise DiscoveryError(
                f"{participants} DDS participants (+{RESERVE} kept free) do not fit "
                f"discovery:=localhost ({LOCALHOST_SLOTS} participant slots on this host); use "
                f"discovery:=auto or discovery:=wide, or single_process:=true"
            )
        env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", **_no_localhost_only(environ)}
        why = f"localhost: {participants} participants, {LOCALHOST_SLOTS} slots" + _HINT
        return DiscoveryChoice("localhost", env, participants, LOCALHOST_SLOTS, why)
    if requested == "server":
        return _server(participants, ports, environ, profile, folder)
    capacity = profile_capacity(profile) or 256
    if need > capacity:
        if folder is None:
            raise DiscoveryError(
                f"{participants} DDS participants (+{RESERVE} kept free) do not fit the wide "
                f"profile {profile} (maxInitialPeersRange {capacity}); use single_process:=true "
                f"or fewer robots"
            )
        profile, capacity = sized_profile(profile, need, folder), need
    env = {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",  # so the rmw leaves the profile alone
        **_no_localhost_only(environ),
        "FASTRTPS_DEFAULT_PROFILES_FILE": profile,
        "FASTDDS_DEFAULT_PROFILES_FILE": profile,
        "RMW_FASTRTPS_USE_QOS_FROM_XML": "0",
    }
    why = f"wide: {participants} participants, {capacity} slots ({Path(profile).name})" + _HINT
    return DiscoveryChoice("wide", env, participants, capacity, why)


def _server(
    participants: int, ports: int, environ: Mapping[str, str], profile: str, folder: str | None
) -> DiscoveryChoice:
    """``server``: every node a client of one discovery server (see the module) on a free
    loopback port, on ``profile``'s loopback UDP transport; the server's profile goes to
    ``folder`` (none: port :data:`SERVER_PORT`, no file). It holds as many participants as the
    domain has ports for (``ports``: each client still has its own)."""
    port = free_udp_port() if folder is not None else SERVER_PORT
    common = {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",  # so the rmw leaves the profiles alone
        **_no_localhost_only(environ),
        "RMW_FASTRTPS_USE_QOS_FROM_XML": "0",
    }
    env = {
        **common,
        "FASTRTPS_DEFAULT_PROFILES_FILE": profile,
        "FASTDDS_DEFAULT_PROFILES_FILE": profile,
        "ROS_DISCOVERY_SERVER": f"127.0.0.1:{port}",
    }
    server_env = None
    if folder is not None:
        own = server_profile(folder, port)
        server_env = {
            **common,
            "FASTRTPS_DEFAULT_PROFILES_FILE": own,
            "FASTDDS_DEFAULT_PROFILES_FILE": own,
            "ROS_DISCOVERY_SERVER": "",  # the server is no client of another
        }
    why = f"server: {participants} participants, discovery server on 127.0.0.1:{port}"
    return DiscoveryChoice("server", env, participants, ports, why + _server_hint(port), server_env)
