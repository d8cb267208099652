"""ARP for floating IPs: the probe before an address is added, the announcement after.

Why our own frames on a raw AF_PACKET socket and not the `arping` binary: a fork+exec costs up to
a second exactly when a failover is under way, and its output has to be parsed; a socket opened
for the purpose sends a frame in microseconds and lets us read the answers ourselves.

The probe follows RFC 5227: ARP requests with sender IP 0.0.0.0 (so that nobody's ARP cache
learns anything from us) asking for the address; anyone who answers for it, announces it, or
probes for it at the same time from another MAC holds or is about to hold it. The timings are
compressed from the RFC's seconds to well under a second, because a failover waits for them.

The announcement is a gratuitous ARP: sender IP = target IP = the floating IP, sender MAC = our
interface's, sent to broadcast both as a request (what RFC 5227 prescribes) and as a reply (what
some switches and older hosts only learn from). Without it clients keep the previous owner's MAC
for many seconds.

Every socket here has one owner that closes it, and every wait ends at a deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from typing import Any, NamedTuple, Self

__all__ = [
    "ArpPacket",
    "ArpSocket",
    "Conflict",
    "EthernetSocket",
    "announcement_frames",
    "build",
    "conflict_in",
    "parse",
    "probe",
    "probe_frame",
    "start_announcing",
]

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST = "ff:ff:ff:ff:ff:ff"
NO_MAC = "00:00:00:00:00:00"
UNSPECIFIED = "0.0.0.0"
FRAME_MIN = 60  # Ethernet's minimum frame length without the FCS: shorter frames are padded

_ETH = struct.Struct("!6s6sH")  # destination, source, ethertype
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa

# Probe and announcement timings (RFC 5227's PROBE_NUM / ANNOUNCE_NUM, in tenths of its times).
PROBE_COUNT = 3
PROBE_INTERVAL = 0.15
PROBE_WAIT = 0.15  # listening after the last probe: the whole probe takes 0.45 s when silent
ANNOUNCE_COUNT = 3
ANNOUNCE_INTERVAL = 0.1


class ArpPacket(NamedTuple):
    """One Ethernet/IPv4 ARP frame, addresses as text."""

    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str
    source: str = ""  # the Ethernet header's addresses
    destination: str = BROADCAST


class Conflict(NamedTuple):
    """Someone else holds the address (`probing` False) or is claiming it right now (True)."""

    mac: str
    probing: bool = False


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def mac_bytes(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"{text!r} is not a MAC address (six hex pairs separated by colons)")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a MAC address (six hex pairs separated by colons)"
        ) from None


def _ipv4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def build(
    op: int,
    sender_mac: str,
    sender_ip: str,
    target_mac: str,
    target_ip: str,
    destination: str = BROADCAST,
) -> bytes:
    """An Ethernet frame carrying one ARP packet, from `sender_mac`, padded to the minimum."""
    frame = _ETH.pack(mac_bytes(destination), mac_bytes(sender_mac), ETH_P_ARP) + _ARP.pack(
        ARPHRD_ETHER,
        ETH_P_IP,
        6,
        4,
        op,
        mac_bytes(sender_mac),
        _ipv4(sender_ip),
        mac_bytes(target_mac),
        _ipv4(target_ip),
    )
    return frame.ljust(FRAME_MIN, b"\x00")


def parse(frame: bytes) -> ArpPacket | None:
    """The ARP packet in an Ethernet frame, or None for anything else (other ethertypes, other
    hardware or protocol types, truncated frames): a packet socket sees whatever arrives."""
    if len(frame) < _ETH.size + _ARP.size:
        return None
    dst, src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if (htype, ptype, hlen, plen) != (ARPHRD_ETHER, ETH_P_IP, 6, 4):
        return None
    return ArpPacket(
        op,
        mac_text(sha),
        str(ipaddress.IPv4Address(spa)),
        mac_text(tha),
        str(ipaddress.IPv4Address(tpa)),
        mac_text(src),
        mac_text(dst),
    )


def probe_frame(mac: str, ip: str) -> bytes:
    """RFC 5227 ARP probe: "who has `ip`?" asked without claiming any address ourselves."""
    return build(ARPOP_REQUEST, mac, UNSPECIFIED, NO_MAC, ip)


def announcement_frames(mac: str, ip: str) -> tuple[bytes, bytes]:
    """Gratuitous ARP for `ip` at `mac`: as a request, then as a reply, both to broadcast."""
    return (
        build(ARPOP_REQUEST, mac, ip, NO_MAC, ip),
        build(ARPOP_REPLY, mac, ip, mac, ip),
    )


def conflict_in(packet: ArpPacket, ip: str, own_mac: str) -> Conflict | None:
    """Does `packet`, seen while probing for `ip`, say someone else has it (RFC 5227 §2.1.1)?"""
    if packet.sender_mac == own_mac:
        return None  # our own frame (or a looped-back copy of it)
    if packet.sender_ip == ip:
        return Conflict(packet.sender_mac)  # an answer to our probe, or its owner announcing it
    if packet.op == ARPOP_REQUEST and packet.sender_ip == UNSPECIFIED and packet.target_ip == ip:
        return Conflict(packet.sender_mac, probing=True)
    return None


class EthernetSocket:
    """A packet socket bound to one Ethernet interface for one ethertype: it sends whole frames
    and receives what `parse` accepts (other frames are skipped). Bound to that ethertype
    rather than ETH_P_ALL, it gets no copies of what this host sends: what it receives came in
    from the link (our own frames looped back by the network are told apart by their sender
    MAC). ARP uses it as is (`ArpSocket`); neighbour discovery (ndp.py) adds multicast joins."""

    ethertype = ETH_P_ARP
    what = "ARP"

    def __init__(self, interface: str) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(self.ethertype))
        try:
            sock.bind((interface, self.ethertype))
            sock.setblocking(False)
            _name, _proto, _pkttype, hatype, address = sock.getsockname()
            if hatype != ARPHRD_ETHER:
                raise OSError(f"interface {interface} is not Ethernet (hardware type {hatype})")
            self._index = socket.if_nametoindex(interface)
        except BaseException:
            sock.close()
            raise
        self.interface = interface
        self.mac = mac_text(address)
        self._sock: socket.socket | None = sock

    def parse(self, frame: bytes) -> Any:
        return parse(frame)

    def send(self, frame: bytes) -> None:
        self._open().send(frame)

    async def receive(self, deadline: float) -> Any:
        """The next frame `parse` accepts that came in from the link before `deadline` (the
        loop's clock, i.e. time.monotonic()); None at the deadline."""
        loop = asyncio.get_running_loop()
        while True:
            sock = self._open()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    frame = await loop.sock_recv(sock, 2048)
            except TimeoutError:
                return None
            packet = self.parse(frame)
            if packet is not None:
                return packet

    def _open(self) -> socket.socket:
        if self._sock is None:
            raise OSError(f"{self.what} socket on {self.interface} is closed")
        return self._sock

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArpSocket(EthernetSocket):
    """ARP frames on one interface (ArpPacket from `receive`)."""


async def probe(
    interface: str,
    ip: str,
    *,
    count: int = PROBE_COUNT,
    interval: float = PROBE_INTERVAL,
    wait: float = PROBE_WAIT,
) -> Conflict | None:
    """Probe for `ip` on `interface`: the first conflict seen, or None when nobody answered
    within (count - 1) * interval + wait seconds. OSError if the interface cannot send."""
    loop = asyncio.get_running_loop()
    with ArpSocket(interface) as sock:
        frame = probe_frame(sock.mac, ip)
        started = loop.time()
        end = started + (count - 1) * interval + wait
        sent = 0
        while True:
            now = loop.time()
            if sent < count and now >= started + sent * interval:
                sock.send(frame)
                sent += 1
                continue
            wake = min(end, started + sent * interval) if sent < count else end
            if now >= end:
                return None
            packet = await sock.receive(wake)
            if packet is not None and (conflict := conflict_in(packet, ip, sock.mac)):
                return conflict


def start_announcing(
    interface: str,
    ip: str,
    *,
    count: int = ANNOUNCE_COUNT,
    interval: float = ANNOUNCE_INTERVAL,
) -> asyncio.Task[int]:
    """Announce `ip` on `interface`: the first announcement now (OSError if it cannot be sent),
    the other `count - 1` from the returned task, `interval` apart. The task owns the socket and
    closes it when it ends or is cancelled; its result is how many rounds went out."""
    sock = ArpSocket(interface)
    try:
        frames = announcement_frames(sock.mac, ip)
        for frame in frames:
            sock.send(frame)
    except BaseException:
        sock.close()
        raise

    async def rest() -> int:
        rounds = 1
        try:
            for _ in range(count - 1):
                await asyncio.sleep(interval)
                for frame in frames:
                    sock.send(frame)
                rounds += 1
            return rounds
        finally:
            sock.close()

    try:
        task = asyncio.get_running_loop().create_task(rest(), name=f"announce {ip} on {interface}")
    except BaseException:
        sock.close()
        raise
    # A task cancelled before its first step never runs `rest`'s finally: close it here as well.
    task.add_done_callback(lambda _task: sock.close())
    return task
