"""The floating IP driver, its ARP and its neighbour discovery, on real interfaces in network
namespaces made here.

Two namespaces, the server and a peer on the same links:

    server eth0 198.18.0.1/24 fd00:198:18::1/64  <-veth->  peer eth0 198.18.0.2/24 fd00:198:18::2/64
    server eth1 198.19.0.1/16 fd00:198:19::1/64  <-veth->  peer eth1 198.19.0.2/16 fd00:198:19::2/64
    server eth2 (down, no address)  <-veth->  peer eth2

The driver runs in a thread of this process that entered the server's namespace (setns(2) moves
only the calling thread for network namespaces), so its netlink and packet sockets are exactly
those a node inside that namespace would open. The peer's view of the link is a packet socket
opened the same way in the peer. Nothing is configured in the root namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from actors.resources import arp, ndp
from actors.resources.base import ResourceContext, ResourceError, Why
from actors.resources.fip import Address, FloatingIp, Link, locate

CLONE_NEWNET = 0x40000000
THREAD_DEADLINE = 20.0
PREFIX = f"hvfip-{os.getpid()}"
SERVER, PEER = f"{PREFIX}-srv", f"{PREFIX}-peer"
BROADCAST = "ff:ff:ff:ff:ff:ff"

_libc = ctypes.CDLL(None, use_errno=True)

# -- packets (no privileges needed) ---------------------------------------------------------------

MAC = "02:00:00:00:00:01"
OTHER = "02:00:00:00:00:02"


def test_build_matches_a_frame_written_by_hand():
    frame = arp.build(arp.ARPOP_REQUEST, MAC, "198.18.0.100", "00:00:00:00:00:00", "198.18.0.100")
    expected = bytes.fromhex(
        "ffffffffffff"
        "020000000001"
        "0806"  # Ethernet: broadcast, from MAC, ARP
        "0001"
        "0800"
        "06"
        "04"
        "0001"  # Ethernet/IPv4, request
        "020000000001"
        "c6120064"  # sender MAC, 198.18.0.100
        "000000000000"
        "c6120064"  # target MAC, 198.18.0.100
    )
    assert frame == expected.ljust(60, b"\x00")
    assert len(frame) == arp.FRAME_MIN


def test_parse_reads_back_what_build_wrote():
    frame = arp.build(arp.ARPOP_REPLY, MAC, "198.18.0.7", OTHER, "198.18.0.9", destination=OTHER)
    assert arp.parse(frame) == arp.ArpPacket(
        arp.ARPOP_REPLY, MAC, "198.18.0.7", OTHER, "198.18.0.9", source=MAC, destination=OTHER
    )
    assert arp.parse(frame[:42]) is not None  # an unpadded frame is fine


def test_parse_ignores_everything_that_is_not_ethernet_ipv4_arp():
    good = arp.build(arp.ARPOP_REQUEST, MAC, "198.18.0.7", OTHER, "198.18.0.9")
    assert arp.parse(good[:41]) is None  # truncated
    assert arp.parse(b"") is None
    assert arp.parse(good[:12] + b"\x08\x00" + good[14:]) is None  # an IPv4 ethertype
    assert arp.parse(good[:14] + b"\x00\x06" + good[16:]) is None  # IEEE 802 hardware
    assert arp.parse(good[:16] + b"\x86\xdd" + good[18:]) is None  # IPv6 protocol
    assert arp.parse(good[:19] + b"\x10" + good[20:]) is None  # protocol length 16


def test_probe_claims_no_address_and_announcements_claim_the_floating_ip():
    probe = arp.parse(arp.probe_frame(MAC, "198.18.0.100"))
    assert probe == arp.ArpPacket(
        arp.ARPOP_REQUEST, MAC, "0.0.0.0", "00:00:00:00:00:00", "198.18.0.100", MAC, BROADCAST
    )
    request, reply = (arp.parse(f) for f in arp.announcement_frames(MAC, "198.18.0.100"))
    assert request.op == arp.ARPOP_REQUEST and reply.op == arp.ARPOP_REPLY
    for packet in (request, reply):
        assert packet.sender_ip == packet.target_ip == "198.18.0.100"
        assert packet.sender_mac == packet.source == MAC
        assert packet.destination == BROADCAST


def test_conflicts_follow_rfc_5227():
    ip = "198.18.0.100"

    def seen(op: int, sender_mac: str, sender_ip: str, target_ip: str) -> arp.Conflict | None:
        packet = arp.parse(arp.build(op, sender_mac, sender_ip, MAC, target_ip))
        return arp.conflict_in(packet, ip, MAC)

    assert seen(arp.ARPOP_REPLY, OTHER, ip, "0.0.0.0") == arp.Conflict(OTHER)  # its owner answers
    assert seen(arp.ARPOP_REQUEST, OTHER, ip, ip) == arp.Conflict(OTHER)  # its owner announces
    assert seen(arp.ARPOP_REQUEST, OTHER, ip, "198.18.0.1") == arp.Conflict(OTHER)  # owner asks
    assert seen(arp.ARPOP_REQUEST, OTHER, "0.0.0.0", ip) == arp.Conflict(OTHER, probing=True)
    assert seen(arp.ARPOP_REQUEST, MAC, "0.0.0.0", ip) is None  # our own probe
    assert seen(arp.ARPOP_REQUEST, MAC, ip, ip) is None  # our own announcement
    assert seen(arp.ARPOP_REQUEST, OTHER, "0.0.0.0", "198.18.0.101") is None  # another address
    assert seen(arp.ARPOP_REPLY, OTHER, "198.18.0.2", ip) is None  # an unrelated answer


def test_mac_text_round_trip_and_refusals():
    assert arp.mac_text(arp.mac_bytes("02:AB:cd:00:ff:10")) == "02:ab:cd:00:ff:10"
    for bad in [
        "",
        "02:00:00:00:00",
        "02:00:00:00:00:00:00",
        "2:00:00:00:00:00",
        "0g:00:00:00:00:00",
    ]:
        with pytest.raises(ValueError, match="not a MAC address"):
            arp.mac_bytes(bad)


# -- neighbour discovery packets (no privileges needed) -------------------------------------------

FIP6 = "fd00:198:18::100"

# Frames a Linux 6.18 kernel sent between two namespaces, captured with a packet socket: the
# checksums in them are the kernel's. A solicited NA (the peer answering "who has ::2?") ...
KERNEL_NA = bytes.fromhex(
    "92c0eea18dbf"
    "febcdf5bbddc"
    "86dd"  # Ethernet: to the asker, from the peer, IPv6
    "60000000"
    "0020"
    "3a"
    "ff"  # IPv6: 32 bytes of ICMPv6, hop limit 255
    "fd000198001800000000000000000002"
    "fd000198001800000000000000000001"
    "88"
    "00"
    "7d96"
    "60000000"  # NA, code 0, checksum, flags solicited | override
    "fd000198001800000000000000000002"  # target
    "0201"
    "febcdf5bbddc"  # target link-layer address option
)
# ... and the kernel's own DAD probe for an address added without nodad: from ::, to the
# solicited-node group, with an RFC 7527 nonce option (type 14) that parse must step over.
KERNEL_DAD_NS = bytes.fromhex(
    "3333ff000077"
    "febcdf5bbddc"
    "86dd"
    "60000000"
    "0020"
    "3a"
    "ff"
    "00000000000000000000000000000000"
    "ff0200000000000000000001ff000077"
    "87"
    "00"
    "ae31"
    "00000000"
    "fd000198001800000000000000000077"
    "0e01"
    "9f0928c8f6fc"
)


def with_checksum(frame: bytes) -> bytes:
    """`frame` with its ICMPv6 checksum made right again after a test changed the message."""
    src = str(ipaddress.IPv6Address(frame[22:38]))
    dst = str(ipaddress.IPv6Address(frame[38:54]))
    message = frame[54:56] + b"\x00\x00" + frame[58:]
    return frame[:56] + ndp.checksum(src, dst, message).to_bytes(2, "big") + frame[58:]


def test_ndp_parses_kernel_frames_and_agrees_with_the_kernels_checksums():
    assert ndp.parse(KERNEL_NA) == ndp.NdpPacket(
        ndp.NEIGHBOR_ADVERTISEMENT,
        "fd00:198:18::2",
        "fd00:198:18::1",
        "fd00:198:18::2",
        ndp.SOLICITED | ndp.OVERRIDE,
        lladdr="fe:bc:df:5b:bd:dc",
        source="fe:bc:df:5b:bd:dc",
        destination="92:c0:ee:a1:8d:bf",
    )
    assert ndp.parse(KERNEL_DAD_NS) == ndp.NdpPacket(
        ndp.NEIGHBOR_SOLICITATION,
        "::",
        "ff02::1:ff00:77",
        "fd00:198:18::77",
        source="fe:bc:df:5b:bd:dc",
        destination="33:33:ff:00:00:77",
    )
    for frame, kernels in ((KERNEL_NA, 0x7D96), (KERNEL_DAD_NS, 0xAE31)):
        assert with_checksum(frame)[56:58] == kernels.to_bytes(2, "big")
    # build writes exactly what the kernel wrote
    assert (
        ndp.build(
            ndp.NEIGHBOR_ADVERTISEMENT,
            "fe:bc:df:5b:bd:dc",
            "fd00:198:18::2",
            "fd00:198:18::1",
            "fd00:198:18::2",
            flags=ndp.SOLICITED | ndp.OVERRIDE,
            lladdr="fe:bc:df:5b:bd:dc",
            destination="92:c0:ee:a1:8d:bf",
        )
        == KERNEL_NA
    )


def test_ndp_probe_matches_a_frame_written_by_hand():
    # The checksum by hand: the 16-bit words of the pseudo-header (dst ff02::1:ff00:100, length
    # 0x18, next header 0x3a) and of the message (8700, target fd00:198:18::100) add up to
    # ff02+0001+ff00+0100+0018+003a+8700+fd00+0198+0018+0100 = 0x38605; folded 0x8608; its
    # complement 0x79f7.
    expected = bytes.fromhex(
        "3333ff000100"
        "020000000001"
        "86dd"  # to 33:33 + the group's last 32 bits
        "60000000"
        "0018"
        "3a"
        "ff"  # 24 bytes of ICMPv6, hop limit 255
        "00000000000000000000000000000000"
        "ff0200000000000000000001ff000100"
        "87"
        "00"
        "79f7"
        "00000000"  # NS, code 0, checksum, reserved
        "fd000198001800000000000000000100"  # target; no option from ::
    )
    assert ndp.probe_frame(MAC, FIP6) == expected


def test_ndp_announcement_overrides_with_our_mac_to_all_nodes():
    assert ndp.parse(ndp.announcement_frame(MAC, FIP6)) == ndp.NdpPacket(
        ndp.NEIGHBOR_ADVERTISEMENT,
        FIP6,
        "ff02::1",
        FIP6,
        ndp.OVERRIDE,  # neither solicited nor a router
        lladdr=MAC,
        source=MAC,
        destination="33:33:00:00:00:01",
    )


def test_ndp_multicast_addresses_follow_rfc_4291_and_2464():
    assert ndp.solicited_node("4037::1:800:200e:8c6c") == "ff02::1:ff0e:8c6c"  # RFC 4291's
    assert ndp.solicited_node("fd00:198:18::abcd:1234:5678") == "ff02::1:ff34:5678"
    assert ndp.multicast_mac("ff02::1") == "33:33:00:00:00:01"
    assert ndp.multicast_mac("ff02::1:ff34:5678") == "33:33:ff:34:56:78"
    with pytest.raises(ValueError, match="not multicast"):
        ndp.build(ndp.NEIGHBOR_SOLICITATION, MAC, "::", FIP6, FIP6)


def test_ndp_parse_drops_what_rfc_4861_says_to_drop():
    good = ndp.announcement_frame(MAC, FIP6)
    assert ndp.parse(good + b"\x00" * 10) is not None  # Ethernet padding is not the message
    hops = good[:21] + b"\x40" + good[22:]  # hop limit 64: from off the link
    assert ndp.parse(hops) is None
    assert ndp.parse(good[:-1] + b"\x02") is None  # a wrong checksum
    assert ndp.parse(with_checksum(good[:55] + b"\x01" + good[56:])) is None  # code 1
    assert ndp.parse(with_checksum(good[:-7] + b"\x00" + good[-6:])) is None  # option length 0
    multicast = ndp.build(ndp.NEIGHBOR_ADVERTISEMENT, MAC, FIP6, "ff02::1", "ff02::1")
    assert ndp.parse(multicast) is None  # a multicast target
    echo = with_checksum(good[:54] + b"\x80" + good[55:])  # an echo request, not NDP
    assert ndp.parse(echo) is None
    assert ndp.parse(good[:20] + b"\x11" + good[21:]) is None  # UDP, not ICMPv6
    assert ndp.parse(good[:12] + b"\x08\x00" + good[14:]) is None  # IPv4 ethertype
    assert ndp.parse(good[:77]) is None  # shorter than its payload length says
    assert ndp.parse(b"") is None
    assert ndp.parse(with_checksum(good[:-8])) is None  # payload length says 32, 24 are left


def test_ndp_conflicts_follow_rfc_4862():
    peer_ip = "fd00:198:18::2"

    def seen(type_: int, source_ip: str, target: str, lladdr: str | None = None, sender=OTHER):
        destination = ndp.solicited_node(target) if source_ip == "::" else "ff02::1"
        frame = ndp.build(type_, sender, source_ip, destination, target, lladdr=lladdr)
        return ndp.conflict_in(ndp.parse(frame), FIP6, MAC)

    NS, NA = ndp.NEIGHBOR_SOLICITATION, ndp.NEIGHBOR_ADVERTISEMENT
    assert seen(NA, FIP6, FIP6, lladdr=OTHER) == arp.Conflict(OTHER)  # its owner answers
    # the option names the owner even when another MAC (a bridge, a proxy) sent the frame
    assert seen(NA, FIP6, FIP6, lladdr="02:00:00:00:00:03") == arp.Conflict("02:00:00:00:00:03")
    assert seen(NA, FIP6, FIP6) == arp.Conflict(OTHER)  # without the option: the sender
    assert seen(NS, "::", FIP6) == arp.Conflict(OTHER, probing=True)  # a simultaneous probe
    assert seen(NS, FIP6, peer_ip, lladdr=OTHER) == arp.Conflict(OTHER)  # the owner asks
    assert seen(NS, peer_ip, FIP6, lladdr=OTHER) is None  # someone merely resolves it
    assert seen(NS, "::", FIP6, sender=MAC) is None  # our own probe
    assert seen(NA, FIP6, FIP6, lladdr=MAC, sender=MAC) is None  # our own announcement
    assert seen(NA, peer_ip, peer_ip, lladdr=OTHER) is None  # another address
    assert seen(NS, "::", "fd00:198:18::101") is None  # a probe for another address
    # an address written differently is the same address
    announced = ndp.parse(ndp.announcement_frame(OTHER, FIP6))
    assert ndp.conflict_in(announced, "fd00:198:18:0:0::100", MAC) == arp.Conflict(OTHER)


# -- choosing the interface (pure) --------------------------------------------------------------

ETH0, ETH1, ETH2 = (
    Link(2, "eth0", True, True),
    Link(3, "eth1", True, True),
    Link(4, "eth2", True, True),
)


def on(link: Link, text: str) -> Address:
    return Address(link.index, ipaddress.ip_interface(text))


def place(ip: str, addresses: list[Address], interface: str | None = None, prefix=None):
    return locate(ipaddress.ip_address(ip), interface, prefix, [ETH0, ETH1, ETH2], addresses)


def test_locate_takes_the_most_specific_subnet_and_its_prefix():
    addresses = [on(ETH0, "198.18.0.1/15"), on(ETH1, "198.18.4.1/22"), on(ETH2, "198.19.0.1/16")]
    p = place("198.18.5.9", addresses)
    assert (p.link, p.prefix, p.present, p.elsewhere) == (ETH1, 22, None, None)
    assert place("198.18.5.9", addresses, prefix=32).prefix == 32
    assert place("198.18.200.9", addresses).link == ETH0


def test_locate_refuses_to_guess_between_two_interfaces_in_one_subnet():
    addresses = [on(ETH0, "198.18.0.1/24"), on(ETH1, "198.18.0.2/24")]
    with pytest.raises(ResourceError, match=r"several interfaces \(eth0, eth1\).*set `interface`"):
        place("198.18.0.100", addresses)
    # ... unless the floating IP is already on one of them: that is where it lives.
    p = place("198.18.0.100", [*addresses, on(ETH1, "198.18.0.100/32")])
    assert p.link == ETH1 and p.present == on(ETH1, "198.18.0.100/32")
    assert place("198.18.0.100", addresses, interface="eth1").link == ETH1


def test_locate_without_a_subnet_says_what_to_configure():
    with pytest.raises(
        ResourceError, match=r"198.18.9.9: no interface .* in its subnet.*`interface`"
    ):
        place("198.18.9.9", [on(ETH0, "198.18.0.1/24")])
    # A floating IP added as a host address is found where it is (a restarted actor asks).
    p = place("198.18.9.9", [on(ETH0, "198.18.0.1/24"), on(ETH2, "198.18.9.9/32")])
    assert p.link == ETH2 and p.present is not None


def test_locate_ipv6_takes_the_subnets_prefix_else_64():
    addresses = [
        on(ETH0, "fe80::1/64"),
        on(ETH1, "fe80::2/64"),  # every link has one: no subnet for a global address
        on(ETH0, "fd00:198:18::1/64"),
        on(ETH1, "fd00:198:18:1::1/56"),
        on(ETH0, "198.18.0.1/24"),  # IPv4 counts for nothing here
    ]
    p = place("fd00:198:18::100", addresses)
    assert (p.link, p.prefix, p.present, p.elsewhere) == (ETH0, 64, None, None)
    assert place("fd00:198:18:1::100", addresses).prefix == 56
    assert place("fd00:198:300::5", addresses, interface="eth2").prefix == 64
    assert place("fd00:198:300::5", addresses, interface="eth2", prefix=128).prefix == 128
    with pytest.raises(ResourceError, match=r"fd00:198:300::5: no interface"):
        place("fd00:198:300::5", addresses)
    with pytest.raises(ResourceError, match="prefix_length 129 is too long for an IPv6"):
        place("fd00:198:18::100", addresses, prefix=129)


def test_locate_with_a_configured_interface():
    addresses = [on(ETH0, "198.18.0.1/24"), on(ETH1, "198.18.0.100/32")]
    p = place("198.18.0.100", addresses, interface="eth2")
    assert (p.link, p.prefix, p.present, p.elsewhere) == (ETH2, 32, None, "eth1")
    assert place("198.18.0.100", addresses, interface="eth0").prefix == 24
    with pytest.raises(ResourceError, match="interface eth9 does not exist"):
        place("198.18.0.100", addresses, interface="eth9")
    with pytest.raises(ResourceError, match="prefix_length 33 is too long"):
        place("198.18.0.100", addresses, interface="eth0", prefix=33)


# -- on real links ----------------------------------------------------------------------------


def ip(*args: str) -> str:
    return subprocess.run(
        ["ip", *args], check=True, capture_output=True, text=True, timeout=20
    ).stdout


@pytest.fixture(scope="module")
def lab() -> Iterator[dict[str, str]]:
    """The two namespaces and their links; the MACs of both ends of eth0."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces and packet sockets need root")
    if shutil.which("ip") is None:
        pytest.skip("`ip` (iproute2) is not installed")
    made: list[str] = []
    try:
        for ns in (SERVER, PEER):
            try:
                ip("netns", "add", ns)
            except subprocess.CalledProcessError as e:
                pytest.skip(f"`ip netns add` is unavailable here: {e.stderr.strip()}")
            made.append(ns)
        for name in ("eth0", "eth1", "eth2"):
            ip(
                "-n",
                SERVER,
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                name,
                "netns",
                PEER,
            )
        for ns, last in ((SERVER, 1), (PEER, 2)):
            ip("-n", ns, "addr", "add", f"198.18.0.{last}/24", "dev", "eth0")
            ip("-n", ns, "addr", "add", f"198.19.0.{last}/16", "dev", "eth1")
            for name in ("lo", "eth0", "eth1"):
                ip("-n", ns, "link", "set", name, "up")
        ip("-n", PEER, "link", "set", "eth2", "up")
        ipv6 = all(enable_ipv6(ns) for ns in (SERVER, PEER))
        if ipv6:
            for ns, last in ((SERVER, 1), (PEER, 2)):  # nodad: usable at once, as ours will be
                ip("-n", ns, "addr", "add", f"fd00:198:18::{last}/64", "dev", "eth0", "nodad")
                ip("-n", ns, "addr", "add", f"fd00:198:19::{last}/64", "dev", "eth1", "nodad")
        yield {
            "server_mac": mac_of(SERVER, "eth0"),
            "peer_mac": mac_of(PEER, "eth0"),
            "ipv6": ipv6,
        }
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def enable_ipv6(ns: str) -> bool:
    """IPv6 on in namespace `ns` (a host may boot with it disabled by default); False where
    this kernel has no IPv6 at all."""

    def enable() -> bool:
        if not os.path.isdir("/proc/sys/net/ipv6"):  # sysctls follow the opening thread's netns
            return False
        for scope in ("all", "default", "eth0", "eth1"):
            with open(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "w") as f:
                f.write("0")
        return True

    return in_netns(ns, enable)


@pytest.fixture
def lab6(lab) -> dict[str, str]:
    if not lab["ipv6"]:
        pytest.skip("this kernel has no IPv6")
    return lab


def mac_of(ns: str, interface: str) -> str:
    return json.loads(ip("-n", ns, "-j", "link", "show", interface))[0]["address"]


def addresses_of(ns: str, interface: str, family: str = "-4") -> dict[str, dict[str, Any]]:
    """The addresses of one family on an interface as `ip` sees them: local → its details."""
    links = json.loads(ip("-n", ns, "-j", family, "addr", "show", "dev", interface))
    return {a["local"]: a for link in links for a in link.get("addr_info", [])}


def in_netns(ns: str, fn: Callable[[], Any]) -> Any:
    """fn() in a thread that entered namespace `ns`; its result, or its exception raised here."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
            finally:
                os.close(fd)
            outcome["value"] = fn()
        except BaseException as e:  # handed to the test's thread
            outcome["error"] = e

    thread = threading.Thread(target=body, name=f"in {ns}", daemon=True)
    thread.start()
    thread.join(THREAD_DEADLINE)
    if thread.is_alive():
        raise TimeoutError(f"work in namespace {ns} did not end within {THREAD_DEADLINE}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def on_server(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return in_netns(SERVER, lambda: asyncio.run(scenario()))


def fip(address: str, **params: Any) -> FloatingIp:
    """A driver with its parameters as the configuration loader hands them over."""
    defaults = {"ip": address, "interface": None, "prefix_length": None, "force": False}
    return FloatingIp(
        ResourceContext(
            server="server1",
            group="web",
            resource="fip1",
            params={**defaults, **params},
            priority=1,
            state_dir="/nonexistent",
            config_dir="/nonexistent",
        )
    )


class Capture:
    """ARP frames (or with `ndp`, neighbour discovery) arriving at the peer's eth0, with the
    monotonic time each came in."""

    def __init__(self, protocol: int = arp.ETH_P_ARP, parse: Callable[[bytes], Any] = arp.parse):
        def opened() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(protocol))
            sock.bind(("eth0", protocol))
            return sock

        self.sock = in_netns(PEER, opened)  # a socket stays in the namespace it was made in
        self.parse = parse
        self.frames: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="capture", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        deadline = time.monotonic() + THREAD_DEADLINE
        while not self._stop.is_set() and time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], 0.02)
            if not ready:
                continue
            packet = self.parse(self.sock.recv(2048))
            if packet is not None:
                self.frames.append((time.monotonic(), packet))

    def close(self) -> list[tuple[float, Any]]:
        self._stop.set()
        self._thread.join(THREAD_DEADLINE)
        self.sock.close()
        return self.frames


@pytest.fixture
def capture(lab) -> Iterator[Capture]:
    c = Capture()
    yield c
    c.close()


@pytest.fixture
def capture6(lab6) -> Iterator[Capture]:
    c = Capture(ndp.ETH_P_IPV6, ndp.parse)
    yield c
    c.close()


def test_arp_socket_hears_the_peer_and_a_silent_probe_ends_on_time(lab):
    def peer_sends(frame: bytes) -> None:
        with arp.ArpSocket("eth0") as sock:
            sock.send(frame)

    asked = arp.build(arp.ARPOP_REQUEST, lab["peer_mac"], "198.18.0.2", arp.NO_MAC, "198.18.0.111")

    async def scenario() -> tuple[Any, Any, float]:
        loop = asyncio.get_running_loop()
        with arp.ArpSocket("eth0") as sock:
            in_netns(PEER, lambda: peer_sends(asked))
            heard = await sock.receive(loop.time() + 2.0)
        began = loop.time()
        silent = await arp.probe("eth0", "198.18.0.112", count=2, interval=0.1, wait=0.1)
        return heard, silent, loop.time() - began

    heard, silent, took = on_server(scenario)
    assert heard == arp.parse(asked)
    assert silent is None and 0.2 <= took < 0.35
    with pytest.raises(OSError, match="not Ethernet"):
        in_netns(SERVER, lambda: arp.ArpSocket("lo"))


def test_start_adds_the_address_and_stop_removes_it_both_idempotent(lab):
    driver = fip("198.18.0.100")

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {"before": await driver.active()}
        started = time.monotonic()
        await driver.start(Why())
        seen["first"] = time.monotonic() - started
        seen["added"] = addresses_of(SERVER, "eth0").get("198.18.0.100")
        seen["active"] = await driver.active()
        started = time.monotonic()
        await driver.start(Why())
        seen["again"] = time.monotonic() - started
        seen["details"] = driver.details()
        await driver.stop(Why())
        seen["stopped"] = await driver.active()
        await driver.stop(Why())
        await driver.close()
        return seen

    seen = on_server(scenario)
    assert seen["before"] is False
    assert seen["added"]["prefixlen"] == 24 and seen["added"]["broadcast"] == "198.18.0.255"
    assert seen["active"] is True
    assert seen["first"] < 0.6  # the probe of a free address ends on time
    assert seen["again"] < 0.2  # already there: no second probe
    assert seen["details"] == {"ip": "198.18.0.100", "interface": "eth0"}
    assert seen["stopped"] is False
    assert "198.18.0.100" not in addresses_of(SERVER, "eth0")
    assert "198.18.0.1" in addresses_of(SERVER, "eth0")  # the server's own address stays


def test_peer_sees_the_probe_then_gratuitous_arp_with_the_servers_mac(lab, capture):
    driver = fip("198.18.0.101")

    async def scenario() -> tuple[float, float]:
        began = time.monotonic()
        await driver.start(Why())
        returned = time.monotonic()
        await asyncio.sleep(0.4)  # the announcements still due
        await driver.stop(Why())
        return began, returned

    began, returned = on_server(scenario)
    frames = [(t, p) for t, p in capture.close() if p.sender_mac == lab["server_mac"]]
    probes = [(t, p) for t, p in frames if p.sender_ip == "0.0.0.0"]
    announced = [(t, p) for t, p in frames if p.sender_ip == "198.18.0.101"]
    assert [p.target_ip for _, p in probes] == ["198.18.0.101"] * 3
    assert all(p.op == arp.ARPOP_REQUEST and p.destination == BROADCAST for _, p in probes)
    assert max(t for t, _ in probes) < min(t for t, _ in announced)  # probe first, then claim
    assert [p.op for _, p in announced] == [arp.ARPOP_REQUEST, arp.ARPOP_REPLY] * 3
    for _, p in announced:
        assert p.target_ip == "198.18.0.101"
        assert p.source == lab["server_mac"] and p.destination == BROADCAST
    rounds = [t for t, p in announced if p.op == arp.ARPOP_REQUEST]
    assert began <= rounds[0] <= returned + 0.05  # the first goes out with the start
    assert rounds[1] > returned  # the rest do not hold the start up
    assert all(0.07 <= b - a <= 0.3 for a, b in zip(rounds, rounds[1:], strict=False))


def test_close_and_stop_cancel_the_announcements_still_due(lab, capture):
    async def scenario() -> None:
        first = fip("198.18.0.102")
        await first.start(Why())
        await first.close()  # the actor stops: the address stays, the announcing ends
        second = fip("198.18.0.103")
        await second.start(Why())
        await second.stop(Why())
        await asyncio.sleep(0.35)  # when the cancelled rounds would have gone out
        assert await first.active()
        await first.stop(Why())

    on_server(scenario)
    frames = capture.close()
    for address in ("198.18.0.102", "198.18.0.103"):
        requests = [p for _, p in frames if p.sender_ip == address and p.op == arp.ARPOP_REQUEST]
        assert len(requests) == 1, address


def test_address_in_use_is_refused_with_the_owners_mac_unless_forced(lab):
    ip("-n", PEER, "addr", "add", "198.18.0.50/24", "dev", "eth0")
    try:

        async def scenario() -> tuple[str, bool, bool]:
            refused = fip("198.18.0.50")
            with pytest.raises(ResourceError) as caught:
                await refused.start(Why())
            was_active = await refused.active()
            forced = fip("198.18.0.50", force=True)
            await forced.start(Why())
            now_active = await forced.active()
            await forced.stop(Why())
            await forced.close()
            return str(caught.value), was_active, now_active

        message, was_active, now_active = on_server(scenario)
    finally:
        ip("-n", PEER, "addr", "del", "198.18.0.50/24", "dev", "eth0")
    assert "198.18.0.50 is already in use by " + lab["peer_mac"] + " on eth0" in message
    assert "refusing to activate (duplicate address)" in message and "force" in message
    assert was_active is False
    assert now_active is True
    assert "198.18.0.50" not in addresses_of(SERVER, "eth0")


def test_interface_and_prefix_default_from_the_subnet(lab):
    async def scenario() -> dict[str, Any]:
        wide, host = fip("198.19.0.100"), fip("198.18.0.104", prefix_length=32)
        await wide.start(Why())
        await host.start(Why())
        seen = {
            "eth1": addresses_of(SERVER, "eth1").get("198.19.0.100"),
            "eth0": addresses_of(SERVER, "eth0").get("198.18.0.104"),
            "details": wide.details(),
        }
        for driver in (wide, host):
            await driver.stop(Why())
            await driver.close()
        return seen

    seen = on_server(scenario)
    assert seen["eth1"]["prefixlen"] == 16 and seen["eth1"]["broadcast"] == "198.19.255.255"
    assert seen["eth0"]["prefixlen"] == 32 and "broadcast" not in seen["eth0"]
    assert seen["details"] == {"ip": "198.19.0.100", "interface": "eth1"}


def test_an_address_in_no_subnet_needs_an_interface(lab):
    async def scenario() -> tuple[str, bool, dict[str, Any] | None]:
        lost = fip("198.18.200.5")
        with pytest.raises(ResourceError) as caught:
            await lost.start(Why())
        inactive = await lost.active()
        await lost.stop(Why())  # nothing of ours anywhere: fine
        placed = fip("198.18.200.5", interface="eth1")
        await placed.start(Why())
        added = addresses_of(SERVER, "eth1").get("198.18.200.5")
        await placed.stop(Why())
        return str(caught.value), inactive, added

    message, inactive, added = on_server(scenario)
    assert "198.18.200.5: no interface of this server has an address in its subnet" in message
    assert "set `interface`" in message
    assert inactive is False
    assert added is not None and added["prefixlen"] == 32  # no subnet there: a host address


def test_missing_or_down_interface(lab):
    async def scenario() -> tuple[str, str, bool]:
        missing = fip("198.18.0.105", interface="nosuch0")
        with pytest.raises(ResourceError) as no_such:
            await missing.start(Why())
        await missing.stop(Why())  # a missing interface holds no address: stopped
        down = fip("198.18.0.105", interface="eth2")
        with pytest.raises(ResourceError) as is_down:
            await down.start(Why())
        return str(no_such.value), str(is_down.value), await missing.active()

    no_such, is_down, active = on_server(scenario)
    assert "interface nosuch0 does not exist on this server" in no_such
    assert "interface eth2 for floating IP 198.18.0.105 is down" in is_down
    assert "ip link set eth2 up" in is_down
    assert active is False
    assert "198.18.0.105" not in addresses_of(SERVER, "eth2")


def test_an_address_on_another_interface_of_the_server_is_refused_and_left_alone(lab):
    ip("-n", SERVER, "addr", "add", "198.18.0.60/32", "dev", "eth1")
    try:

        async def scenario() -> tuple[str, bool]:
            driver = fip("198.18.0.60")  # belongs on eth0, by its subnet
            with pytest.raises(ResourceError) as caught:
                await driver.start(Why())
            await driver.stop(Why())
            return str(caught.value), await driver.active()

        message, active = on_server(scenario)
        assert "198.18.0.60 is already configured on eth1 of this server, not on eth0" in message
        assert active is False
        assert "198.18.0.60" in addresses_of(SERVER, "eth1")  # not ours to remove
    finally:
        ip("-n", SERVER, "addr", "del", "198.18.0.60/32", "dev", "eth1")


# -- IPv6 on real links ---------------------------------------------------------------------------


def test_ipv6_start_adds_a_usable_address_and_stop_removes_it(lab6):
    driver = fip(FIP6)

    def peer_sends(port: int) -> None:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"hello", (FIP6, port))

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        seen: dict[str, Any] = {"before": await driver.active()}
        started = time.monotonic()
        await driver.start(Why())
        seen["first"] = time.monotonic() - started
        seen["added"] = addresses_of(SERVER, "eth0", "-6").get(FIP6)
        # A tentative address can be neither bound nor reached: this one must serve at once.
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind((FIP6, 0))
            sock.setblocking(False)
            port = sock.getsockname()[1]
            in_netns(PEER, lambda: peer_sends(port))  # noqa: B023
            async with asyncio.timeout(2.0):
                seen["received"] = await loop.sock_recv(sock, 64)
        seen["active"] = await driver.active()
        started = time.monotonic()
        await driver.start(Why())
        seen["again"] = time.monotonic() - started
        seen["details"] = driver.details()
        await driver.stop(Why())
        seen["stopped"] = await driver.active()
        await driver.stop(Why())
        await driver.close()
        return seen

    seen = on_server(scenario)
    assert seen["before"] is False
    assert seen["added"]["prefixlen"] == 64
    assert not seen["added"].get("tentative") and seen["added"].get("nodad") is True
    assert seen["received"] == b"hello"
    assert seen["active"] is True
    assert seen["first"] < 0.6  # the probe of a free address ends on time
    assert seen["again"] < 0.2  # already there: no second probe
    assert seen["details"] == {"ip": FIP6, "interface": "eth0"}
    assert seen["stopped"] is False
    assert FIP6 not in addresses_of(SERVER, "eth0", "-6")
    assert "fd00:198:18::1" in addresses_of(SERVER, "eth0", "-6")  # the server's own stays


def neighbour_of(ns: str, address: str) -> dict[str, Any] | None:
    entries = json.loads(ip("-n", ns, "-j", "-6", "neigh", "show", "dev", "eth0"))
    return next((e for e in entries if e["dst"] == address), None)


def test_ipv6_peer_sees_the_probe_then_advertisements_and_takes_our_mac(lab6, capture6):
    address = "fd00:198:18::101"
    # The peer still has the previous owner's MAC cached, as after a failover.
    ip("-n", PEER, "neigh", "replace", address, "lladdr", OTHER, "dev", "eth0", "nud", "stale")
    try:
        driver = fip(address)

        async def scenario() -> tuple[float, float]:
            began = time.monotonic()
            await driver.start(Why())
            returned = time.monotonic()
            await asyncio.sleep(0.4)  # the advertisements still due
            await driver.stop(Why())
            return began, returned

        began, returned = on_server(scenario)
        cached = neighbour_of(PEER, address)
    finally:
        ip("-n", PEER, "neigh", "del", address, "dev", "eth0")
    frames = [(t, p) for t, p in capture6.close() if p.source == lab6["server_mac"]]
    probes = [(t, p) for t, p in frames if p.type == ndp.NEIGHBOR_SOLICITATION]
    announced = [(t, p) for t, p in frames if p.type == ndp.NEIGHBOR_ADVERTISEMENT]
    assert [p.target for _, p in probes] == [address] * 3
    for _, p in probes:
        assert p.source_ip == "::" and p.lladdr == ""
        assert p.destination_ip == "ff02::1:ff00:101" and p.destination == "33:33:ff:00:01:01"
    assert max(t for t, _ in probes) < min(t for t, _ in announced)  # probe first, then claim
    assert len(announced) == 3
    for _, p in announced:
        assert (p.source_ip, p.target, p.flags) == (address, address, ndp.OVERRIDE)
        assert p.lladdr == lab6["server_mac"]
        assert (p.destination_ip, p.destination) == ("ff02::1", "33:33:00:00:00:01")
    times = [t for t, _ in announced]
    assert began <= times[0] <= returned + 0.05  # the first goes out with the start
    assert times[1] > returned  # the rest do not hold the start up
    assert all(0.07 <= b - a <= 0.3 for a, b in zip(times, times[1:], strict=False))
    # The peer's kernel took the advertisement (checksum, hop limit, override) and our MAC.
    assert cached is not None and cached["lladdr"] == lab6["server_mac"]


def test_ipv6_close_and_stop_cancel_the_advertisements_still_due(lab6, capture6):
    async def scenario() -> None:
        first = fip("fd00:198:18::102")
        await first.start(Why())
        await first.close()  # the actor stops: the address stays, the announcing ends
        second = fip("fd00:198:18::103")
        await second.start(Why())
        await second.stop(Why())
        await asyncio.sleep(0.35)  # when the cancelled rounds would have gone out
        assert await first.active()
        await first.stop(Why())

    on_server(scenario)
    frames = capture6.close()
    for address in ("fd00:198:18::102", "fd00:198:18::103"):
        unsolicited = [
            p
            for _, p in frames
            if p.type == ndp.NEIGHBOR_ADVERTISEMENT
            and p.target == address
            and p.flags == ndp.OVERRIDE
        ]
        assert len(unsolicited) == 1, address


def test_ipv6_address_in_use_is_refused_with_the_owners_mac_unless_forced(lab6):
    taken = "fd00:198:18::50"
    ip("-n", PEER, "addr", "add", f"{taken}/64", "dev", "eth0", "nodad")
    try:

        async def scenario() -> tuple[str, float, bool, bool]:
            refused = fip(taken)
            began = time.monotonic()
            with pytest.raises(ResourceError) as caught:
                await refused.start(Why())
            took = time.monotonic() - began
            was_active = await refused.active()
            forced = fip(taken, force=True)
            await forced.start(Why())
            now_active = await forced.active()
            await forced.stop(Why())
            await forced.close()
            return str(caught.value), took, was_active, now_active

        message, took, was_active, now_active = on_server(scenario)
    finally:
        ip("-n", PEER, "addr", "del", f"{taken}/64", "dev", "eth0")
    assert f"{taken} is already in use by {lab6['peer_mac']} on eth0" in message
    assert "refusing to activate (duplicate address)" in message and "force" in message
    assert took < 0.3  # the owner's answer ends the probe, not its deadline
    assert was_active is False
    assert now_active is True
    assert taken not in addresses_of(SERVER, "eth0", "-6")


def test_ipv6_probe_sees_a_simultaneous_probe_and_joins_only_while_it_runs(lab6):
    address = "fd00:198:18::a:51"
    group = "33:33:ff:0a:00:51"

    def joined() -> bool:
        return group in ip("-n", SERVER, "maddr", "show", "dev", "eth0")

    def peer_probes() -> None:
        with ndp.NdpSocket("eth0") as sock:
            sock.send(ndp.probe_frame(sock.mac, address))

    async def scenario() -> tuple[bool, Any, bool, Any, float]:
        loop = asyncio.get_running_loop()
        before = joined()
        task = loop.create_task(ndp.probe("eth0", address))
        await asyncio.sleep(0.05)
        during = joined()  # a NIC that filters multicast must pass the other prober's frames
        in_netns(PEER, peer_probes)
        conflict = await asyncio.wait_for(task, 2.0)
        began = loop.time()
        silent = await ndp.probe("eth0", "fd00:198:18::a:52", count=2, interval=0.1, wait=0.1)
        return before, during, conflict, silent, loop.time() - began

    before, during, conflict, silent, took = on_server(scenario)
    assert (before, during) == (False, True)
    assert conflict == arp.Conflict(lab6["peer_mac"], probing=True)
    assert silent is None and 0.2 <= took < 0.35
    assert not joined()  # the membership ended with the socket
    with pytest.raises(OSError, match="not Ethernet"):
        in_netns(SERVER, lambda: ndp.NdpSocket("lo"))


def test_ipv6_interface_and_prefix_default_from_the_subnet(lab6):
    async def scenario() -> dict[str, Any]:
        wide = fip("fd00:198:19::100")
        host = fip("fd00:198:18::104", prefix_length=128)
        lost = fip("fd00:198:300::5", interface="eth1")  # in no subnet here: /64
        for driver in (wide, host, lost):
            await driver.start(Why())
        seen = {
            "eth1": addresses_of(SERVER, "eth1", "-6"),
            "eth0": addresses_of(SERVER, "eth0", "-6"),
            "details": wide.details(),
        }
        for driver in (wide, host, lost):
            await driver.stop(Why())
            await driver.close()
        seen["left"] = {**addresses_of(SERVER, "eth0", "-6"), **addresses_of(SERVER, "eth1", "-6")}
        return seen

    seen = on_server(scenario)
    assert seen["eth1"]["fd00:198:19::100"]["prefixlen"] == 64
    assert seen["eth1"]["fd00:198:300::5"]["prefixlen"] == 64
    assert seen["eth0"]["fd00:198:18::104"]["prefixlen"] == 128
    assert seen["details"] == {"ip": "fd00:198:19::100", "interface": "eth1"}
    assert not {"fd00:198:19::100", "fd00:198:18::104", "fd00:198:300::5"} & set(seen["left"])
