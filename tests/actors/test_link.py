"""The inter-server link between real nodes on this machine (loopback addresses): remote requests,
cluster-wide events, and who gets in (CURVE keys derived from the cluster key)."""

from __future__ import annotations

import random
import socket
import time

import pytest
import zmq
from harness import node_config

from bus import envelope
from bus.link import KIND_EVENT, server_keys
from bus.rpc import RequestError
from config.clusterkey import generate_cluster_key, load_cluster_key


@pytest.fixture
def cluster(start_node, tmp_path):
    """start(servers, key=..., port=..., run=[the servers to start: all]) → {server: node}."""

    def start(servers=("node1", "node2"), key=None, port=None, run=None):
        if key is None:
            key = str(tmp_path / "cluster.key")
            generate_cluster_key(key)
        port = port or random.randint(30000, 39999)
        text = node_config(
            [],
            servers=servers,
            subnet="127.0.0",
            key_file=key,
            link_port=port,
            heartbeats=({"name": "lan", "type": "lanhb", "network": "public", "port": port + 1},),
        )
        return {s: start_node(config=text, server=s) for s in run or servers}

    return start


def peers(node) -> dict:
    return node.request("peers", service="link")


def wait_connected(node, *servers: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = peers(node)
        if all(state["peers"][s]["connected"] for s in servers):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


def call(node, server: str, method: str, service: str = "node", timeout: float = 3.0):
    body = {"server": server, "service": service, "method": method, "timeout": timeout}
    return node.request("call", body, timeout=timeout + 2, service="link")


def test_a_request_reaches_another_servers_service(cluster) -> None:
    nodes = cluster()
    wait_connected(nodes["node1"], "node2")
    status = call(nodes["node1"], "node2", "status")
    assert status["server"] == "node2"  # answered by node2's supervisor, not node1's
    assert call(nodes["node1"], "node1", "status")["server"] == "node1"
    answers = nodes["node2"].request(
        "gather", {"service": "node", "method": "ping"}, service="link"
    )
    assert {s: a["ok"] for s, a in answers.items()} == {"node1": True, "node2": True}
    assert answers["node1"]["result"]["pid"] != answers["node2"]["result"]["pid"]
    with pytest.raises(RequestError, match="no server 'node9'"):
        call(nodes["node1"], "node9", "status")
    with pytest.raises(RequestError, match="server node2: unknown request 'nonsense'"):
        call(nodes["node1"], "node2", "nonsense")


def test_cluster_wide_events_reach_every_server_under_their_origin(cluster) -> None:
    nodes = cluster(("node1", "node2", "node3"))
    for name, n in nodes.items():
        wait_connected(n, *(s for s in nodes if s != name))
    watchers = {s: nodes[s].watch("group.", everywhere=True) for s in nodes}
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    try:
        pub.connect(nodes["node1"].paths.publish_endpoint)
        time.sleep(0.3)  # the proxy must hear of our socket before we publish (slow joiner)
        event = envelope.make("group.web.state", "node1/test", 1, {"message": "from node1"})
        pub.send_multipart(envelope.to_multipart(event))
        for w in watchers.values():
            env = w.wait_for("group.web.state", lambda b: b["message"] == "from node1")
            assert env.sender == "node1/test"  # under its origin, not the link's name
        # node2 and node3 republished it locally; neither sent it on again (node1 would see it
        # twice, and node2/node3 three times)
        for w in watchers.values():
            with pytest.raises(AssertionError, match="no matching event"):
                w.wait_for_any(lambda e: e.body.get("message") == "from node1", timeout=0.5)
    finally:
        pub.close()
        ctx.term()
        for w in watchers.values():
            w.close()


def test_a_stopped_server_is_reported_unreachable(cluster) -> None:
    nodes = cluster()
    wait_connected(nodes["node1"], "node2")
    nodes["node2"].terminate()
    deadline = time.monotonic() + 10
    while peers(nodes["node1"])["peers"]["node2"]["connected"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(RequestError, match="server node2 is not reachable over the link"):
        call(nodes["node1"], "node2", "status")


def test_a_server_with_another_cluster_key_is_refused(cluster, tmp_path) -> None:
    port = random.randint(30000, 39999)
    first = cluster(("node1", "node2"), port=port, run=["node1"])["node1"]
    other_key = str(tmp_path / "other.key")
    generate_cluster_key(other_key)
    # an impostor "node2" (it has the name, not the key) joins node1's cluster
    impostor = cluster(("node1", "node2"), key=other_key, port=port, run=["node2"])["node2"]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert not peers(first)["peers"]["node2"]["connected"]
        assert not peers(impostor)["peers"]["node1"]["connected"]
        time.sleep(0.1)
    with pytest.raises(RequestError, match="not reachable"):
        call(impostor, "node1", "status")
    # Someone who learnt node1's public key but has no server's key pair is turned away by the
    # key check (the impostor above fails earlier: it cannot even complete the handshake).
    key = load_cluster_key(str(tmp_path / "cluster.key"))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
    sock.curve_serverkey = server_keys(key, "node1").public
    try:
        sock.connect(f"tcp://127.0.0.11:{port}")
        sock.send_multipart([KIND_EVENT, b"let me in"])
        deadline = time.monotonic() + 5
        while peers(first)["refused"] == 0:
            assert time.monotonic() < deadline, peers(first)
            time.sleep(0.05)
        assert peers(first)["peers"]["node2"]["received"] == 0  # nothing of it got through
    finally:
        sock.close()
        ctx.term()


def test_an_event_claiming_another_origin_is_dropped(cluster, tmp_path) -> None:
    """A genuine peer (node2's key) that forwards an event as if from node3 is not believed."""
    nodes = cluster(("node1", "node2", "node3"))
    node1 = nodes["node1"]
    wait_connected(node1, "node2")
    nodes["node2"].kill_all()
    key = load_cluster_key(str(tmp_path / "cluster.key"))
    mine, theirs = server_keys(key, "node2"), server_keys(key, "node1")
    port = int(node1.request("config")["text"].split("link = ")[1].split()[0])
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (
        theirs.public,
        mine.public,
        mine.secret,
    )
    try:
        sock.connect(f"tcp://127.0.0.11:{port}")
        with node1.watch("group.", everywhere=True) as w:
            forged = envelope.make("group.web.state", "node3/groups", 1, {"message": "forged"})
            genuine = envelope.make("group.web.state", "node2/groups", 1, {"message": "genuine"})
            sock.send_multipart([KIND_EVENT, envelope.encode(forged)])
            sock.send_multipart([KIND_EVENT, b"\x93garbage"])
            sock.send_multipart([KIND_EVENT, envelope.encode(genuine)])
            env = w.wait_for_any(lambda e: e.body.get("message") in ("forged", "genuine"))
            assert env.body["message"] == "genuine" and env.sender == "node2/groups"
        dropped = peers(node1)["dropped"]
        assert dropped.get("event not from the peer that sent it") == 1
        assert sum(dropped.values()) >= 2  # and the garbage
    finally:
        sock.close()
        ctx.term()


def test_garbage_on_the_link_port_changes_nothing(cluster) -> None:
    nodes = cluster()
    node1 = nodes["node1"]
    wait_connected(node1, "node2")
    port = int(node1.request("config")["text"].split("link = ")[1].split()[0])
    for blob in (b"GET / HTTP/1.0\r\n\r\n", bytes(range(256)) * 8, b"\xff" * 64 + b"\x00" * 64):
        with socket.create_connection(("127.0.0.11", port), timeout=2) as s:
            s.sendall(blob)
            s.settimeout(2)
            try:
                s.recv(100)
            except (TimeoutError, ConnectionResetError):
                pass
    assert call(node1, "node2", "ping")["pid"] > 0
    assert node1.actor("link")["restarts"] == 0
