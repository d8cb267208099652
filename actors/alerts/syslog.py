"""`alert.syslog`: each alert as one syslog message, to the local syslog socket or to a remote
syslog server over UDP or TCP.

Over the network the message is RFC 5424:

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [haven@32473 ...] BOM MSG

- PRI: the configured `facility` × 8 + the alert's severity (info → 6 informational,
  warning → 4, error → 3).
- TIMESTAMP: the alert's origin time (the wall clock of the server it happened on), UTC, with
  milliseconds: `2025-01-31T12:00:00.123Z`.
- HOSTNAME: the server the alert happened on (the alert's `server`, not necessarily this host's
  name), printable US-ASCII only (anything else becomes `_`), at most 255 characters.
- APP-NAME: the configured `tag` (default `haven`), at most 48 characters. PROCID: `-` (the
  sender's process says nothing about the event).
- MSGID: the event's name (`server_down`, `resource_start_failed`, ...) — chosen over
  `<module>.<id>` because a filter on the name reads for itself; the module and numeric ID are in
  the structured data, for filters written after the original's event IDs.
- STRUCTURED-DATA: one element `haven@32473` (32473 is the private enterprise number RFC 5612
  reserves for documentation and examples: Haven has no IANA number of its own) with `module`,
  `event`, `id`, `level`, then the alert's details that are plain values (strings, numbers,
  booleans: `server`, `group`, `resource`, `error`, ...; lists and tables are left out — the
  message says them), values escaped as RFC 5424 §6.3.3 (`"`, `\\`, `]`), control characters
  made spaces, cut at 256 characters.
- MSG: a UTF-8 BOM, then the alert's message text.

A message is at most 8192 bytes (rsyslog's default limit): a longer message text is cut.

To a local socket, `format = "auto"` (the default) sends the traditional form instead,
`<PRI>Mmm dd hh:mm:ss TAG: EVENT: MSG` (RFC 3164 as glibc's syslog() writes it: local time, no
hostname — the daemon adds its own), because that is what the daemons behind /dev/log parse:
journald does not read RFC 5424 there (systemd issue #19251) and rsyslog's imuxsock reads it only
with `SysSock.UseSpecialParser="off"`. `format = "rfc5424"` or `"rfc3164"` forces one form
everywhere (RFC 3164 to a remote server carries the hostname).

Where to (`target`):
- `local` (the default): the local syslog socket /dev/log;
- `unix:/path`: another unix socket (a datagram socket; a stream socket is found out and used
  then, each message ended by a NUL as glibc does);
- `udp://host[:port]`, `tcp://host[:port]` (default port 514; an IPv6 address in brackets).
  TCP frames messages by octet counting (RFC 6587 §3.4.1) over one persistent connection, made
  again after an error or when the server closed it.

Connecting and sending are bounded by `timeout`. A failure — no socket at /dev/log, a refused
connection, ECONNREFUSED reported on a connected UDP socket, no route — fails the delivery and it
is retried with back-off (the base, actors/alerts/sender.py), in order. One alert per delivery, so
a retry never sends an alert twice over a stream. UDP reports a refusal with the datagram after
the refused one: the refused one is sent again first; while failing, each try waits a moment for
a refusal before it counts as delivered. TCP has no acknowledgement: a message written just before
the server dies unseen (no FIN, no RST yet) is lost — as with every plain-TCP syslog client.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import os
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from actors.alerts.record import Alert
from actors.alerts.sender import AlertSender, DeliveryError

FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    **{f"local{i}": 16 + i for i in range(8)},
}
SEVERITIES = {"error": 3, "warning": 4, "info": 6}
SD_ID = "haven@32473"  # 32473: the example enterprise number of RFC 5612 (documentation only)
DEFAULT_PORT = 514
LOCAL_SOCKET = "/dev/log"
MAX_MESSAGE = 8192  # bytes of one message (rsyslog's default maximum)
MAX_VALUE = 256  # characters of one structured-data value
BOM = "\ufeff"
NIL = "-"
UDP_CONFIRM = 0.2  # seconds to wait for an ICMP refusal while a UDP destination is failing
_REFUSALS = (errno.ECONNREFUSED, errno.EHOSTUNREACH)


# --- the message ----------------------------------------------------------------------------


def printable(text: str, limit: int) -> str:
    """A header field: PRINTUSASCII (33..126) only, at most `limit` characters, `-` if empty."""
    clean = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)[:limit]
    return clean or NIL


def _sd_name(name: str) -> str | None:
    """A PARAM-NAME: 1..32 printable characters other than `=`, space, `]` and `"`."""
    if not 1 <= len(name) <= 32 or any(not 33 <= ord(c) <= 126 or c in '="]' for c in name):
        return None
    return name


def sd_escape(value: str) -> str:
    """A PARAM-VALUE (RFC 5424 §6.3.3): `\\`, `"` and `]` escaped with a backslash; control
    characters (newlines of a command's error output) become spaces."""
    value = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value)
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _sd_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        text = str(value)
        return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."
    return None  # lists, tables, None: the message says them


def structured_data(alert: Alert, budget: int = MAX_MESSAGE // 2) -> str:
    """`[haven@32473 module=".." event=".." id=".." level=".." server=".." ...]`, details after
    the fixed fields in their order, left out from the end past `budget` bytes."""
    params = [("module", alert.module), ("event", alert.event), ("id", alert.id)]
    params.append(("level", alert.level))
    params += [(k, v) for k, v in alert.details.items() if k not in ("module", "event", "id")]
    out = "[" + SD_ID
    for key, value in params:
        name, text = _sd_name(str(key)), _sd_value(value)
        if name is None or text is None:
            continue
        item = f' {name}="{sd_escape(text)}"'
        if len((out + item).encode()) + 1 > budget:
            break
        out += item
    return out + "]"


def _cut(data: bytes, limit: int) -> bytes:
    """At most `limit` bytes, never half a UTF-8 character."""
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode()


def rfc5424(alert: Alert, facility: int, tag: str) -> bytes:
    pri = facility * 8 + SEVERITIES.get(alert.level, 6)
    when = datetime.datetime.fromtimestamp(alert.time, datetime.UTC)
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = " ".join(
        (
            f"<{pri}>1",
            stamp,
            printable(alert.server, 255),
            printable(tag, 48),
            NIL,  # PROCID
            printable(alert.event, 32),  # MSGID
            structured_data(alert),
        )
    )
    head_bytes = (head + " ").encode()
    text = (BOM + alert.message.replace("\x00", " ")).encode()
    return head_bytes + _cut(text, MAX_MESSAGE - len(head_bytes))


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def rfc3164(alert: Alert, facility: int, tag: str, hostname: bool) -> bytes:
    pri = facility * 8 + SEVERITIES.get(alert.level, 6)
    t = time.localtime(alert.time)
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    host = printable(alert.server, 255) + " " if hostname else ""
    # a TAG is alphanumeric, at most 32 characters (RFC 3164 §4.1.3)
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in tag)[:32]
    text = " ".join(alert.message.split())  # one line
    line = f"<{pri}>{stamp} {host}{name or 'haven'}: {alert.event or NIL}: {text}"
    return _cut(line.encode(), MAX_MESSAGE)


# --- where to -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    transport: str  # unix | udp | tcp
    address: str  # a socket path, or a host name / address
    port: int = 0

    def __str__(self) -> str:
        if self.transport == "unix":
            return f"unix:{self.address}"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.transport}://{host}:{self.port}"


def parse_target(text: str) -> Target:
    """`local`, `unix:/path`, `udp://host[:port]` or `tcp://host[:port]`; ValueError with the
    reason otherwise."""
    text = text.strip()
    if text == "local":
        return Target("unix", LOCAL_SOCKET)
    if text.startswith("unix:"):
        path = text.removeprefix("unix:")
        if path.startswith("//"):  # unix:///run/x
            path = path[2:]
        if not path.startswith("/"):
            raise ValueError("a unix socket is an absolute path (unix:/path/to/socket)")
        return Target("unix", path)
    scheme, sep, _ = text.partition("://")
    if not sep or scheme not in ("udp", "tcp"):
        raise ValueError(
            "expected local, unix:/path, udp://host[:port] or tcp://host[:port] "
            "(e.g. udp://192.0.2.5:514)"
        )
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port is a number from 1 to 65535")
    if not parts.hostname:
        raise ValueError(f"no host in {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"only {scheme}://host[:port] (no path, user or query)")
    return Target(scheme, parts.hostname, port or DEFAULT_PORT)


def target_problem(text: str) -> str | None:
    """For the configuration checker: why `target` is not a syslog target, or None."""
    try:
        parse_target(text)
    except ValueError as exc:
        return str(exc)
    return None


def config_problems(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each way these validated parameters cannot work (config/typed.py)."""
    problem = target_problem(str(params.get("target") or "local"))
    return [("target", problem)] if problem else []


# --- the connection -----------------------------------------------------------------------


class _Connection:
    """One open way to the target: a connected datagram socket, or a stream."""

    def __init__(
        self,
        sock: socket.socket | None = None,
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
        framing: str = "",
    ) -> None:
        self.sock = sock
        self.stream = stream
        self.framing = framing  # streams: "octets" (RFC 6587) or "nul" (a local stream socket)

    def usable(self) -> bool:
        """A stream the server closed (it never writes to us: end of input is the only thing
        it can say) is made again before sending, so no message goes into a dead connection."""
        if self.stream is None:
            return True
        reader, writer = self.stream
        return not (reader.at_eof() or writer.is_closing() or reader.exception() is not None)

    async def send(self, message: bytes, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            if self.sock is not None:
                await asyncio.get_running_loop().sock_sendall(self.sock, message)
                return
            assert self.stream is not None
            _, writer = self.stream
            if self.framing == "octets":
                writer.write(b"%d " % len(message) + message)
            else:
                writer.write(message + b"\x00")
            await writer.drain()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.stream is not None:
            self.stream[1].close()


async def _connect_unix(path: str, timeout: float) -> _Connection:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.connect(path)  # a datagram connect to a unix socket does not block
        return _Connection(sock=sock)
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EPROTOTYPE:
            raise
    # a stream socket (syslog-ng's unix-stream, journald's stdout socket is no syslog socket)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, path)
            stream = await asyncio.open_unix_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
    return _Connection(stream=stream, framing="nul")


async def _connect_udp(host: str, port: int, timeout: float) -> _Connection:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            sock.connect(address)  # connected: ICMP errors come back as ECONNREFUSED on send
            return _Connection(sock=sock)
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host}")


async def _connect_tcp(host: str, port: int, timeout: float) -> _Connection:
    async with asyncio.timeout(timeout):
        stream = await asyncio.open_connection(host, port)
    sock = stream[1].get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return _Connection(stream=stream, framing="octets")


# --- the actor ------------------------------------------------------------------------------


class SyslogSender(AlertSender):
    max_batch = 1  # one alert per delivery: a failed one is sent again, never one before it

    async def prepare(self) -> None:
        p = self.params
        self.facility = FACILITIES.get(str(p.get("facility") or "daemon"), FACILITIES["daemon"])
        self.tag = str(p.get("tag") or "haven")
        self.format = str(p.get("format") or "auto")
        self.timeout = float(p.get("timeout") or 5.0)
        self.deliver_timeout = 4 * self.timeout + 1.0  # connect + send (a local one: twice)
        self.conn: _Connection | None = None
        self.target: Target | None = None
        self.problem: str | None = None
        self.previous: bytes | None = None  # UDP: the last datagram sent
        self.resend: bytes | None = None  # UDP: refused, to be sent again before the next
        text = str(p.get("target") or "local")
        try:
            self.target = parse_target(text)
        except ValueError as exc:
            # the configuration checker should have said it; each delivery says it again
            self.problem = f'target "{text}": {exc}'
            self.log.error("unusable syslog target", destination=self.destination, error=exc)

    def encode(self, alert: Alert) -> bytes:
        local = self.target is None or self.target.transport == "unix"
        if self.format == "rfc3164" or (self.format == "auto" and local):
            return rfc3164(alert, self.facility, self.tag, hostname=not local)
        return rfc5424(alert, self.facility, self.tag)

    async def _connect(self) -> _Connection:
        t = self.target
        assert t is not None
        if t.transport == "unix":
            return await _connect_unix(t.address, self.timeout)
        if t.transport == "udp":
            return await _connect_udp(t.address, t.port, self.timeout)
        return await _connect_tcp(t.address, t.port, self.timeout)

    async def deliver(self, alerts: list[Alert]) -> None:
        if self.problem is not None or self.target is None:
            raise DeliveryError(self.problem or "no target")
        for alert in alerts:
            message = self.encode(alert)
            try:
                if self.resend is not None:  # refused before: the one before goes again first
                    await self._send(self.resend)
                    self.resend = None
                await self._send(message)
                if self.target.transport == "udp" and self.failing_since is not None:
                    await self._confirm_udp()
            except TimeoutError:
                self._drop()
                raise DeliveryError(f"{self.target}: no answer within {self.timeout:g}s") from None
            except OSError as exc:
                self._drop()
                if self.target.transport == "udp" and exc.errno in _REFUSALS:
                    # an ICMP error about an earlier datagram: the last one sent was not taken
                    self.resend = self.resend or self.previous
                raise DeliveryError(f"{self.target}: {self._describe(exc)}") from exc
            self.previous = message

    async def _send(self, message: bytes) -> None:
        if self.conn is not None and not self.conn.usable():
            self._drop()
        fresh = self.conn is None
        if self.conn is None:
            self.conn = await self._connect()
        try:
            await self.conn.send(message, self.timeout)
        except (ConnectionRefusedError, BrokenPipeError, ConnectionResetError):
            if fresh or self.target is None or self.target.transport != "unix":
                raise
            # a local daemon that restarted: its socket is new; a datagram that failed was
            # not sent, so sending it again on a new connection sends it once
            self._drop()
            self.conn = await self._connect()
            await self.conn.send(message, self.timeout)

    async def _confirm_udp(self) -> None:
        """While failing: wait a moment for an ICMP refusal of what was just sent, so that a
        receiver still down is not taken for one back up (UDP says nothing otherwise). The alert
        is still at the head of the queue: it is sent again at the next try."""
        await asyncio.sleep(UDP_CONFIRM)
        sock = self.conn.sock if self.conn is not None else None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if sock is not None else 0
        if err:
            self._drop()
            raise DeliveryError(f"{self.target}: {os.strerror(err)}")

    def _describe(self, exc: OSError) -> str:
        if isinstance(exc, FileNotFoundError) and self.target and self.target.transport == "unix":
            return f"no socket at {self.target.address}"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve {self.target.address if self.target else '?'}: {exc.strerror}"
        if exc.errno:  # asyncio's "Connect call failed (...)" says less than the errno
            return os.strerror(exc.errno)
        return str(exc) or type(exc).__name__

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None
        if conn is not None:
            conn.close()
            if conn.stream is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await conn.stream[1].wait_closed()
