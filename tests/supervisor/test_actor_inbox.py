"""Actors receive bus events through the node's proxy; garbage is dropped, counted and shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq

from bus import envelope, topics
from bus.paths import NodePaths


@pytest.fixture
def raw_publisher(request) -> Iterator:
    """A bare publisher on a node's bus, for sending what a well-behaved actor never would."""
    ctx = zmq.Context()
    socks = []

    def connect(paths: NodePaths) -> zmq.Socket:
        sock = ctx.socket(zmq.XPUB)
        sock.linger = 1000
        sock.connect(paths.publish_endpoint)
        assert sock.poll(5000), "the proxy never passed on a subscription"
        sock.recv()
        socks.append(sock)
        return sock

    yield connect
    for s in socks:
        s.close()
    ctx.term()


def test_actor_receives_events_through_the_proxy(start_node, raw_publisher) -> None:
    node = start_node([{"name": "a", "kind": "echo"}, {"name": "b", "kind": "echo"}])
    pub = raw_publisher(node.paths)
    with node.watch("echo.") as w:
        pub.send_multipart(
            envelope.to_multipart(envelope.make(topics.ECHO_PING, "t/x", 1, {"k": 7}))
        )
        got = {
            w.wait_for_any(lambda e: e.topic.endswith(".pong") and e.body == {"k": 7}).topic
            for _ in range(2)
        }
    assert got == {"echo.a.pong", "echo.b.pong"}


def test_garbage_on_the_bus_is_dropped_counted_and_shown(start_node, raw_publisher) -> None:
    node = start_node([{"name": "a", "kind": "echo"}])
    pub = raw_publisher(node.paths)
    pub.send_multipart([topics.ECHO_PING.encode(), b"\xc1 not msgpack"])
    pub.send_multipart([topics.ECHO_PING.encode(), b"\x93\x01\x02\x03"])  # a 3-list, not 6
    pub.send_multipart([b"actor.a.beat", b"junk"])  # reaches the supervisor
    with node.watch("echo.a.pong") as w:
        pub.send_multipart(envelope.to_multipart(envelope.make(topics.ECHO_PING, "t/x", 1, {})))
        w.wait_for("echo.a.pong")  # still serving after the garbage
    with node.watch("actor.a.beat") as w:
        w.wait_for("actor.a.beat", lambda b: b["dropped"] == 2)
        w.wait_for("actor.a.beat")  # the supervisor has taken that beat in too
    status = node.status()
    a = next(x for x in status["actors"] if x["name"] == "a")
    assert a["bus_dropped"] == 2
    assert status["node"]["bus_dropped"] == {"undecodable frame": 1}
    assert a["restarts"] == 0
