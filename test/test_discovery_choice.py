"""discovery:=auto picks a DDS discovery that holds every participant the launch starts, in
every sim mode, or fails before anything starts (nodes/discovery.py; no ROS needed)."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gossip_learning.nodes.discovery import (
    LOCALHOST_SLOTS,
    RESERVE,
    SERVER_PREFIX,
    DiscoveryError,
    choose_discovery,
    launch_participants,
    port_capacity,
    profile_capacity,
    users_own_discovery,
)

ROOT = Path(__file__).resolve().parents[1]
PROFILE = str(ROOT / "config" / "fastdds_localhost.xml")
SIMS = [("kinematic", False), ("kinematic", True), ("plant", False), ("gazebo", False)]


def test_participants_count_every_ros_process_of_each_mode() -> None:
    assert launch_participants("kinematic", 60, False, True) == 61
    assert launch_participants("kinematic", 100, True, True) == 2
    assert launch_participants("plant", 20, False, True) == 42  # robot + controller, plant, monitor
    assert launch_participants("gazebo", 20, False, False) == 61  # + a spawner per robot, bridge
    with pytest.raises(ValueError, match="sim"):
        launch_participants("stage", 3, False, True)


@pytest.mark.parametrize(("sim", "single"), SIMS)
def test_auto_holds_every_swarm_from_2_to_100_robots(
    sim: str, single: bool, tmp_path: Path
) -> None:
    for n in range(2, 101):
        k = launch_participants(sim, n, single, True)
        choice = choose_discovery("auto", k, {"ROS_DOMAIN_ID": "96"}, PROFILE, str(tmp_path))
        assert choice.capacity is not None and k + RESERVE <= choice.capacity, (sim, n)
        if k + RESERVE <= LOCALHOST_SLOTS:
            assert choice.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        else:  # a discovery server, with the rmw told to leave the profiles alone
            assert choice.mode == "server"
            assert choice.capacity == port_capacity(96)
            assert choice.env["FASTRTPS_DEFAULT_PROFILES_FILE"] == PROFILE  # loopback UDP
            assert choice.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
            assert choice.server_env is not None
            assert choice.server_env["ROS_DISCOVERY_SERVER"] == ""


def test_auto_switches_to_a_server_exactly_where_localhost_runs_out() -> None:
    edge = LOCALHOST_SLOTS - RESERVE
    assert choose_discovery("auto", edge, {}, PROFILE).mode == "localhost"
    assert choose_discovery("auto", edge + 1, {}, PROFILE).mode == "server"
    # the caller's LOCALHOST (what loopback_env and many shells set) does not bind auto
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_LOCALHOST_ONLY": "1"}
    server = choose_discovery("auto", 61, env, PROFILE)
    assert server.mode == "server" and server.env["ROS_LOCALHOST_ONLY"] == "0"
    wide = choose_discovery("wide", 61, env, PROFILE)  # simple discovery stays on request
    assert wide.mode == "wide" and "ROS_DISCOVERY_SERVER" not in wide.env


def test_server_clients_and_the_server_agree_on_one_free_loopback_port(tmp_path: Path) -> None:
    choice = choose_discovery("server", 61, {"ROS_DOMAIN_ID": "5"}, PROFILE, str(tmp_path))
    host, port = choice.env["ROS_DISCOVERY_SERVER"].split(":")
    assert host == "127.0.0.1" and 0 < int(port) < 65536
    assert f"127.0.0.1:{port}" in choice.reason and "ROS_SUPER_CLIENT=TRUE" in choice.reason
    assert choice.server_env is not None
    own = choice.server_env["FASTRTPS_DEFAULT_PROFILES_FILE"]
    root = ET.parse(own).getroot()
    text = {el.tag.rsplit("}", 1)[-1]: (el.text or "").strip() for el in root.iter()}
    assert text["discoveryProtocol"] == "SERVER"
    assert text["port"] == port and text["address"] == "127.0.0.1"
    assert text["prefix"] == SERVER_PREFIX  # server 0 of ROS_DISCOVERY_SERVER's list
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", int(port)))  # nothing holds it until the server starts
    # no folder to write the server's profile to: Fast DDS's default port, no server process
    bare = choose_discovery("server", 3, {}, PROFILE)
    assert bare.env["ROS_DISCOVERY_SERVER"] == "127.0.0.1:11811" and bare.server_env is None


@pytest.mark.parametrize(
    "var",
    [
        ("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET"),
        ("ROS_AUTOMATIC_DISCOVERY_RANGE", "system_default"),
        ("ROS_STATIC_PEERS", "192.168.1.7"),
        ("ROS_DISCOVERY_SERVER", "10.0.0.2:11811"),
    ],
)
def test_auto_keeps_a_discovery_the_user_chose_beyond_this_host(var: tuple[str, str]) -> None:
    """RViz on another host must keep seeing the swarm: auto changes nothing in the nodes'
    environment when the caller chose a discovery that reaches beyond this host (issue 24)."""
    for n in (3, 61, 301):
        choice = choose_discovery("auto", n, dict([var]), PROFILE)
        assert choice.mode == "inherit" and choice.env == {}, (var, n)
        assert var[0] in choice.reason
    assert users_own_discovery(dict([var])) is not None
    for quiet in ({}, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, {"ROS_LOCALHOST_ONLY": "1"}):
        assert users_own_discovery(quiet) is None  # stay on this host: auto still sizes it
        assert "SUBNET" in choose_discovery("auto", 5, quiet, PROFILE).reason  # the hint


def test_auto_checks_the_users_own_setting_holds_the_swarm(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match="ROS_AUTOMATIC_DISCOVERY_RANGE=OFF"):
        choose_discovery("auto", 3, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "off"}, PROFILE)
    small = tmp_path / "small.xml"
    small.write_text("<profiles><maxInitialPeersRange>8</maxInitialPeersRange></profiles>")
    with pytest.raises(DiscoveryError, match=r"holds 8.*discovery:=wide"):
        choose_discovery("auto", 10, {"FASTDDS_DEFAULT_PROFILES_FILE": str(small)}, PROFILE)
    assert (
        choose_discovery("auto", 3, {"FASTDDS_DEFAULT_PROFILES_FILE": str(small)}, PROFILE).env
        == {}
    )


def test_a_setting_that_cannot_hold_the_swarm_is_an_error_naming_what_to_change() -> None:
    with pytest.raises(DiscoveryError, match="discovery:=localhost"):
        choose_discovery("localhost", 61, {}, PROFILE)
    with pytest.raises(DiscoveryError, match="discovery:=inherit"):
        choose_discovery("inherit", 61, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, PROFILE)
    with pytest.raises(DiscoveryError, match="discovery:=inherit"):
        choose_discovery("inherit", 61, {"ROS_LOCALHOST_ONLY": "1"}, PROFILE)
    with pytest.raises(DiscoveryError, match="wide profile"):
        choose_discovery("wide", 300, {}, PROFILE)  # no folder to write a wider copy to
    with pytest.raises(DiscoveryError, match="ROS_DOMAIN_ID=232"):  # ports run out at 65535
        choose_discovery("auto", launch_participants("plant", 100, False, True),
                         {"ROS_DOMAIN_ID": "232"}, PROFILE)  # fmt: skip
    with pytest.raises(DiscoveryError, match="ROS_DOMAIN_ID"):
        choose_discovery("auto", 3, {"ROS_DOMAIN_ID": "x"}, PROFILE)
    with pytest.raises(DiscoveryError, match="discovery:="):
        choose_discovery("multicast", 3, {}, PROFILE)


def test_inherit_reads_the_callers_profile(tmp_path: Path) -> None:
    small = tmp_path / "small.xml"
    small.write_text(
        '<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">'
        "<transport_descriptors><transport_descriptor><transport_id>t</transport_id>"
        "<type>UDPv4</type><maxInitialPeersRange>16</maxInitialPeersRange>"
        "</transport_descriptor></transport_descriptors></profiles>",
        encoding="utf-8",
    )
    assert profile_capacity(str(small)) == 16
    assert profile_capacity(PROFILE) == 256
    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": str(small)}
    assert choose_discovery("inherit", 10, env, PROFILE).env == {}
    with pytest.raises(DiscoveryError, match="holds 16"):
        choose_discovery("inherit", 20, env, PROFILE)
    # multicast discovery (no range, no profile): nothing this module can bound
    assert choose_discovery("inherit", 150, {}, PROFILE).capacity is None
    with pytest.raises(DiscoveryError, match="cannot be read"):
        profile_capacity(str(tmp_path / "missing.xml"))


def test_port_capacity_follows_the_rtps_port_formula() -> None:
    # unicast discovery port of id p in domain d: 7400 + 250 d + 10 + 2 p, user port one above
    d = 230
    top = port_capacity(d) - 1
    assert 7400 + 250 * d + 11 + 2 * top <= 65535 < 7400 + 250 * d + 11 + 2 * (top + 1)
    assert port_capacity(0) > 1000
