"""Partition resolution between real nodes on this machine (loopback addresses).

A real network cut needs the lab (namespaces); here: dead servers, a paused server, and NP
methods whose answer is known (majority, a ping target on loopback)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from harness import alive, node_config, session_pids

from config.clusterkey import generate_cluster_key
from supervisor.node_actions import EXIT_ESCALATED, RECORD_FILE

TIMING = {"heartbeat_interval": "100ms", "heartbeat_timeout": "600ms"}
HB = {"name": "lan", "type": "lanhb", "network": "public", "port": 29121}
MAJORITY = {"name": "votes", "type": "majority"}
PING = {
    "name": "router",
    "type": "pingnp",
    "targets": ["127.0.0.1"],
    "timeout": "500ms",
    "retry": 1,
}
NODE = {"stop_timeout": "2s"}  # a short fencing wait; actors hung 1 s are killed (harness)


@pytest.fixture
def cluster(start_node, tmp_path):
    key = str(tmp_path / "cluster.key")
    generate_cluster_key(key)

    def start(servers, nps=(MAJORITY,)):
        text = node_config(
            [],
            node=NODE,
            servers=servers,
            subnet="127.0.0",
            heartbeats=(HB,),
            timing=TIMING,
            key_file=key,
        )
        text += "".join(
            "\n[[np]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in np.items()) for np in nps
        )
        nodes = {s: start_node(config=text, server=s) for s in servers}
        for node in nodes.values():
            node.wait_status(lambda s: all(x["state"] == "online" for x in s["servers"]))
        return nodes

    return start


def record(node) -> dict:
    with open(os.path.join(node.state_dir, RECORD_FILE)) as f:
        return json.load(f)


def test_a_paused_server_fences_itself_when_it_wakes(cluster) -> None:
    nodes = cluster(("node1", "node2"))
    n1, n2 = nodes["node1"], nodes["node2"]
    with n1.watch("alert.") as w:
        for pid in session_pids(n2.sid):
            os.kill(pid, signal.SIGSTOP)  # hung but alive
        w.wait_for("alert.error", lambda b: b["event"] == "server_down", timeout=10)
        w.wait_for("alert.info", lambda b: b["event"] == "np_survive", timeout=10)
        time.sleep(1.5)  # longer than node2's own hang-kill timeout (1 s): it must not matter
        for pid in session_pids(n2.sid):
            os.kill(pid, signal.SIGCONT)
        fenced = w.wait_for("alert.info", lambda b: b["event"] == "server_fenced", timeout=30)
        # the order in time: node2 had stood down before node1 took it for fenced
        assert n2.proc.poll() == EXIT_ESCALATED
        assert not any(alive(p) for p in session_pids(n2.sid))
    assert "stalled" in record(n2)["reason"] and record(n2)["action"] == "shutdown"
    assert fenced.body["server"] == "node2"
    assert n1.status()["node"]["state"] == "running"


def test_majority_keeps_two_of_three_and_fences_the_dead_one(cluster) -> None:
    nodes = cluster(("node1", "node2", "node3"))
    with nodes["node1"].watch("alert.") as w:
        nodes["node3"].kill_all()
        w.wait_for("alert.info", lambda b: b["event"] == "np_survive", timeout=10)
        w.wait_for("alert.info", lambda b: b["event"] == "server_fenced", timeout=10)
    status = nodes["node1"].status()
    assert {s["name"]: s.get("fenced") for s in status["servers"]}["node3"] is True
    assert status["np"] == [{"name": "votes", "state": "normal"}]  # two of three: a majority
    assert nodes["node2"].status()["node"]["state"] == "running"


def test_a_server_left_alone_without_a_majority_stands_down(cluster) -> None:
    nodes = cluster(("node1", "node2", "node3"))
    n3 = nodes["node3"]
    nodes["node1"].kill_all()
    nodes["node2"].kill_all()  # node3 cannot tell dead peers from a cut: 1 of 3 is no majority
    assert n3.wait(30) == EXIT_ESCALATED
    assert "isolated" in record(n3)["reason"] and "votes: isolated" in record(n3)["reason"]
    assert not any(alive(p) for p in session_pids(n3.sid))


def test_ping_np_that_reaches_its_target_survives_and_shows_in_status(cluster) -> None:
    nodes = cluster(("node1", "node2"), nps=(PING,))
    n1 = nodes["node1"]
    n1.wait_status(lambda s: s["np"] == [{"name": "router", "state": "normal"}], timeout=15)
    with n1.watch("alert.") as w:
        nodes["node2"].kill_all()
        ok = w.wait_for("alert.info", lambda b: b["event"] == "np_survive", timeout=10)
    assert "router: survive" in ok.body["message"]
    time.sleep(0.5)
    assert n1.status()["node"]["state"] == "running"
