"""The inter-server link's transport: ZeroMQ over TCP, encrypted and authenticated with CURVE in
the "ironhouse" model — both ends prove who they are, nobody else gets in.

Keys. Every server's CURVE key pair is derived from the cluster key and the server's name
(`server_keys`): HMAC-SHA256(cluster key, label + name) is the secret key, its Curve25519 public
key follows. So every server can compute every other's public key from the one file it already
has, and nothing else needs distributing. The price: whoever holds the cluster key can act as any
server — the same trust the heartbeats' HMAC already places in it (keep it 0600, root only).

Sockets. Each server binds one ROUTER on each of its addresses (`[ports] link`, 29001): it
receives the peers' events and requests there, and answers requests on it. The ZAP handler
admits a client only if its public key is one of the configured servers' and names the
connection after that server (ZeroMQ's `User-Id`), so a message's origin is never taken on the
sender's word. For each peer, one DEALER per network both servers are on, in route order (the
heartbeats' networks first): a message goes out on the first route whose connection is up
(`immediate`: nothing queues for a peer that is not connected), so losing the interconnect moves
the traffic to the public LAN. ZeroMQ's own heartbeat closes a connection whose peer stopped
answering, and reconnects back off with jitter. Sends never block: a full queue or no connection
is a dropped message, counted, and the caller is told (`send` returns None).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from bus.counters import DropCounter
from bus.envelope import MAX_FRAME_BYTES

KIND_EVENT = b"E"  # a cluster-wide event, the sender's own envelope
KIND_REQUEST = b"Q"  # a request to one of the receiver's services
KIND_REPLY = b"R"  # the answer to a request, on the connection it came in on
KINDS = (KIND_EVENT, KIND_REQUEST, KIND_REPLY)

_KEY_LABEL = b"haven link curve key v1\0"
ZAP_DOMAIN = b"haven-link"
QUEUE = 1000  # messages queued per connection before sends are dropped


@dataclass(frozen=True, slots=True)
class LinkKeys:
    public: bytes  # Z85, 40 characters
    secret: bytes


def server_keys(cluster_key: bytes, server: str) -> LinkKeys:
    secret = z85.encode(hmac.digest(cluster_key, _KEY_LABEL + server.encode(), hashlib.sha256))
    return LinkKeys(zmq.curve_public(secret), secret)


@dataclass(frozen=True, slots=True)
class Route:
    network: str
    endpoint: str  # tcp://address:port


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """ZeroMQ-level liveness of a connection, and reconnection back-off (seconds)."""

    heartbeat: float = 0.5  # ping an idle connection this often ...
    timeout: float = 2.0  # ... and close it when nothing came back for this long
    connect_timeout: float = 2.0
    reconnect_min: float = 0.1  # first retry after 0.1–0.2 s (jittered), doubling ...
    reconnect_max: float = 5.0  # ... up to about this


class _Admission(AsyncioAuthenticator):
    """ZAP: only the configured servers' keys get in; the connection is named after the server."""

    def __init__(self, ctx: zmq.asyncio.Context, servers: dict[bytes, str]) -> None:
        super().__init__(ctx)
        self.servers = servers
        self.refused = 0

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.servers:
            return True
        self.refused += 1
        return False

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self.servers[z85.encode(client_public_key)]


Inbound = Callable[[str, bytes, bytes, bytes], Awaitable[None]]  # peer, identity, kind, payload
Reply = Callable[[str, bytes], Awaitable[None]]  # peer, payload
StateChange = Callable[[str, str, bool], None]  # peer, network, connected


class LinkSockets:
    def __init__(
        self,
        zctx: zmq.asyncio.Context,
        me: str,
        keys: dict[str, LinkKeys],
        listen: list[str],
        routes: dict[str, list[Route]],
        timing: LinkTiming,
    ) -> None:
        self.zctx = zctx
        self.me = me
        self.keys = keys
        self.listen = listen
        self.routes = routes
        self.timing = timing
        self.dropped = DropCounter()
        self.connected: dict[tuple[str, str], bool] = {
            (peer, r.network): False for peer, rs in routes.items() for r in rs
        }
        self.auth_failures: dict[str, int] = {}
        self._dealers: dict[str, list[tuple[str, zmq.asyncio.Socket]]] = {}
        self._router: zmq.asyncio.Socket | None = None
        self._admission: _Admission | None = None
        self._monitors: list[tuple[str, str, zmq.asyncio.Socket]] = []

    # setting up ----------------------------------------------------------------------------------
    def start(self) -> None:
        mine = self.keys[self.me]
        self._admission = _Admission(
            self.zctx, {k.public: name for name, k in self.keys.items() if name != self.me}
        )
        self._admission.start()
        self._admission.configure_curve_callback(ZAP_DOMAIN.decode(), self._admission)
        router = self.zctx.socket(zmq.ROUTER)
        self._router = router
        router.linger = 0
        router.curve_server = True
        router.curve_secretkey = mine.secret
        router.curve_publickey = mine.public
        router.zap_domain = ZAP_DOMAIN
        router.maxmsgsize = MAX_FRAME_BYTES + 4096
        router.sndhwm = router.rcvhwm = QUEUE
        self._set_heartbeat(router)
        for endpoint in self.listen:
            try:
                router.bind(endpoint)
            except zmq.ZMQError as exc:
                raise RuntimeError(f"the link cannot listen on {endpoint}: {exc}") from exc
        for peer, routes in self.routes.items():
            self._dealers[peer] = [self._dealer(peer, r) for r in routes]

    def _dealer(self, peer: str, route: Route) -> tuple[str, zmq.asyncio.Socket]:
        mine, theirs = self.keys[self.me], self.keys[peer]
        sock = self.zctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.curve_serverkey = theirs.public
        sock.curve_publickey = mine.public
        sock.curve_secretkey = mine.secret
        sock.immediate = 1  # never queue for a peer that is not connected: try the next route
        sock.sndhwm = sock.rcvhwm = QUEUE
        sock.maxmsgsize = MAX_FRAME_BYTES + 4096
        t = self.timing
        sock.reconnect_ivl = int(1000 * t.reconnect_min * (1 + random.random()))
        sock.reconnect_ivl_max = int(1000 * t.reconnect_max * (1 + random.random() / 2))
        sock.connect_timeout = int(1000 * t.connect_timeout)
        self._set_heartbeat(sock)
        events = (
            zmq.EVENT_HANDSHAKE_SUCCEEDED
            | zmq.EVENT_DISCONNECTED
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        )
        self._monitors.append((peer, route.network, sock.get_monitor_socket(events)))
        sock.connect(route.endpoint)
        return route.network, sock

    def _set_heartbeat(self, sock: zmq.Socket) -> None:
        sock.heartbeat_ivl = int(1000 * self.timing.heartbeat)
        sock.heartbeat_timeout = int(1000 * self.timing.timeout)
        sock.heartbeat_ttl = int(1000 * self.timing.timeout)

    # sending -------------------------------------------------------------------------------------
    def send(self, peer: str, kind: bytes, payload: bytes) -> str | None:
        """Out on the first route that takes it; the network used, or None (dropped, counted)."""
        for network, sock in self._dealers.get(peer, ()):
            if _send_now(sock, [kind, payload]):
                return network
        self.dropped.drop(f"no route to {peer}")
        return None

    def answer(self, identity: bytes, payload: bytes) -> bool:
        assert self._router is not None
        if _send_now(self._router, [identity, KIND_REPLY, payload]):
            return True
        self.dropped.drop("reply not sent")
        return False

    # receiving -----------------------------------------------------------------------------------
    async def serve(self, inbound: Inbound, reply: Reply, state: StateChange) -> None:
        """Read every socket until cancelled."""
        tasks = [asyncio.ensure_future(self._read_router(inbound))]
        for peer, dealers in self._dealers.items():
            tasks += [asyncio.ensure_future(self._read_dealer(peer, s, reply)) for _, s in dealers]
        tasks += [
            asyncio.ensure_future(self._watch(peer, network, mon, state))
            for peer, network, mon in self._monitors
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_router(self, inbound: Inbound) -> None:
        assert self._router is not None
        while True:
            frames = await self._router.recv_multipart(copy=False)
            if len(frames) != 3 or frames[1].bytes not in KINDS:
                self.dropped.drop("malformed link framing")
                continue
            try:
                peer = frames[1].get("User-Id")  # set by the ZAP handler: the peer's name
            except zmq.ZMQError:
                self.dropped.drop("unauthenticated")
                continue
            await inbound(peer, frames[0].bytes, frames[1].bytes, frames[2].bytes)

    async def _read_dealer(self, peer: str, sock: zmq.asyncio.Socket, reply: Reply) -> None:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) != 2 or frames[0] != KIND_REPLY:
                self.dropped.drop("malformed link framing")
                continue
            await reply(peer, frames[1])

    async def _watch(
        self, peer: str, network: str, mon: zmq.asyncio.Socket, state: StateChange
    ) -> None:
        while True:
            event = parse_monitor_message(await mon.recv_multipart())["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                up = True
            elif event == zmq.EVENT_DISCONNECTED:
                up = False
            else:  # the peer refused our key or spoke nonsense: a different cluster key
                self.auth_failures[peer] = self.auth_failures.get(peer, 0) + 1
                up = False
            if self.connected.get((peer, network)) != up:
                self.connected[(peer, network)] = up
                state(peer, network, up)

    # state ---------------------------------------------------------------------------------------
    def networks_up(self, peer: str) -> list[str]:
        return [n for n, _ in self._dealers.get(peer, ()) if self.connected.get((peer, n))]

    @property
    def refused(self) -> int:
        return self._admission.refused if self._admission else 0

    def close(self) -> None:
        for dealers in self._dealers.values():
            for _, sock in dealers:
                sock.disable_monitor()
                sock.close()
        for _, _, mon in self._monitors:
            mon.close()
        if self._router is not None:
            self._router.close()
        if self._admission is not None:
            self._admission.stop()


def _send_now(sock: zmq.asyncio.Socket, frames: list[bytes]) -> bool:
    """Send without waiting, through the asyncio socket itself: a send through a blocking
    shadow of it can consume the edge-triggered readiness of the socket's file descriptor, and
    a reader awaiting that socket then sleeps through the messages that came in (pyzmq wakes
    its readers after its own sends). False if the message could not be queued."""
    sent = sock.send_multipart(frames, flags=zmq.NOBLOCK)  # done at once with NOBLOCK
    if not sent.done():  # queued behind another send: it goes; its outcome is only logged
        sent.add_done_callback(lambda f: f.cancelled() or f.exception())
        return True
    return sent.exception() is None
