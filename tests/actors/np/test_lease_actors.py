"""The `disknp` and `witness` NP actors in real nodes on this machine (loopback addresses):
their `state` and `check` requests, an NP error that is shown and alerted but brings nobody
down, and membership surviving a dead peer through them. (A real network cut needs the lab:
tests/lab/test_np_leases.py.)"""

from __future__ import annotations

import json
import threading

import pytest
from harness import node_config

from actors.np import witness_protocol as wp
from actors.np.witness_server import Witness, WitnessHTTPServer
from config.clusterkey import generate_cluster_key, load_cluster_key

TIMING = {"heartbeat_interval": "100ms", "heartbeat_timeout": "600ms"}
HB = {"name": "lan", "type": "lanhb", "network": "public", "port": 29131}
NODE = {"stop_timeout": "2s"}


@pytest.fixture
def key(tmp_path) -> str:
    path = str(tmp_path / "cluster.key")
    generate_cluster_key(path)
    return path


class WitnessService:
    """A witness service for the cluster of a key, on 127.0.0.1 (in a thread)."""

    def __init__(self, key: str) -> None:
        token = wp.cluster_token(load_cluster_key(key))
        service = Witness({wp.cluster_id(token): token}, max_lease=120, state_path=None)
        service.quiet_until = 0.0  # a fresh witness in a test: nothing granted before
        self.server = WitnessHTTPServer(("127.0.0.1", 0), service)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def witness(key):
    service = WitnessService(key)
    yield service
    service.stop()


@pytest.fixture
def cluster(start_node, key):
    def start(np: dict, servers=("node1", "node2")):
        text = node_config(
            [], node=NODE, servers=servers, subnet="127.0.0", heartbeats=(HB,),
            timing=TIMING, key_file=key,
        )  # fmt: skip
        text += "\n[[np]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in np.items())
        nodes = {s: start_node(config=text, server=s) for s in servers}
        for node in nodes.values():
            node.wait_status(lambda s: all(x["state"] == "online" for x in s["servers"]))
        return nodes

    return start


def np_state(node, name: str) -> str:
    return node.request("state", service=f"np.{name}")["state"]


def wait_np(node, name: str, state: str) -> None:
    node.wait_status(
        lambda s: any((np["name"], np["state"]) == (name, state) for np in s["np"]), timeout=15
    )


def witness_np(url: str) -> dict:
    return {"name": "w", "type": "witness", "url": url, "timeout": "500ms", "interval": "300ms"}


def disk_np(path: str) -> dict:
    return {"name": "disk", "type": "disknp", "device": path, "lease": "1s", "io_timeout": "250ms"}


def test_witness_first_checker_holds_the_lease_and_the_other_is_refused(cluster, witness):
    nodes = cluster(witness_np(witness.url))
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_np(n1, "w", "normal")
    assert n1.actor("np.w")["critical"] is True
    assert n2.request("check", service="np.w", timeout=5)["reachable"] is True
    refused = n1.request("check", service="np.w", timeout=5)
    assert refused["reachable"] is False and refused["holder"] == "node2"
    assert n2.request("check", service="np.w", timeout=5)["reachable"] is True  # it holds
    stats = n1.request("stats", service="np.w")
    assert stats["refused"] == 1 and stats["state"] == "normal"


def test_an_unreachable_witness_is_an_np_error_not_a_stand_down(cluster, witness):
    nodes = cluster(witness_np(witness.url))
    n1 = nodes["node1"]
    wait_np(n1, "w", "normal")
    with n1.watch("alert.") as w:
        witness.stop()  # the witness host goes away while the heartbeats are fine
        alert = w.wait_for("alert.warning", lambda b: b["event"] == "np_error", timeout=10)
    # a check under way when the witness went gets a reset; the next ones cannot connect
    message = alert.body["message"]
    assert "cannot connect" in message or "talking to the witness" in message, message
    wait_np(n1, "w", "error")
    assert n1.request("check", service="np.w", timeout=5)["reachable"] is False
    assert n1.status()["node"]["state"] == "running"
    assert all(s["state"] == "online" for s in n1.status()["servers"])


def test_disk_np_one_holder_and_its_state(cluster, tmp_path):
    area = tmp_path / "np.img"
    area.write_bytes(bytes(1 << 16))
    nodes = cluster(disk_np(str(area)))
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_np(n1, "disk", "normal")
    wait_np(n2, "disk", "normal")
    won = n1.request("check", service="np.disk", timeout=10)
    assert won == {"reachable": True, "reason": "no other live claim"}
    lost = n2.request("check", service="np.disk", timeout=10)
    assert lost["reachable"] is False and "node1 holds" in lost["reason"]
    stats = n1.request("stats", service="np.disk")
    assert stats["state"] == "normal" and stats["lease"] == "hold" and stats["direct"] is True
    assert stats["slots"]["node2"]["state"] in ("idle", "claim")


def test_a_missing_disk_area_is_an_np_error_not_a_stand_down(cluster, tmp_path):
    nodes = cluster(disk_np(str(tmp_path / "missing.img")))
    n1 = nodes["node1"]
    wait_np(n1, "disk", "error")
    assert n1.request("check", service="np.disk", timeout=10)["reachable"] is False
    assert n1.status()["node"]["state"] == "running"


@pytest.mark.parametrize("method", ["witness", "disknp"])
def test_a_dead_peer_is_fenced_after_the_lease_check(cluster, witness, tmp_path, method):
    area = tmp_path / "np.img"
    area.write_bytes(bytes(1 << 16))
    np = witness_np(witness.url) if method == "witness" else disk_np(str(area))
    nodes = cluster(np)
    n2 = nodes["node2"]
    wait_np(n2, np["name"], "normal")
    with n2.watch("alert.") as w:
        nodes["node1"].kill_all()
        ok = w.wait_for("alert.info", lambda b: b["event"] == "np_survive", timeout=15)
        assert f"{np['name']}: survive" in ok.body["message"]
        w.wait_for("alert.info", lambda b: b["event"] == "server_fenced", timeout=30)
    assert n2.status()["node"]["state"] == "running"
