"""Reaching the local node's services from a command, with errors a person can act on."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import zmq

from bus.paths import NodePaths, StateDirError
from bus.rpc import Client, RequestError
from cli.errors import UserError


def node_paths(state_dir: str) -> NodePaths:
    paths = NodePaths(state_dir)
    try:
        endpoint = paths.service_endpoint("node")
    except StateDirError as exc:
        raise UserError(str(exc)) from None
    if not paths.node_running():
        stale = (
            " (it stopped uncleanly: its sockets are stale)"
            if os.path.exists(endpoint.removeprefix("ipc://"))
            else ""
        )
        raise UserError(
            f"no node is running with state directory {state_dir}{stale}; start one with "
            "`haven node run`, or pass --state-dir / set HAVEN_STATE_DIR"
        )
    return paths


def request(
    state_dir: str,
    method: str,
    body: dict[str, Any] | None = None,
    timeout: float = 5.0,
    service: str = "node",
) -> Any:
    """A request to a service of the local node (the supervisor's by default)."""
    paths = node_paths(state_dir)
    endpoint = paths.service_endpoint(service)
    if service != "node" and not os.path.exists(endpoint.removeprefix("ipc://")):
        raise UserError(f"the node's {service} is not running (see `haven status`)")
    with Client(endpoint, sender=f"cli/{os.getpid()}") as client:
        try:
            return client.request(method, body, timeout=timeout)
        except RequestError as exc:
            raise UserError(str(exc)) from None


@contextlib.contextmanager
def subscriber(paths: NodePaths, *prefixes: str) -> Iterator[zmq.Socket]:
    """A SUB socket on the node's bus for these topic prefixes, closed on the way out (what
    `bus tap`, `status --watch`, the group commands' progress and `alerts --follow` read)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    try:
        sock.connect(paths.subscribe_endpoint)
        for prefix in prefixes:
            sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        yield sock
    finally:
        sock.close()
        ctx.term()
