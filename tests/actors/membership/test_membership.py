"""Membership between real nodes on this machine (loopback addresses), read through status."""

from __future__ import annotations

import os
import signal
import time

import pytest
from harness import node_config

from config.clusterkey import generate_cluster_key

TIMING = {"heartbeat_interval": "100ms", "heartbeat_timeout": "600ms"}
HBS = (
    {"name": "lan1", "type": "lanhb", "network": "public", "port": 29111},
    {"name": "lan2", "type": "lankhb", "network": "public", "port": 29112},
)


@pytest.fixture
def cluster(start_node, tmp_path):
    key = str(tmp_path / "cluster.key")
    generate_cluster_key(key)

    def start(servers=("node1", "node2"), node=None):
        text = node_config(
            [],
            node=node,
            servers=servers,
            subnet="127.0.0",
            heartbeats=HBS,
            timing=TIMING,
            key_file=key,
        )
        return {s: start_node(config=text, server=s) for s in servers}

    return start


def servers(status: dict) -> dict[str, str]:
    return {s["name"]: s["state"] for s in status["servers"]}


def all_online(node, names, timeout: float = 10.0) -> dict:
    return node.wait_status(lambda s: servers(s) == {n: "online" for n in names}, timeout)


def test_every_server_sees_every_server_online(cluster) -> None:
    nodes = cluster(("node1", "node2", "node3"))
    every_path_normal = {"lan1": "normal", "lan2": "normal"}

    def settled(status: dict) -> bool:
        # Servers started one after another: a peer given up on before it started is settling.
        me = status["server"]
        return servers(status) == {n: "online" for n in nodes} and all(
            x["heartbeats"] == every_path_normal for x in status["servers"] if x["name"] != me
        )

    for node in nodes.values():
        node.wait_status(settled)
    out = nodes["node2"].cli("status")
    assert out.returncode == 0 and "node3" in out.stdout and "lan2" in out.stdout


def test_a_dead_server_is_down_with_an_alert(cluster) -> None:
    nodes = cluster()
    all_online(nodes["node1"], nodes)
    with nodes["node1"].watch("alert.") as w:
        nodes["node2"].kill_all()
        down = w.wait_for("alert.error", lambda b: b["event"] == "server_down", timeout=10)
    assert down.body["server"] == "node2" and "every heartbeat path" in down.body["message"]
    nodes["node1"].wait_status(lambda s: servers(s)["node2"] == "offline", timeout=5)


def test_one_silent_path_leaves_the_server_up_with_a_warning(cluster) -> None:
    # node2's supervisor must not replace its stopped heartbeat actor during the test
    nodes = cluster(node={"beat_timeout": "60s"})
    n1, n2 = nodes["node1"], nodes["node2"]
    all_online(n1, nodes)
    with n1.watch("alert.") as w:
        os.kill(n2.actor("hb.lan1")["pid"], signal.SIGSTOP)
        w.wait_for(
            "alert.warning", lambda b: b["event"] == "path_lost" and b["heartbeat"] == "lan1"
        )
        w.wait_for("alert.warning", lambda b: b["event"] == "one_path_left")
        time.sleep(1.0)  # well past the timeout: the other path keeps node2 up
    assert servers(n1.status())["node2"] == "online"
    os.kill(n2.actor("hb.lan1")["pid"], signal.SIGCONT)


def test_membership_restart_keeps_the_view_and_the_epoch_grows(cluster) -> None:
    nodes = cluster()
    n1 = nodes["node1"]
    all_online(n1, nodes)
    before = n1.request("view", service="membership")["epoch"]
    with n1.watch("member.view") as w:
        os.kill(n1.actor("membership")["pid"], signal.SIGKILL)
        after = w.wait_for("member.view", lambda b: b["epoch"] > before, timeout=10)
    assert after.body["servers"]["node2"]["state"] == "online"  # seeded from the heartbeats


def test_status_lists_servers_in_priority_order_from_any_server(cluster) -> None:
    nodes = cluster(("node1", "node2", "node3"))
    for node in nodes.values():
        status = all_online(node, nodes)
        assert [s["name"] for s in status["servers"]] == ["node1", "node2", "node3"]
