"""Disk heartbeats between real nodes on this machine, through a shared file (the lab's shared
disk; /tmp here, where O_DIRECT works).

Every cluster of several servers needs a LAN heartbeat too: it runs on loopback addresses
(127.0.0.11, .12, ...) on a port of its own; only the `disk` path is looked at here.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from harness import node_config

from actors.heartbeat import frame
from actors.heartbeat.diskslots import SLOT_BYTES, pack_slot, unpack_slot
from actors.heartbeat.frame import Beat
from config.clusterkey import generate_cluster_key, load_cluster_key
from lab import devices

LAN = {"name": "lan", "type": "lanhb", "network": "public", "port": 29143}
TIMING = {"heartbeat_interval": "100ms", "heartbeat_timeout": "600ms"}
OFFSET = 8192


@pytest.fixture
def disk(tmp_path):
    record = devices.shared_file(str(tmp_path), "disk", 64 * 1024)
    yield record["path"]
    devices.remove(record)


@pytest.fixture
def cluster(start_node, tmp_path, disk):
    """start(servers, of) starts `servers` of a cluster of the servers `of` with a LAN and a disk
    heartbeat on the shared file; returns {name: node}."""
    key = str(tmp_path / "cluster.key")
    generate_cluster_key(key)
    hb = {"name": "disk", "type": "diskhb", "device": disk, "offset": OFFSET}

    def start(servers=("node1", "node2"), of=("node1", "node2")):
        text = node_config(
            [], servers=of, subnet="127.0.0", heartbeats=(LAN, hb), timing=TIMING, key_file=key
        )
        return {s: start_node(config=text, server=s) for s in servers}

    start.key = key
    start.disk = disk
    return start


def paths(node):
    return node.request("paths", service="hb.disk")


def stats(node):
    return node.request("stats", service="hb.disk")


def wait_normal(node, peer: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while paths(node)[peer]["state"] != "normal":
        assert time.monotonic() < deadline, paths(node)
        time.sleep(0.05)


class SlotPeer:
    """Plays node2 in its slot (1) of the shared file: a new frame every 0.1 s; `put` writes
    anything into a slot and holds the beats back until `seen()` says node1 has read it."""

    def __init__(self, path: str, key: bytes) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.key = key
        self.seq = 0
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def frame(self, sender="node2", hb="disk", key=None, incarnation=2**40) -> bytes:
        self.seq += 1
        status = {"node": "running", "hb": hb, "lost": []}
        return frame.encode(key or self.key, Beat(sender, incarnation, self.seq, status))

    def slot(self, index: int) -> bytes:
        return os.pread(self.fd, SLOT_BYTES, OFFSET + index * SLOT_BYTES)

    def put(self, raw: bytes, seen, index: int = 1, timeout: float = 5.0) -> None:
        with self.lock:
            os.pwrite(self.fd, raw, OFFSET + index * SLOT_BYTES)
            deadline = time.monotonic() + timeout
            while not seen():
                assert time.monotonic() < deadline, "node1 did not read the slot"
                time.sleep(0.01)

    def _beat(self) -> None:
        while not self.stopping.wait(0.1):
            with self.lock:
                self.frames.append(self.frame())
                os.pwrite(self.fd, pack_slot(self.frames[-1]), OFFSET + SLOT_BYTES)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        os.close(self.fd)


def test_two_servers_hear_each_other_through_the_disk(cluster) -> None:
    nodes = cluster()
    wait_normal(nodes["node1"], "node2")
    wait_normal(nodes["node2"], "node1")
    s = stats(nodes["node1"])
    assert s["accepted"] > 0 and s["dropped"] == {}
    assert s["direct_io"] is True and s["io_errors"] == s["hangs"] == 0
    assert nodes["node1"].actor("hb.disk")["critical"] is True
    # Each server wrote only its own aligned slot, at the offset: the area before is untouched.
    with open(cluster.disk, "rb") as f:
        assert f.read(OFFSET) == bytes(OFFSET)
        slots = [f.read(SLOT_BYTES) for _ in range(2)]
    key = load_cluster_key(cluster.key)
    assert [frame.decode(key, unpack_slot(s)).sender for s in slots] == ["node1", "node2"]


def test_a_stopped_peer_is_lost_after_the_timeout_never_before(cluster) -> None:
    nodes = cluster()
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_normal(n1, "node2")
    with n1.watch("hb.disk.node2") as w:
        n2.kill_all()  # its last frame stays in its slot: a slot that does not change is silence
        killed = time.monotonic()
        lost = w.wait_for("hb.disk.node2", lambda b: b["state"] == "error", timeout=10)
        detected = time.monotonic() - killed
    assert lost.body["silent_for"] >= 0.6
    assert detected < 0.6 + 1.0
    assert n1.actor("hb.disk")["restarts"] == 0


def test_what_a_dead_peer_left_in_its_slot_is_not_a_beat(cluster) -> None:
    nodes = cluster()
    wait_normal(nodes["node1"], "node2")
    nodes["node2"].kill_all()
    nodes["node1"].kill_all()
    n1 = cluster(servers=("node1",))["node1"]  # node2's last frame is still in its slot
    time.sleep(1.0)
    assert paths(n1)["node2"]["state"] == "error"
    assert paths(n1)["node2"]["beats"] == 0


def test_a_restarted_diskhb_actor_loses_nothing(cluster) -> None:
    nodes = cluster()
    n1, n2 = nodes["node1"], nodes["node2"]
    wait_normal(n1, "node2")
    with n1.watch("hb.disk.node2") as w:
        before = stats(n1)["accepted"]
        old = n2.actor("hb.disk")["pid"]
        os.kill(old, 9)
        n2.wait_status(
            lambda s: any(
                a["name"] == "hb.disk" and a["pid"] not in (None, old) and a["state"] == "running"
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


def test_garbage_forged_and_replayed_frames_in_a_slot_are_counted_not_fatal(cluster) -> None:
    n1 = cluster(servers=("node1",), of=("node1", "node2", "node3"))["node1"]
    peer = SlotPeer(cluster.disk, load_cluster_key(cluster.key))
    try:
        wait_normal(n1, "node2")
        old = pack_slot(peer.frames[0])
        expected: dict[str, int] = {}

        def put(raw: bytes, reason: str, index: int = 1) -> None:
            expected[reason] = expected.get(reason, 0) + 1
            peer.put(raw, lambda: stats(n1)["dropped"] == expected, index)

        put(bytes(SLOT_BYTES), "empty slot")
        put(b"\xff" * SLOT_BYTES, "garbage")  # a length no frame has
        put(pack_slot(os.urandom(300)), "garbage")
        put(pack_slot(peer.frame(key=bytes(32))), "forged")
        put(old, "replayed")  # an old frame written back: no progress
        put(pack_slot(peer.frame(hb="lan")), "another heartbeat's frame")
        put(pack_slot(peer.frame(sender="intruder")), "unknown sender")
        put(pack_slot(peer.frame(sender="node2")), "wrong slot", index=2)  # node3's slot
        assert n1.actor("hb.disk")["restarts"] == 0
        wait_normal(n1, "node2")
        assert stats(n1)["dropped"] == expected
    finally:
        peer.close()
