"""ICMP echo from one long-lived raw socket, inside the actor's event loop.

Why not run `ping`: a fork+exec per check costs up to a second and a whole process, exactly when
the machine may be overloaded and the NP decision is most urgent, and its output has to be parsed.
One raw socket, opened once, costs nothing per check; probes become an asyncio await whose time-out
is the event loop's own timer, so the time-out we ask for is the time-out we get.

Why the matching is strict: a raw ICMP socket sees every ICMP packet the host receives — other
processes' pings, our own echo requests looped back, garbage. An answer counts only when its ICMP
id, sequence number, 8-byte per-prober nonce (echoed back in the payload) and source address all
match a probe still waiting; everything else is counted and dropped, never raised.

IPv4 only (NP targets are routers and hosts on the public LAN); an IPv6 target is refused with
ValueError. Opening the socket needs CAP_NET_RAW (root has it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import math
import os
import socket
import struct
import time

__all__ = ["IcmpProber", "checksum"]

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
_SOL_RAW = 255  # Linux: SOL_RAW
_ICMP_FILTER = 1  # Linux: bitmask of ICMP types the kernel must *not* deliver to this socket
_HDR = struct.Struct("!BBHHH")  # type, code, checksum, id, sequence
_NONCE_LEN = 8
_MAX_PER_WAKEUP = 256  # packets read per reader call, so an ICMP flood cannot starve the loop
_instances = itertools.count()


def checksum(data: bytes) -> int:
    """RFC 1071 internet checksum (one's complement of the one's-complement sum of 16-bit words)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4_target(target: str) -> str:
    """The canonical text of an IPv4 address literal, or ValueError saying why not."""
    try:
        addr = ipaddress.ip_address(target)
    except ValueError:
        raise ValueError(
            f"ICMP target {target!r} is not an IPv4 address literal "
            "(IcmpProber is IPv4 only and does not resolve names)"
        ) from None
    if addr.version != 4:
        raise ValueError(f"ICMP target {target!r} is IPv6; IcmpProber is IPv4 only")
    if addr.is_unspecified or addr.is_multicast or addr == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"ICMP target {target!r} cannot be probed: answers would not come from it")
    return str(addr)


def _check_timeout(timeout: float) -> None:
    if not (isinstance(timeout, int | float) and timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")


class IcmpProber:
    """Sends ICMP echo requests and matches their replies; one raw socket for its whole life.

    Bound to the running event loop it was made in, else to that of its first probe.
    `counters`: sent, replies, timeouts, late (ours, but after its time-out), ignored
    (well-formed but not ours), malformed (truncated, bad IP header, bad checksum), send_errors
    (the kernel refused to send, e.g. no route: that probe answers None at once), recv_errors.
    """

    def __init__(self, ident: int | None = None):
        if ident is None:
            ident = (os.getpid() + next(_instances)) & 0xFFFF
        elif not (isinstance(ident, int) and 0 <= ident <= 0xFFFF):
            raise ValueError(f"ICMP ident must be an int in 0..65535, not {ident!r}")
        self.ident = ident
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except PermissionError as e:
            raise PermissionError(
                e.errno,
                "opening a raw ICMP socket needs CAP_NET_RAW (run as root or grant the capability)",
            ) from e
        sock.setblocking(False)
        # Let the kernel drop every ICMP type but echo reply before it reaches us (Linux only;
        # the user-space checks below do not rely on it).
        with contextlib.suppress(OSError):
            sock.setsockopt(
                _SOL_RAW, _ICMP_FILTER, struct.pack("=I", ~(1 << ICMP_ECHO_REPLY) & 0xFFFFFFFF)
            )
        self._sock: socket.socket | None = sock
        self._nonce = os.urandom(_NONCE_LEN)
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[tuple[str, int], asyncio.Future[float]] = {}
        self._buf = bytearray(65536)
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "sent",
                "replies",
                "timeouts",
                "late",
                "ignored",
                "malformed",
                "send_errors",
                "recv_errors",
            ),
            0,
        )
        with contextlib.suppress(RuntimeError):  # made inside the loop: start reading now
            self._attach()

    # -- public ------------------------------------------------------------------------------

    async def probe(self, target: str, timeout: float) -> float | None:
        """Round-trip time in seconds of one echo to `target`, or None if none came in time."""
        addr = _ipv4_target(target)
        _check_timeout(timeout)
        loop = self._attach()
        sock = self._sock
        assert sock is not None
        seq = self._next_seq(addr)
        key = (addr, seq)
        fut: asyncio.Future[float] = loop.create_future()
        self._pending[key] = fut
        packet = self._echo_request(seq)
        try:
            async with asyncio.timeout(timeout):
                sent_at = time.monotonic()
                try:
                    await loop.sock_sendto(sock, packet, (addr, 0))
                except OSError:
                    # e.g. ENETUNREACH / EHOSTUNREACH: the kernel already knows it can't get there.
                    self.counters["send_errors"] += 1
                    return None
                self.counters["sent"] += 1
                received_at = await fut
        except TimeoutError:
            self.counters["timeouts"] += 1
            return None
        finally:
            if self._pending.get(key) is fut:
                del self._pending[key]
        return max(0.0, received_at - sent_at)

    async def any_reachable(self, targets: list[str], timeout: float) -> str | None:
        """Probe every target at once; the first that answers within `timeout`, or None."""
        addrs = [(t, _ipv4_target(t)) for t in targets]  # refuse bad input before sending anything
        _check_timeout(timeout)
        if not addrs:
            return None
        tasks = {asyncio.ensure_future(self.probe(a, timeout)): t for t, a in addrs}
        waiting = set(tasks)
        try:
            while waiting:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                answered = [
                    (task.result(), tasks[task]) for task in done if task.result() is not None
                ]
                if answered:
                    return min(answered)[1]  # several in one wake-up: the quickest round trip
            return None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """Stop reading and close the socket; probes still waiting raise RuntimeError."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RuntimeError("IcmpProber closed while probing"))
        self._pending.clear()

    def __enter__(self) -> IcmpProber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _attach(self) -> asyncio.AbstractEventLoop:
        if self._sock is None:
            raise RuntimeError("IcmpProber is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            loop.add_reader(self._sock.fileno(), self._on_readable)
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("IcmpProber is bound to another event loop")
        return loop

    def _next_seq(self, addr: str) -> int:
        for _ in range(0x10000):
            seq = self._seq
            self._seq = (seq + 1) & 0xFFFF
            if (addr, seq) not in self._pending:
                return seq
        raise RuntimeError(f"65536 probes to {addr} already in flight")

    def _echo_request(self, seq: int) -> bytes:
        body = self._nonce
        header = _HDR.pack(ICMP_ECHO_REQUEST, 0, 0, self.ident, seq)
        csum = checksum(header + body)
        return _HDR.pack(ICMP_ECHO_REQUEST, 0, csum, self.ident, seq) + body

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        view = memoryview(self._buf)
        for _ in range(_MAX_PER_WAKEUP):
            try:
                n, src = sock.recvfrom_into(self._buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # A pending socket error (e.g. an ICMP error about something we sent) is reported
                # once by recvfrom; it says nothing about any particular probe.
                self.counters["recv_errors"] += 1
                continue
            now = time.monotonic()
            try:
                self._dispatch(view[:n], src[0], now)
            except Exception:  # never let a packet take the reader down
                self.counters["malformed"] += 1

    def _dispatch(self, pkt: memoryview, src: str, now: float) -> None:
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            self.counters["malformed"] += 1
            return
        ihl = (pkt[0] & 0x0F) * 4
        if ihl < 20 or len(pkt) < ihl + _HDR.size:
            self.counters["malformed"] += 1
            return
        icmp = pkt[ihl:]
        typ, code, _csum, ident, seq = _HDR.unpack_from(icmp)
        if typ != ICMP_ECHO_REPLY or code != 0 or ident != self.ident:
            self.counters["ignored"] += 1
            return
        if len(icmp) < _HDR.size + _NONCE_LEN or checksum(bytes(icmp)) != 0:
            self.counters["malformed"] += 1
            return
        if bytes(icmp[_HDR.size : _HDR.size + _NONCE_LEN]) != self._nonce:
            self.counters["ignored"] += 1  # same id, another prober (or a previous life of ours)
            return
        fut = self._pending.get((src, seq))
        if fut is None or fut.done():
            self.counters["late"] += 1
            return
        self.counters["replies"] += 1
        fut.set_result(now)
