"""A process's connection to its node's bus: publish with a per-sender sequence, receive by prefix.

Used with `zmq.asyncio` inside actors and the supervisor. Receiving never raises on a bad frame:
it is dropped and counted in `dropped`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import zmq
import zmq.asyncio

from bus import envelope
from bus.counters import DropCounter
from bus.envelope import Envelope, EnvelopeError
from bus.paths import NodePaths
from bus.proxy import BURST


class BusConnection:
    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        paths: NodePaths,
        sender: str,
        subscriptions: Iterable[str] = (),
    ) -> None:
        self.sender = sender
        self.dropped = DropCounter()
        self._seq = 0
        # An XPUB rather than a PUB: it hears the subscriptions the proxy forwards, so a new
        # process can wait until they have arrived (`wait_for_subscribers`) instead of losing
        # its first events to ZeroMQ's slow-joiner gap.
        self._pub = ctx.socket(zmq.XPUB)
        self._pub.linger = 500  # give the last messages (a final state) a moment on close
        self._pub.sndhwm = 10000
        self._pub.rcvhwm = 100  # subscription notices beyond the first are of no use
        self._pub.connect(paths.publish_endpoint)
        # A synchronous view of the same socket: publishing never waits, so it needs no await
        # and keeps the order of calls (fire-and-forget tasks would not).
        self._pub_now = zmq.Socket.shadow(self._pub.underlying)
        self._sub = ctx.socket(zmq.SUB)
        self._sub.linger = 0
        self._sub.rcvhwm = BURST  # as the proxy's: a burst waits here rather than being dropped
        self._sub.connect(paths.subscribe_endpoint)
        for prefix in subscriptions:
            self.subscribe(prefix)

    async def wait_for_subscribers(self, timeout: float) -> bool:
        """Until the proxy has passed on at least one subscription (True), or `timeout` (False)."""
        try:
            async with asyncio.timeout(timeout):
                await self._pub.recv()
            return True
        except TimeoutError:
            return False

    def subscribe(self, prefix: str) -> None:
        self._sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def unsubscribe(self, prefix: str) -> None:
        self._sub.setsockopt(zmq.UNSUBSCRIBE, prefix.encode())

    def next_envelope(self, topic: str, body: dict[str, Any] | None = None) -> Envelope:
        self._seq += 1
        return envelope.make(topic, self.sender, self._seq, body)

    def publish(self, topic: str, body: dict[str, Any] | None = None) -> Envelope:
        env = self.next_envelope(topic, body)
        try:
            self._pub_now.send_multipart(envelope.to_multipart(env), flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped.drop("publish queue full")
        return env

    def forward(self, env: Envelope) -> None:
        """Publish someone else's envelope as it is (the link, for events from other servers)."""
        try:
            self._pub_now.send_multipart(envelope.to_multipart(env), flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped.drop("publish queue full")

    async def receive(self) -> Envelope:
        """The next valid envelope; invalid frames are counted and skipped."""
        while True:
            frames = await self._sub.recv_multipart()
            try:
                return envelope.decode_multipart(frames)
            except EnvelopeError as exc:
                self.dropped.drop(str(exc))

    def close(self) -> None:
        self._pub.close()
        self._sub.close()
