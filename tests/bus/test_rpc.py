"""Request/reply over real sockets, the same suite over each transport (ipc and tcp)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator

import pytest
import zmq
import zmq.asyncio

from bus import envelope
from bus.rpc import AsyncClient, Client, RequestError, RequestTimeout, Service


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["ipc", "tcp"])
def endpoint(request: pytest.FixtureRequest, state_dir: str) -> str:
    if request.param == "ipc":
        return f"ipc://{state_dir}/svc"
    return f"tcp://127.0.0.1:{_free_tcp_port()}"


class ServiceThread:
    """A real Service on its own event loop thread, as an actor would host it."""

    def __init__(self, endpoint: str, handlers: dict) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.endpoint = endpoint
        self.handlers = handlers
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        ctx = zmq.asyncio.Context()
        self.service = Service(ctx, self.endpoint, "test/svc", self.handlers)
        self.task = self.loop.create_task(self.service.serve())
        self.ready.set()
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        finally:
            self.service.close()
            ctx.term()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(5)


@pytest.fixture
def service(endpoint: str) -> Iterator[ServiceThread]:
    async def slow(body: dict) -> str:
        await asyncio.sleep(body["seconds"])
        return "late"

    def refuse(body: dict) -> None:
        raise RequestError("group 'web' is moving; try again when the move is done")

    def crash(body: dict) -> None:
        raise ZeroDivisionError("boom")

    svc = ServiceThread(
        endpoint,
        {"echo": lambda body: body, "slow": slow, "refuse": refuse, "crash": crash},
    )
    yield svc
    svc.stop()


def test_request_reply(service: ServiceThread, endpoint: str) -> None:
    with Client(endpoint, "test/cli") as client:
        assert client.request("echo", {"x": [1, 2]}) == {"x": [1, 2]}
        assert client.request("echo", {"n": 2}) == {"n": 2}


def test_refusal_carries_the_message(service: ServiceThread, endpoint: str) -> None:
    with Client(endpoint, "test/cli") as client, pytest.raises(RequestError, match="is moving"):
        client.request("refuse")


def test_handler_crash_is_an_error_reply_not_a_hang(service: ServiceThread, endpoint: str) -> None:
    with Client(endpoint, "test/cli") as client:
        with pytest.raises(RequestError, match="internal error.*crash.*boom"):
            client.request("crash")
        assert client.request("echo", {"still": "serving"}) == {"still": "serving"}


def test_unknown_method_lists_the_offered_ones(service: ServiceThread, endpoint: str) -> None:
    with (
        Client(endpoint, "test/cli") as client,
        pytest.raises(RequestError, match="offers: crash, echo"),
    ):
        client.request("nope")


def test_timeout_then_late_reply_is_not_taken_for_the_next(
    service: ServiceThread, endpoint: str
) -> None:
    with Client(endpoint, "test/cli") as client:
        with pytest.raises(RequestTimeout):
            client.request("slow", {"seconds": 0.5}, timeout=0.1)
        assert client.request("echo", {"k": "fresh"}, timeout=3) == {"k": "fresh"}


def test_no_service_times_out(endpoint: str) -> None:
    with Client(endpoint, "test/cli") as client, pytest.raises(RequestTimeout):
        client.request("echo", timeout=0.2)


def test_garbage_requests_are_counted_and_dropped(service: ServiceThread, endpoint: str) -> None:
    ctx = zmq.Context()
    raw = ctx.socket(zmq.DEALER)
    raw.linger = 2000  # let the garbage actually leave before close
    raw.connect(endpoint)
    raw.send_multipart([b"", b"\xc1not msgpack"])
    raw.send_multipart([b"no delimiter"])
    raw.close()
    ctx.term()
    with Client(endpoint, "test/cli") as client:
        assert client.request("echo", {"ok": 1}) == {"ok": 1}
    assert service.service.dropped.total == 2


def test_async_client(service: ServiceThread, endpoint: str) -> None:
    async def go() -> object:
        ctx = zmq.asyncio.Context()
        client = AsyncClient(ctx, endpoint, "test/actor")
        try:
            return await client.request("echo", {"a": 1})
        finally:
            client.close()
            ctx.term()

    assert asyncio.run(go()) == {"a": 1}


def test_ipc_socket_file_removed_on_close(state_dir: str) -> None:
    ep = f"ipc://{state_dir}/gone"
    svc = ServiceThread(ep, {})
    assert os.path.exists(f"{state_dir}/gone")
    svc.stop()
    assert not os.path.exists(f"{state_dir}/gone")


def test_reply_shape_is_one_shape() -> None:
    from bus import rpc

    assert rpc.ok(5, 1) == {"ok": True, "result": 5, "re": 1}
    assert rpc.error("why", 2) == {"ok": False, "error": "why", "re": 2}
    assert envelope.VERSION == 1


def test_unencodable_result_is_an_error_reply_and_the_service_lives_on(endpoint: str) -> None:
    svc = ServiceThread(endpoint, {"odd": lambda body: {1, 2}, "echo": lambda body: body})
    try:
        with Client(endpoint, "test/cli") as client:
            with pytest.raises(RequestError, match="could not be encoded"):
                client.request("odd")
            assert client.request("echo", {"after": 1}) == {"after": 1}
    finally:
        svc.stop()


def test_close_does_not_remove_a_socket_another_service_bound_since(state_dir: str) -> None:
    ep = f"ipc://{state_dir}/shared"
    old = ServiceThread(ep, {"who": lambda body: "old"})
    os.unlink(f"{state_dir}/shared")  # as when a node restarts and clears stale sockets
    new = ServiceThread(ep, {"who": lambda body: "new"})
    old.stop()
    try:
        assert os.path.exists(f"{state_dir}/shared")
        with Client(ep, "test/cli") as client:
            assert client.request("who") == "new"
    finally:
        new.stop()
