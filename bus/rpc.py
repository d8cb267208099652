"""Request/reply: a service binds a ROUTER on its endpoint; callers use a DEALER with a timeout.

Every request is an envelope whose topic is the method and whose body holds the arguments. Every
reply has one shape: `{"ok": true, "result": ..., "re": <request seq>}` or
`{"ok": false, "error": "<a message a person can act on>", "re": ...}`. A handler raises
`RequestError` for a refusal; any other exception becomes an error reply naming the method (and is
logged by the service), so a caller is never left waiting because a handler crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import zmq
import zmq.asyncio

from bus import envelope
from bus.counters import DropCounter
from bus.envelope import Envelope, EnvelopeError

Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]
log = structlog.get_logger("bus.rpc")

REPLY_TOPIC = "reply"


class RequestError(Exception):
    """A refusal with a message for a person (bad arguments, wrong state, ...)."""


class RequestTimeout(RequestError):
    pass


def ok(result: Any, re: int) -> dict[str, Any]:
    return {"ok": True, "result": result, "re": re}


def error(message: str, re: int) -> dict[str, Any]:
    return {"ok": False, "error": message, "re": re}


class Service:
    """A ROUTER serving `handlers` (method name → callable taking the request body)."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        endpoint: str,
        sender: str,
        handlers: dict[str, Handler],
        concurrent: bool = False,
    ) -> None:
        self.endpoint = endpoint
        # One request at a time by default (handlers need no locking); a service whose handlers
        # wait on other servers (the link) answers each in its own task instead.
        self.concurrent = concurrent
        self._tasks: set[asyncio.Task[None]] = set()
        self.sender = sender
        self.handlers = dict(handlers)
        self.dropped = DropCounter()
        self._seq = 0
        self._sock = ctx.socket(zmq.ROUTER)
        self._sock.linger = 0
        self._sock.router_mandatory = False
        self._sock.maxmsgsize = envelope.MAX_FRAME_BYTES + 4096  # libzmq drops bigger peers
        self._sock.bind(endpoint)
        # Remember which file we bound: on close we remove it only if it is still ours (a
        # replacement process may have bound the same path since).
        self._bound_inode = _inode(endpoint)

    async def serve(self) -> None:
        while True:
            frames = await self._sock.recv_multipart()
            # DEALER/REQ callers: [identity, b"", payload]
            if len(frames) != 3 or frames[1] != b"":
                self.dropped.drop("malformed request framing")
                continue
            identity, _, payload = frames
            try:
                req = envelope.decode(payload)
            except EnvelopeError as exc:
                self.dropped.drop(str(exc))
                continue
            if self.concurrent:
                task = asyncio.ensure_future(self._handle(identity, req))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                await self._handle(identity, req)

    async def _handle(self, identity: bytes, req: Envelope) -> None:
        body = await self._dispatch(req)
        self._seq += 1
        try:
            payload = envelope.encode(envelope.make(REPLY_TOPIC, self.sender, self._seq, body))
        except (TypeError, ValueError, OverflowError) as exc:
            log.error("reply could not be encoded", method=req.topic, error=repr(exc))
            message = f"internal error: the result of {req.topic!r} could not be encoded"
            payload = envelope.encode(
                envelope.make(REPLY_TOPIC, self.sender, self._seq, error(message, req.seq))
            )
        try:
            await self._sock.send_multipart([identity, b"", payload], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped.drop("reply queue full")
        except zmq.ZMQError:
            pass  # the service closed while this request was being handled

    async def _dispatch(self, req: Envelope) -> dict[str, Any]:
        handler = self.handlers.get(req.topic)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            return error(f"unknown request {req.topic!r} (this service offers: {known})", req.seq)
        try:
            result = handler(req.body)
            if asyncio.iscoroutine(result):
                result = await result
            return ok(result, req.seq)
        except RequestError as exc:
            return error(str(exc), req.seq)
        except Exception as exc:
            log.exception("request handler failed", method=req.topic)
            return error(f"internal error while handling {req.topic!r}: {exc}", req.seq)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._sock.close()
        if self._bound_inode is not None and _inode(self.endpoint) == self._bound_inode:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.endpoint.removeprefix("ipc://"))


def _inode(endpoint: str) -> int | None:
    if not endpoint.startswith("ipc://"):
        return None
    try:
        return os.stat(endpoint.removeprefix("ipc://")).st_ino
    except FileNotFoundError:
        return None


def _unwrap(body: dict[str, Any], method: str) -> Any:
    if body.get("ok") is True:
        return body.get("result")
    raise RequestError(str(body.get("error") or f"{method} failed without a message"))


class Client:
    """Blocking client for the CLI and tests: one DEALER, replies matched by sequence number."""

    def __init__(self, endpoint: str, sender: str, ctx: zmq.Context | None = None) -> None:
        self.endpoint = endpoint
        self.sender = sender
        self._own_ctx = ctx is None
        self._ctx = ctx or zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.connect(endpoint)
        self._seq = 0

    def request(self, method: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
        self._seq += 1
        seq = self._seq
        req = envelope.make(method, self.sender, seq, body)
        self._sock.send_multipart([b"", envelope.encode(req)])
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not self._sock.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                break
            frames = self._sock.recv_multipart()
            reply = _decode_reply(frames)
            if reply is not None and reply.body.get("re") == seq:
                return _unwrap(reply.body, method)
        raise RequestTimeout(f"no answer to {method!r} from {self.endpoint} within {timeout:g}s")

    def close(self) -> None:
        self._sock.close()
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The same client for asyncio code (actors calling services)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, sender: str) -> None:
        self.endpoint = endpoint
        self.sender = sender
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.connect(endpoint)
        self._seq = 0

    async def request(
        self, method: str, body: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> Any:
        self._seq += 1
        seq = self._seq
        req = envelope.make(method, self.sender, seq, body)
        await self._sock.send_multipart([b"", envelope.encode(req)])
        try:
            async with asyncio.timeout(timeout):
                while True:
                    reply = _decode_reply(await self._sock.recv_multipart())
                    if reply is not None and reply.body.get("re") == seq:
                        return _unwrap(reply.body, method)
        except TimeoutError:
            raise RequestTimeout(
                f"no answer to {method!r} from {self.endpoint} within {timeout:g}s"
            ) from None

    def close(self) -> None:
        self._sock.close()


def _decode_reply(frames: list[bytes]) -> Envelope | None:
    if len(frames) != 2 or frames[0] != b"":
        return None
    try:
        return envelope.decode(frames[1])
    except EnvelopeError:
        return None
