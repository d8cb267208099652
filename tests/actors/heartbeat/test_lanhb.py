"""LAN heartbeats between real nodes on this machine (loopback addresses 127.0.0.11, .12, ...)."""

from __future__ import annotations

import os
import socket
import time

import pytest
from harness import node_config

from actors.heartbeat import frame
from actors.heartbeat.frame import Beat
from config.clusterkey import generate_cluster_key, load_cluster_key

HB = {"name": "lan", "type": "lanhb", "network": "public", "port": 29102}
TIMING = {"heartbeat_interval": "100ms", "heartbeat_timeout": "600ms"}


@pytest.fixture
def cluster(start_node, tmp_path):
    """Start every server of a loopback cluster with one LAN heartbeat; returns {name: node}."""
    key = str(tmp_path / "cluster.key")
    generate_cluster_key(key)

    def start(servers=("node1", "node2"), hb=HB, timing=TIMING):
        text = node_config(
            [], servers=servers, subnet="127.0.0", heartbeats=(hb,), timing=timing, key_file=key
        )
        return {s: start_node(config=text, server=s) for s in servers}

    start.key = key
    return start


def paths(node, hb="lan"):
    return node.request("paths", service=f"hb.{hb}")


def wait_normal(node, peer: str, timeout: float = 5.0) -> None:
    """Until `node` hears `peer` (polled: the first beat may precede any subscription)."""
    deadline = time.monotonic() + timeout
    while paths(node)[peer]["state"] != "normal":
        assert time.monotonic() < deadline, paths(node)
        time.sleep(0.05)


def test_peers_see_each_other(cluster) -> None:
    nodes = cluster()
    wait_normal(nodes["node1"], "node2")
    wait_normal(nodes["node2"], "node1")
    assert nodes["node1"].actor("hb.lan")["critical"] is True
    stats = nodes["node1"].request("stats", service="hb.lan")
    assert stats["realtime"] is True and stats["memory_locked"] is True  # we are root here


def test_a_killed_peer_is_lost_after_the_timeout_never_before(cluster) -> None:
    nodes = cluster()
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_normal(n1, "node2")
    with n1.watch("hb.lan.node2") as w:
        n2.kill_all()  # the machine died
        killed = time.monotonic()
        lost = w.wait_for("hb.lan.node2", lambda b: b["state"] == "error", timeout=10)
        detected = time.monotonic() - killed
    assert lost.body["silent_for"] >= 0.6  # never before the timeout...
    assert detected < 0.6 + 1.0  # ...and soon after it (a generous margin on a busy machine)


def test_a_restarted_heartbeat_actor_is_a_new_incarnation_not_a_replay(cluster) -> None:
    nodes = cluster()
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_normal(n1, "node2")
    before = n1.request("stats", service="hb.lan")["accepted"]
    old = n2.actor("hb.lan")["pid"]
    os.kill(old, 9)  # node2's heartbeat actor only: restarted at once, sequence back to 1
    n2.wait_status(
        lambda s: any(
            a["name"] == "hb.lan" and a["pid"] not in (None, old) and a["state"] == "running"
            for a in s["actors"]
        )
    )
    deadline = time.monotonic() + 5
    while n1.request("stats", service="hb.lan")["accepted"] < before + 5:
        assert time.monotonic() < deadline, "node1 does not accept the new incarnation's beats"
        time.sleep(0.05)
    assert n1.request("stats", service="hb.lan")["dropped"].get("replayed", 0) == 0
    assert paths(n1)["node2"]["state"] == "normal"


def test_forged_replayed_and_garbage_frames_are_counted_not_fatal(cluster) -> None:
    nodes = cluster()
    n1 = nodes["node1"]
    wait_normal(n1, "node2")
    key = load_cluster_key(cluster.key)
    target = ("127.0.0.11", HB["port"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.12", 0))  # node2's address, another port: the address check passes
        s.sendto(b"\\x00garbage", target)
        s.sendto(frame.encode(bytes(32), Beat("node2", 1, 1, {})), target)  # wrong key
        old = frame.encode(key, Beat("node2", 1, 1, {"hb": "lan"}))  # incarnation 1: long past
        s.sendto(frame.encode(key, Beat("node2", 2**63, 1, {"hb": "other"})), target)
        s.sendto(old, target)
        s.sendto(frame.encode(key, Beat("intruder", 1, 1, {})), target)
        s.sendto(frame.encode(key, Beat("node1", 2**63, 1, {})), target)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.13", 0))  # not node2's address
        s.sendto(frame.encode(key, Beat("node2", 2**63, 1, {"hb": "lan"})), target)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        dropped = n1.request("stats", service="hb.lan")["dropped"]
        if sum(dropped.values()) >= 7:
            break
        time.sleep(0.05)
    assert dropped == {
        "garbage": 1,
        "forged": 1,
        "replayed": 1,
        "unknown sender": 1,
        "own frame": 1,
        "wrong source address": 1,
        "another heartbeat's frame": 1,  # recorded on one path, replayed on another
    }
    assert n1.actor("hb.lan")["restarts"] == 0
    assert paths(n1)["node2"]["state"] == "normal"


def test_a_missing_cluster_key_stops_the_node_with_a_clear_message(start_node, tmp_path) -> None:
    text = node_config(
        [],
        servers=("node1", "node2"),
        subnet="127.0.0",
        heartbeats=(HB,),
        timing=TIMING,
        key_file=str(tmp_path / "absent.key"),
    )
    node = start_node(config=text, server="node1", wait=False)
    assert node.wait(30) == 2
    assert "haven config keygen" in node.output()
