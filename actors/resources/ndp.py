"""Neighbour discovery for IPv6 floating IPs: the probe before an address is added, the
announcement after. The IPv6 counterpart of `actors.resources.arp`, and for the same reasons a
raw AF_PACKET socket with frames we build ourselves: nothing to fork at failover time, and we
read the answers directly instead of parsing a tool's output.

The probe is RFC 4862's duplicate address detection done by us, and quickly: Neighbor
Solicitations for the address from the unspecified address `::` (so that nobody's neighbour cache
learns anything from us) to the address's solicited-node multicast group. A node that holds the
address answers with a Neighbor Advertisement to all-nodes; a node probing for it at the same
time sends the same kind of solicitation. The kernel's own DAD would do this too, but it keeps
the address "tentative" for a second or more (unusable, and silently dead if it fails), so the
address is added with IFA_F_NODAD after our probe instead.

The announcement is an unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) to all-nodes with
the override flag and our MAC as the target link-layer address: neighbours that have the address
cached replace the previous owner's MAC at once instead of waiting for reachability to fail.

A packet socket, rather than an ICMPv6 raw socket: it needs neither the address (not yet ours
while probing) nor multicast group membership at the IP layer, it sees answers to `::` that the
IP stack would not hand us, and the hop limit of 255 that NDP demands is just a byte we write.
It joins the link-layer multicast groups it listens to, so that NICs that filter multicast in
hardware pass them. Bound to ETH_P_IPV6 rather than ETH_P_ALL, it gets no copies of what this
host sends.

Every socket here has one owner that closes it, and every wait ends at a deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from typing import NamedTuple

from actors.resources.arp import Conflict, EthernetSocket, mac_bytes, mac_text

__all__ = [
    "Conflict",
    "NdpPacket",
    "NdpSocket",
    "announcement_frame",
    "build",
    "checksum",
    "conflict_in",
    "multicast_mac",
    "parse",
    "probe",
    "probe_frame",
    "solicited_node",
    "start_announcing",
]

ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
NEIGHBOR_SOLICITATION = 135
NEIGHBOR_ADVERTISEMENT = 136
OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
HOP_LIMIT = 255  # RFC 4861 §7.1: receivers drop NDP with any other hop limit (off-link forgery)

# The advertisement's flags, as the top bits of its first byte after the checksum.
ROUTER = 0x80
SOLICITED = 0x40
OVERRIDE = 0x20

UNSPECIFIED = "::"
ALL_NODES = "ff02::1"

# The setsockopt(2) values of <linux/if_packet.h> the socket module does not export.
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0

_ETH = struct.Struct("!6s6sH")  # destination, source, ethertype
_IPV6 = struct.Struct("!IHBB16s16s")  # version/class/flow, payload length, next header, hops
_ND = struct.Struct("!BBHB3x16s")  # type, code, checksum, flags, reserved, target
_LLADDR = struct.Struct("!BB6s")  # option type, length in units of 8 bytes, Ethernet address
_PSEUDO = struct.Struct("!16s16sI3xB")  # source, destination, upper-layer length, next header
_MREQ = struct.Struct("iHH8s")  # struct packet_mreq: ifindex, type, address length, address

# Probe and announcement timings: arp's, so that both families fail over equally fast.
PROBE_COUNT = 3
PROBE_INTERVAL = 0.15
PROBE_WAIT = 0.15  # listening after the last probe: the whole probe takes 0.45 s when silent
ANNOUNCE_COUNT = 3
ANNOUNCE_INTERVAL = 0.1


class NdpPacket(NamedTuple):
    """One Neighbor Solicitation or Advertisement in an Ethernet frame, addresses as text
    (IPv6 addresses compressed, as `str(ipaddress.IPv6Address(...))` writes them)."""

    type: int  # NEIGHBOR_SOLICITATION or NEIGHBOR_ADVERTISEMENT
    source_ip: str
    destination_ip: str
    target: str
    flags: int = 0  # ROUTER | SOLICITED | OVERRIDE, advertisements only
    lladdr: str = ""  # the source (NS) or target (NA) link-layer address option, if any
    source: str = ""  # the Ethernet header's addresses
    destination: str = ""


def _ipv6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def solicited_node(ip: str) -> str:
    """The multicast group that a Neighbor Solicitation for `ip` goes to (RFC 4291 §2.7.1):
    ff02::1:ff00:0/104 with the address's last 24 bits."""
    low = int(ipaddress.IPv6Address(ip)) & 0xFFFFFF
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low))


def multicast_mac(ip: str) -> str:
    """The Ethernet address an IPv6 multicast group maps to (RFC 2464 §7): 33:33 and the
    group's last 32 bits."""
    return mac_text(b"\x33\x33" + _ipv6(ip)[-4:])


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(source_ip: str, destination_ip: str, message: bytes) -> int:
    """The ICMPv6 checksum (RFC 4443 §2.3) of `message` between the two addresses: over the
    IPv6 pseudo-header and the message. With the message's checksum field zeroed, the value to
    write there; over a message as received, 0 when its checksum is right."""
    pseudo = _PSEUDO.pack(_ipv6(source_ip), _ipv6(destination_ip), len(message), IPPROTO_ICMPV6)
    return ~_ones_sum(pseudo + message) & 0xFFFF


def build(
    type_: int,
    source_mac: str,
    source_ip: str,
    destination_ip: str,
    target: str,
    *,
    flags: int = 0,
    lladdr: str | None = None,
    destination: str | None = None,
) -> bytes:
    """An Ethernet frame carrying one NS or NA with hop limit 255, from `source_mac`. `lladdr`
    adds the link-layer address option that fits the type (source for NS, target for NA). The
    Ethernet destination defaults to the multicast MAC of a multicast `destination_ip`."""
    if destination is None:
        if not ipaddress.IPv6Address(destination_ip).is_multicast:
            raise ValueError(f"{destination_ip} is not multicast: give the destination MAC")
        destination = multicast_mac(destination_ip)
    message = _ND.pack(type_, 0, 0, flags, _ipv6(target))
    if lladdr is not None:
        kind = OPT_SOURCE_LLADDR if type_ == NEIGHBOR_SOLICITATION else OPT_TARGET_LLADDR
        message += _LLADDR.pack(kind, 1, mac_bytes(lladdr))
    sum_ = checksum(source_ip, destination_ip, message)
    message = message[:2] + struct.pack("!H", sum_) + message[4:]
    ipv6 = _IPV6.pack(
        6 << 28, len(message), IPPROTO_ICMPV6, HOP_LIMIT, _ipv6(source_ip), _ipv6(destination_ip)
    )
    return _ETH.pack(mac_bytes(destination), mac_bytes(source_mac), ETH_P_IPV6) + ipv6 + message


def parse(frame: bytes) -> NdpPacket | None:
    """The NS or NA in an Ethernet frame, or None for anything else and for whatever RFC 4861
    §7.1 tells a receiver to drop (a hop limit other than 255, a wrong checksum, a code other
    than 0, a multicast target, an option of length 0): a packet socket sees every IPv6 frame
    that arrives, and only valid neighbour discovery may count as a conflict."""
    if len(frame) < _ETH.size + _IPV6.size + _ND.size:
        return None
    dst, src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_IPV6:
        return None
    first, length, next_header, hops, source_ip, destination_ip = _IPV6.unpack_from(
        frame, _ETH.size
    )
    start = _ETH.size + _IPV6.size
    message = frame[start : start + length]  # without the Ethernet padding of short frames
    if first >> 28 != 6 or next_header != IPPROTO_ICMPV6 or hops != HOP_LIMIT:
        return None
    if len(message) != length or length < _ND.size:
        return None
    type_, code, _sum, flags, target = _ND.unpack_from(message)
    if type_ not in (NEIGHBOR_SOLICITATION, NEIGHBOR_ADVERTISEMENT) or code != 0:
        return None
    source_text = str(ipaddress.IPv6Address(source_ip))
    destination_text = str(ipaddress.IPv6Address(destination_ip))
    if checksum(source_text, destination_text, message) != 0:
        return None
    target_address = ipaddress.IPv6Address(target)
    if target_address.is_multicast:
        return None
    wanted = OPT_SOURCE_LLADDR if type_ == NEIGHBOR_SOLICITATION else OPT_TARGET_LLADDR
    lladdr = ""
    at = _ND.size
    while at + 2 <= len(message):
        kind, units = message[at], message[at + 1]
        if units == 0 or at + units * 8 > len(message):
            return None
        if kind == wanted and units == 1:
            lladdr = mac_text(message[at + 2 : at + 8])
        at += units * 8
    return NdpPacket(
        type_,
        source_text,
        destination_text,
        str(target_address),
        flags if type_ == NEIGHBOR_ADVERTISEMENT else 0,
        lladdr,
        mac_text(src),
        mac_text(dst),
    )


def probe_frame(mac: str, ip: str) -> bytes:
    """RFC 4862 §5.4.2 probe: "who has `ip`?" from `::`, to the solicited-node group, without a
    source link-layer address option (the RFC forbids it with an unspecified source)."""
    return build(NEIGHBOR_SOLICITATION, mac, UNSPECIFIED, solicited_node(ip), ip)


def announcement_frame(mac: str, ip: str) -> bytes:
    """Unsolicited NA for `ip` at `mac` to all-nodes, with the override flag so that caches
    holding the previous owner's MAC take ours (RFC 4861 §7.2.6)."""
    return build(NEIGHBOR_ADVERTISEMENT, mac, ip, ALL_NODES, ip, flags=OVERRIDE, lladdr=mac)


def conflict_in(packet: NdpPacket, ip: str, own_mac: str) -> Conflict | None:
    """Does `packet`, seen while probing for `ip`, say someone else has it (RFC 4862 §5.4.3-4)?
    An advertisement for it: its owner. A solicitation for it from `::`: another node's probe.
    Anything sent from it: its owner using it. A solicitation for it from elsewhere is merely
    someone resolving it: no sign that anyone holds it."""
    if packet.source == own_mac:
        return None  # our own frame looped back
    ip = str(ipaddress.IPv6Address(ip))
    mac = packet.lladdr or packet.source
    if packet.type == NEIGHBOR_ADVERTISEMENT and packet.target == ip:
        return Conflict(mac)
    solicits = packet.type == NEIGHBOR_SOLICITATION and packet.target == ip
    if solicits and packet.source_ip == UNSPECIFIED:
        return Conflict(packet.source, probing=True)
    if packet.source_ip == ip:
        return Conflict(mac)
    return None


class NdpSocket(EthernetSocket):
    """IPv6 frames on one interface: sends any, receives neighbour discovery (NdpPacket)."""

    ethertype = ETH_P_IPV6
    what = "neighbour discovery"

    def parse(self, frame: bytes) -> NdpPacket | None:
        return parse(frame)

    def join(self, group: str) -> None:
        """Receive frames sent to IPv6 multicast `group` even on a NIC that filters multicast
        in hardware; the membership ends with the socket."""
        mreq = _MREQ.pack(self._index, PACKET_MR_MULTICAST, 6, mac_bytes(multicast_mac(group)))
        self._open().setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)


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
    with NdpSocket(interface) as sock:
        sock.join(ALL_NODES)  # where the owner's answer goes
        sock.join(solicited_node(ip))  # where a simultaneous prober's solicitation goes
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
            if now >= end:
                return None
            wake = min(end, started + sent * interval) if sent < count else end
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
    """Announce `ip` on `interface`: the first advertisement now (OSError if it cannot be sent),
    the other `count - 1` from the returned task, `interval` apart. The task owns the socket and
    closes it when it ends or is cancelled; its result is how many went out."""
    sock = NdpSocket(interface)
    try:
        frame = announcement_frame(sock.mac, ip)
        sock.send(frame)
    except BaseException:
        sock.close()
        raise

    async def rest() -> int:
        sent = 1
        try:
            for _ in range(count - 1):
                await asyncio.sleep(interval)
                sock.send(frame)
                sent += 1
            return sent
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
