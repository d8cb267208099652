"""The client side of the witness protocol (`witness_protocol.py`), on asyncio: the `witness`
actor's loop never waits on the network without a deadline.

A minimal HTTP/1.1 client (one request per connection, `Connection: close`, bounded sizes) is
enough for the two requests of an exchange, so no HTTP library is needed. Every failure — no
connection, a timeout, an error status, a bad or unsealed answer, an answer to another request —
is a `WitnessError` whose message says which, and the caller counts it as "cannot confirm".
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from typing import Any

from actors.np import witness_protocol as wp
from actors.np.leaseclock import now
from config.witness import host_port, parse_url

MAX_HEADER_BYTES = 16384


class WitnessError(Exception):
    pass


@dataclass(frozen=True)
class Answer:
    result: str  # granted | refused | ok | released | not_holder
    holder: str | None
    reason: str
    sent_at: float  # our clock, just before the lease request was sent
    duration: float  # seconds asked for


async def http(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: (status, headers in lower case, body). Give it a deadline."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise WitnessError(
            f"cannot connect to the witness {host}:{port}: {exc.strerror or exc}"
        ) from None
    try:
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {host_port(host, port)}",
            "Connection: close",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise WitnessError("the witness's answer has no complete header") from None
        if len(head) > MAX_HEADER_BYTES:
            raise WitnessError("the witness's answer has an oversized header")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise WitnessError("the witness's answer is not HTTP")
        found = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                found[name.strip().lower()] = value.strip()
        try:
            length = int(found.get("content-length", ""))
        except ValueError:
            raise WitnessError("the witness's answer has no Content-Length") from None
        if not 0 <= length <= wp.MAX_BODY:
            raise WitnessError("the witness's answer is too long")
        try:
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise WitnessError("the witness's answer was cut short") from None
        return int(parts[1]), found, data
    except OSError as exc:
        raise WitnessError(f"talking to the witness {host}:{port}: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


class WitnessClient:
    def __init__(self, url: str, token: bytes, server: str) -> None:
        self.host, self.port, self.prefix = parse_url(url)
        self.token = token
        self.cluster = wp.cluster_id(token)
        self.server = server

    async def call(self, op: str, duration: float) -> Answer:
        """One exchange (challenge, then the sealed request); bound it with asyncio.timeout."""
        status, _, data = await http(self.host, self.port, "GET", self.prefix + "/v1/challenge")
        if status != 200:
            raise WitnessError(f"the witness refused a challenge: {_error(data, status)}")
        try:
            nonce = wp.decode(data).get("nonce")
        except wp.ProtocolError as exc:
            raise WitnessError(f"the witness's challenge is {exc}") from None
        if not wp.is_nonce(nonce):
            raise WitnessError("the witness's challenge has no nonce")
        cnonce = secrets.token_hex(16)
        request = {
            "v": wp.VERSION,
            "cluster": self.cluster,
            "server": self.server,
            "op": op,
            "duration_ms": int(duration * 1000),
            "nonce": nonce,
            "cnonce": cnonce,
        }
        body = wp.encode(request)
        sent_at = now()
        status, headers, data = await http(
            self.host,
            self.port,
            "POST",
            self.prefix + "/v1/lease",
            body,
            {wp.MAC_HEADER: wp.seal(self.token, "request", body)},
        )
        if status != 200:
            raise WitnessError(f"the witness refused the request: {_error(data, status)}")
        if not wp.sealed_by(self.token, "response", data, headers.get(wp.MAC_HEADER.lower())):
            raise WitnessError("the witness's answer is not sealed with this cluster's token")
        try:
            answer = wp.decode(data)
        except wp.ProtocolError as exc:
            raise WitnessError(f"the witness's answer is {exc}") from None
        if (
            answer.get("cnonce"),
            answer.get("op"),
            answer.get("cluster"),
            answer.get("server"),
        ) != (
            cnonce,
            op,
            self.cluster,
            self.server,
        ):
            raise WitnessError("the witness's answer is for another request")
        result = answer.get("result")
        holder = answer.get("holder")
        if not isinstance(result, str) or not (holder is None or isinstance(holder, str)):
            raise WitnessError("the witness's answer is malformed")
        return Answer(result, holder, str(answer.get("reason") or ""), sent_at, duration)


def _error(data: bytes, status: int) -> str:
    try:
        message: Any = wp.decode(data).get("error")
    except wp.ProtocolError:
        message = None
    return f"{message} (HTTP {status})" if isinstance(message, str) else f"HTTP {status}"
