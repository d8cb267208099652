"""The link actor: this server's end of the inter-server link (transport: `bus/link.py`).

- Cluster-wide events: every event of a `topics.CLUSTER_WIDE` family that arose on this server
  goes to every other server, which republishes it on its own bus under the original sender. An
  event whose sender's server is not the authenticated peer that delivered it, or whose topic is
  not a cluster-wide family, is dropped and counted. Nothing is forwarded twice: only this
  server's own events leave it.
- Remote requests: `call` runs a request on any server's service (this one's too) and `gather`
  on every server's at once; the other end makes the request on its own bus and answers. A slow
  or unreachable peer costs the caller its timeout, never the link's loop.
- `config_store`: `haven config push` delivers a configuration here; it is validated again and
  written over this node's configuration file atomically (the previous one kept as `.prev`).

Events: `link.<server>.state` when the connection to a server comes up or goes down (body: server,
network, connected, networks: the routes up now). Requests: call, gather, peers, config_store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

from actors import exitcodes
from actors.base import Actor
from bus import envelope, topics
from bus.counters import DropCounter
from bus.envelope import Envelope, EnvelopeError
from bus.link import (
    KIND_EVENT,
    KIND_REQUEST,
    LinkSockets,
    LinkTiming,
    Route,
    server_keys,
)
from bus.rpc import Handler, RequestError, error, ok
from config.clusterkey import ClusterKeyError, load_cluster_key
from config.store import store_config

CALL = "link.call"  # the topic of a request travelling over the link
MAX_TIMEOUT = 300.0  # the longest a remote request may be given
CONCURRENT_CALLS = 32  # requests from peers served at once; more are refused, not queued
REPLY_MARGIN = 1.0  # a caller waits this much beyond the remote request's own timeout


class LinkActor(Actor):
    subscriptions = topics.CLUSTER_WIDE
    concurrent_requests = True  # a call waits on another server: never hold the others up

    async def on_start(self) -> None:
        a = self.args
        self.me = self.ctx.launch.server
        self.servers: list[str] = list(a["servers"])
        self.config_path: str = a["config_path"]
        try:
            cluster_key = load_cluster_key(a["key_file"])
        except ClusterKeyError as exc:
            self.log.error("cannot start the link", error=str(exc))
            self.stop(exitcodes.FATAL)  # restarting will not make a key appear
            return
        routes = {
            peer: [Route(r["network"], r["endpoint"]) for r in rs]
            for peer, rs in a["routes"].items()
        }
        self.dropped = DropCounter()
        self.sent: dict[str, int] = dict.fromkeys(routes, 0)
        self.received: dict[str, int] = dict.fromkeys(routes, 0)
        # (server, request seq) → the caller's future: a reply counts only from the server asked
        self.pending: dict[tuple[str, int], asyncio.Future[dict[str, Any]]] = {}
        self.seq = 0
        self.serving = asyncio.Semaphore(CONCURRENT_CALLS)
        self.tasks: set[asyncio.Task[None]] = set()
        self.sockets = LinkSockets(
            self.ctx.zctx,
            self.me,
            {s: server_keys(cluster_key, s) for s in self.servers},
            list(a["listen"]),
            routes,
            LinkTiming(**a.get("timing", {})),
        )
        try:
            self.sockets.start()
        except RuntimeError:
            self.sockets.close()
            raise
        self.serve_task = asyncio.ensure_future(
            self.sockets.serve(self._inbound, self._reply, self._state_changed)
        )
        self.serve_task.add_done_callback(self._serve_ended)
        self.log.info("link started", listen=a["listen"], peers=list(routes))

    def _serve_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("the link's receiver failed", error=repr(task.exception()))
            self.stop(exitcodes.RESTART)

    async def on_stop(self) -> None:
        await self._close()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        await self._close()

    async def _close(self) -> None:
        task = getattr(self, "serve_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        for t in list(getattr(self, "tasks", ())):
            t.cancel()
        for future in getattr(self, "pending", {}).values():
            future.cancel()
        if hasattr(self, "sockets"):
            self.sockets.close()

    # cluster-wide events -------------------------------------------------------------------------
    async def on_receive(self, env: Envelope) -> None:
        if env.server != self.me:
            return  # republished from another server: it has reached everyone already
        payload = envelope.encode(env)
        for peer in self.sent:
            if self.sockets.send(peer, KIND_EVENT, payload):
                self.sent[peer] += 1

    async def _inbound(self, peer: str, identity: bytes, kind: bytes, payload: bytes) -> None:
        try:
            env = envelope.decode(payload)
        except EnvelopeError as exc:
            self.dropped.drop(str(exc))
            return
        self.received[peer] = self.received.get(peer, 0) + 1
        if kind == KIND_EVENT:
            if env.server != peer:
                self.dropped.drop("event not from the peer that sent it")
            elif not env.topic.startswith(topics.CLUSTER_WIDE):
                self.dropped.drop("topic not carried by the link")
            else:
                self.ctx.bus.forward(env)
        elif kind == KIND_REQUEST and env.topic == CALL:
            if self.serving.locked():
                self._answer(identity, error(f"server {self.me} is busy: try again", env.seq))
                return
            self._spawn(self._serve_call(identity, env))
        else:
            self.dropped.drop("unexpected message kind")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve_call(self, identity: bytes, env: Envelope) -> None:
        async with self.serving:
            b = env.body
            try:
                service, method = _text(b, "service"), _text(b, "method")
                result = await self.call(
                    self.me, service, method, _dict(b.get("body")), _timeout(b.get("timeout"))
                )
                answer = ok(result, env.seq)
            except RequestError as exc:
                answer = error(str(exc), env.seq)
            self._answer(identity, answer)

    def _answer(self, identity: bytes, answer: dict[str, Any]) -> None:
        try:
            payload = envelope.encode(envelope.make("link.reply", self.ctx.sender, 0, answer))
        except (TypeError, ValueError, OverflowError):
            payload = envelope.encode(
                envelope.make(
                    "link.reply", self.ctx.sender, 0, error("the answer cannot be encoded", 0)
                )
            )
        self.sockets.answer(identity, payload)

    async def _reply(self, peer: str, payload: bytes) -> None:
        try:
            env = envelope.decode(payload)
        except EnvelopeError as exc:
            self.dropped.drop(str(exc))
            return
        future = self.pending.get((peer, env.body.get("re")))  # type: ignore[arg-type]
        if future is None or future.done():
            self.dropped.drop("late or unknown reply")  # its caller has given up
            return
        future.set_result(env.body)

    def _state_changed(self, peer: str, network: str, connected: bool) -> None:
        up = self.sockets.networks_up(peer)
        (self.log.info if connected else self.log.warning)(
            "link " + ("up" if connected else "down"), peer=peer, network=network, routes_up=up
        )
        self.publish(
            topics.link_state(peer),
            {"server": peer, "network": network, "connected": connected, "networks": up},
        )

    # requests ------------------------------------------------------------------------------------
    def requests(self) -> dict[str, Handler]:
        return {
            "call": self._call_request,
            "gather": self._gather,
            "peers": self._peers,
            "config_store": self._config_store,
        }

    async def _call_request(self, body: dict[str, Any]) -> Any:
        return await self.call(
            _text(body, "server"),
            _text(body, "service"),
            _text(body, "method"),
            _dict(body.get("body")),
            _timeout(body.get("timeout")),
        )

    async def call(
        self, server: str, service: str, method: str, body: dict[str, Any], timeout: float
    ) -> Any:
        if server == self.me:
            if service == self.name:  # our own service: a request to it would wait on itself
                return await self._own(method, body)
            return await self._local(service, method, body, timeout)
        if server not in self.sent:
            raise RequestError(
                f"no server {server!r} in the configuration (servers: {', '.join(self.servers)})"
            )
        self.seq += 1
        seq = self.seq
        request = {"service": service, "method": method, "body": body, "timeout": timeout}
        payload = envelope.encode(envelope.make(CALL, self.ctx.sender, seq, request))
        if self.sockets.send(server, KIND_REQUEST, payload) is None:
            raise RequestError(
                f"server {server} is not reachable over the link (its node is not running, "
                "or every network to it is down)"
            )
        self.sent[server] += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[(server, seq)] = future
        try:
            async with asyncio.timeout(timeout + REPLY_MARGIN):
                answer = await future
        except TimeoutError:
            raise RequestError(
                f"server {server} did not answer {service}.{method} within {timeout:g}s"
            ) from None
        finally:
            self.pending.pop((server, seq), None)
        if answer.get("ok") is True:
            return answer.get("result")
        raise RequestError(f"server {server}: {answer.get('error') or 'failed'}")

    async def _gather(self, body: dict[str, Any]) -> dict[str, Any]:
        service, method = _text(body, "service"), _text(body, "method")
        args, timeout = _dict(body.get("body")), _timeout(body.get("timeout"))

        async def one(server: str) -> dict[str, Any]:
            try:
                result = await self.call(server, service, method, args, timeout)
                return {"ok": True, "result": result}
            except RequestError as exc:
                return {"ok": False, "error": str(exc)}

        answers = await asyncio.gather(*(one(s) for s in self.servers))
        return dict(zip(self.servers, answers, strict=True))

    async def _own(self, method: str, body: dict[str, Any]) -> Any:
        handler = self.requests().get(method)
        if handler is None:
            offers = ", ".join(sorted(self.requests()))
            raise RequestError(f"unknown request {method!r} (this service offers: {offers})")
        result = handler(body)
        return await result if asyncio.iscoroutine(result) else result

    async def _local(self, service: str, method: str, body: dict[str, Any], timeout: float) -> Any:
        return await self.ask(service, method, body, timeout)

    def _peers(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "server": self.me,
            "peers": {
                peer: {
                    "connected": bool(self.sockets.networks_up(peer)),
                    "networks": self.sockets.networks_up(peer),
                    "sent": self.sent[peer],
                    "received": self.received.get(peer, 0),
                    "auth_failures": self.sockets.auth_failures.get(peer, 0),
                }
                for peer in self.sent
            },
            "refused": self.sockets.refused,
            "dropped": {**self.dropped.as_dict(), **self.sockets.dropped.as_dict()},
        }

    def _config_store(self, body: dict[str, Any]) -> dict[str, Any]:
        from actors.registry import ACTOR_KINDS
        from config import check_text
        from config.issues import ERROR

        text = _text(body, "text")
        digest = hashlib.sha256(text.encode()).hexdigest()
        if body.get("sha256") != digest:
            raise RequestError("the configuration arrived damaged (checksum mismatch)")
        cluster, issues = check_text(text, self.config_path, actor_kinds=ACTOR_KINDS)
        errors = [str(i) for i in issues if i.level == ERROR]
        if cluster is None or errors:
            raise RequestError("the configuration is not valid here: " + "; ".join(errors[:5]))
        if self.me not in {s.name for s in cluster.servers}:
            raise RequestError(f"the configuration has no server {self.me!r}: not stored")
        changed = store_config(self.config_path, text)
        self.log.info("configuration stored", path=self.config_path, changed=changed)
        if changed:
            self.alert(
                "config_changed",
                origin="haven config push",
                summary=f"stored {self.config_path} (sha256 {digest[:12]})",
            )
        return {"path": self.config_path, "sha256": digest, "changed": changed}


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise RequestError(f"{key!r} must be a non-empty string")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError("'body' must be a map")
    return value


def _timeout(value: Any) -> float:
    if value is None:
        return 5.0
    if not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
        raise RequestError(f"'timeout' must be a number of seconds in (0, {MAX_TIMEOUT:g}]")
    return float(value)
