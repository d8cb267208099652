"""COM heartbeats between real nodes on this machine, over a socat pty pair (the lab's COM line).

Every cluster of several servers needs a LAN heartbeat too: it runs on loopback addresses
(127.0.0.11, .12) on a port of its own; only the `com` path is looked at here.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
from harness import node_config

from actors.heartbeat import frame
from actors.heartbeat.frame import Beat
from actors.heartbeat.serialframe import RecordReader, encode_record
from config.clusterkey import generate_cluster_key, load_cluster_key
from lab import devices

LAN = {"name": "lan", "type": "lanhb", "network": "public", "port": 29142}
TIMING = {"heartbeat_interval": "100ms", "heartbeat_timeout": "600ms"}


@pytest.fixture
def line(tmp_path):
    """A socat pty pair: (node1's end, node2's end)."""
    if not shutil.which("socat"):
        pytest.skip("socat is not installed (Debian package socat)")
    record = devices.pty_pair(str(tmp_path), "com")
    yield record["ends"]
    devices.remove(record)


@pytest.fixture
def cluster(start_node, tmp_path, line):
    """start(servers) starts those servers of a two-server cluster with a LAN and a COM heartbeat
    (node1 on the pair's end a, node2 on end b); returns {name: node}."""
    key = str(tmp_path / "cluster.key")
    generate_cluster_key(key)
    com = {
        "name": "com",
        "type": "comhb",
        "baud": "115200",
        "per_server": {"node1": {"device": line[0]}, "node2": {"device": line[1]}},
    }
    text = node_config(
        [],
        servers=("node1", "node2"),
        subnet="127.0.0",
        heartbeats=(LAN, com),
        timing=TIMING,
        key_file=key,
    )

    def start(servers=("node1", "node2")):
        return {s: start_node(config=text, server=s) for s in servers}

    start.key = key
    start.line = line
    return start


def paths(node):
    return node.request("paths", service="hb.com")


def stats(node):
    return node.request("stats", service="hb.com")


def wait_normal(node, peer: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while paths(node)[peer]["state"] != "normal":
        assert time.monotonic() < deadline, paths(node)
        time.sleep(0.05)


class LinePeer:
    """Plays node2 on its end of the line: beats every 0.1 s, and writes whatever a test
    injects between two beats (never inside one)."""

    def __init__(self, device: str, key: bytes) -> None:
        self.fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        self.key = key
        self.seq = 0
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def frame(self, sender="node2", hb="com", key=None, incarnation=2**40) -> bytes:
        self.seq += 1
        status = {"node": "running", "hb": hb, "lost": []}
        return frame.encode(key or self.key, Beat(sender, incarnation, self.seq, status))

    def write(self, data: bytes) -> None:
        with self.lock:
            os.write(self.fd, data)

    def _beat(self) -> None:
        while not self.stopping.wait(0.1):
            with self.lock:
                self.frames.append(self.frame())
                os.write(self.fd, encode_record(self.frames[-1]))

    def read_frames(self, timeout: float = 2.0) -> list[frame.Beat]:
        """What node1 wrote on the line (decoded), for `timeout` seconds at most."""
        os.set_blocking(self.fd, False)
        reader, got = RecordReader(), []
        deadline = time.monotonic() + timeout
        while not got and time.monotonic() < deadline:
            try:
                records = reader.feed(os.read(self.fd, 4096))
            except BlockingIOError:
                time.sleep(0.02)
                continue
            got += [frame.decode(self.key, r) for r in records if r is not None]
        return got

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        os.close(self.fd)


def test_two_servers_hear_each_other_over_the_serial_line(cluster) -> None:
    nodes = cluster()
    wait_normal(nodes["node1"], "node2")
    wait_normal(nodes["node2"], "node1")
    s = stats(nodes["node1"])
    assert s["accepted"] > 0 and s["dropped"] == {}
    assert s["line_open"] is True and s["line_failures"] == 0 and s["realtime"] is True
    assert nodes["node1"].actor("hb.com")["critical"] is True


def test_a_stopped_peer_is_lost_after_the_timeout_never_before(cluster) -> None:
    nodes = cluster()
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_normal(n1, "node2")
    with n1.watch("hb.com.node2") as w:
        n2.kill_all()
        killed = time.monotonic()
        lost = w.wait_for("hb.com.node2", lambda b: b["state"] == "error", timeout=10)
        detected = time.monotonic() - killed
    assert lost.body["silent_for"] >= 0.6
    assert detected < 0.6 + 1.0
    assert n1.actor("hb.com")["restarts"] == 0  # the silent line is not a failure of ours


def test_a_restarted_comhb_actor_loses_nothing(cluster) -> None:
    nodes = cluster()
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_normal(n1, "node2")
    with n1.watch("hb.com.node2") as w:
        before = stats(n1)["accepted"]
        old = n2.actor("hb.com")["pid"]
        os.kill(old, 9)  # node2's COM heartbeat actor only: it reopens the line at once
        n2.wait_status(
            lambda s: any(
                a["name"] == "hb.com" and a["pid"] not in (None, old) and a["state"] == "running"
                for a in s["actors"]
            )
        )
        deadline = time.monotonic() + 5
        while stats(n1)["accepted"] < before + 5:
            assert time.monotonic() < deadline, "node1 does not accept the new incarnation"
            time.sleep(0.05)
        changes = [e.body["state"] for e in w.seen]
    assert "error" not in changes
    assert stats(n1)["dropped"] == {}
    wait_normal(n2, "node1")


def test_garbage_forged_and_replayed_frames_on_the_line_are_counted_not_fatal(cluster) -> None:
    n1 = cluster(servers=("node1",))["node1"]
    key = load_cluster_key(cluster.key)
    peer = LinePeer(cluster.line[1], key)
    try:
        wait_normal(n1, "node2")
        ours = peer.read_frames()
        assert ours and ours[0].sender == "node1" and ours[0].status["hb"] == "com"
        old = peer.frames[0]
        peer.write(b"\x00\xff\x01\x00")  # not COBS
        peer.write(b"\x00" + bytes(range(1, 40)) + b"\x00")  # COBS, but no frame
        peer.write(b"\x01" * 5000 + b"\x00")  # longer than any frame: no end in sight
        peer.write(encode_record(peer.frame(key=bytes(32))))  # another cluster's key
        peer.write(encode_record(old))  # a recording
        peer.write(encode_record(peer.frame(hb="lan")))  # recorded on another path
        peer.write(encode_record(peer.frame(sender="intruder")))
        peer.write(encode_record(peer.frame(sender="node1")))
        expected = {
            "garbage": 3,
            "forged": 1,
            "replayed": 1,
            "another heartbeat's frame": 1,
            "unknown sender": 1,
            "own frame": 1,
        }
        deadline = time.monotonic() + 5
        while (dropped := stats(n1)["dropped"]) != expected:
            assert time.monotonic() < deadline, dropped
            time.sleep(0.05)
        assert n1.actor("hb.com")["restarts"] == 0
        wait_normal(n1, "node2")
    finally:
        peer.close()
