"""The floating IP resource (`fip`): an address that follows the group to its active server.

Clients reach the group by this address, so it must be on exactly one server at a time. Hence
start checks before it acts: unless `force`, it probes (ARP for IPv4, duplicate address detection
with neighbour solicitations for IPv6) and refuses when anyone answers (the previous owner may
not really be gone, or someone configured the address by hand; the original's "IP address
already exists on the network"). After adding the address it announces the new owner at once
(gratuitous ARP, or unsolicited neighbour advertisements with the override flag), because
clients and switches otherwise keep the old MAC for many seconds; the remaining announcements
run in a task that stop and close cancel. An IPv6 address is added with IFA_F_NODAD: our probe
has done the kernel's duplicate address detection already, and the kernel's would keep the
address "tentative" (unusable) for a second or more after a failover.

Netlink (pyroute2's AsyncIPRoute, opened per operation in the process's own network namespace)
rather than `ip addr add`: no process to fork at failover time, and errors come back as errno.

The interface is the configured one or, when not configured, the one holding an address in the
floating IP's subnet (the most specific subnet wins; two interfaces in the same subnet are a
configuration error, not a guess). The prefix is the configured one, else that subnet's prefix,
else for IPv4 a host address (/32) and for IPv6 /64, the prefix length of nearly every IPv6
link (a /128 would leave the address without an on-link route to its neighbours).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from actors.resources import arp, ndp
from actors.resources.base import Driver, ResourceContext, ResourceError, Why

__all__ = ["FloatingIp", "Link", "Address", "Place", "locate"]

NETLINK_TIMEOUT = 5.0  # the kernel answers in microseconds: this only bounds a wedged system
IFF_UP = 0x1
IFF_NOARP = 0x80  # for IPv6 too: the kernel does no neighbour discovery on such a link
ARPHRD_ETHER = 1
IFA_F_NODAD = 0x02
IPV6_DEFAULT_PREFIX = 64

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class Link(NamedTuple):
    index: int
    name: str
    up: bool  # administratively up
    arp: bool  # Ethernet that speaks ARP (and neighbour discovery): probe and announce there


class Address(NamedTuple):
    index: int  # of the link holding it
    address: IpInterface


class Place(NamedTuple):
    """Where the floating IP goes on this server, and what is there now."""

    link: Link
    prefix: int
    present: Address | None  # the floating IP on this link now
    elsewhere: str | None  # another interface of this server holding the floating IP


def locate(
    ip: IpAddress,
    interface: str | None,
    prefix_length: int | None,
    links: Iterable[Link],
    addresses: Iterable[Address],
) -> Place:
    """Pick the interface and prefix for `ip` from this server's links and addresses."""
    links = list(links)
    by_index = {link.index: link for link in links}
    addresses = [a for a in addresses if a.index in by_index and a.address.version == ip.version]
    holders = [a for a in addresses if a.address.ip == ip]
    subnet = [a for a in addresses if a.address.ip != ip and ip in a.address.network]
    if interface:
        link = next((link for link in links if link.name == interface), None)
        if link is None:
            raise ResourceError(
                f"floating IP {ip}: interface {interface} does not exist on this server: "
                "correct `interface` for this server or create the interface"
            )
    else:
        link = by_index[_subnet_interface(ip, subnet, holders, by_index)]
    own = [a.address.network.prefixlen for a in subnet if a.index == link.index]
    default = ip.max_prefixlen if ip.version == 4 else IPV6_DEFAULT_PREFIX
    prefix = prefix_length if prefix_length is not None else max(own, default=default)
    if not 0 <= prefix <= ip.max_prefixlen:
        raise ResourceError(
            f"floating IP {ip}: prefix_length {prefix} is too long for an IPv{ip.version} "
            f"address (at most {ip.max_prefixlen})"
        )
    present = next((h for h in holders if h.index == link.index), None)
    elsewhere = next((by_index[h.index].name for h in holders if h.index != link.index), None)
    return Place(link, prefix, present, elsewhere)


def _subnet_interface(
    ip: IpAddress, subnet: list[Address], holders: list[Address], by_index: dict[int, Link]
) -> int:
    """The link whose own address's subnet holds `ip` most specifically; with none, the link that
    already holds the floating IP itself (added as a host address, say)."""
    if not subnet:
        if holders:
            return holders[0].index
        raise ResourceError(
            f"floating IP {ip}: no interface of this server has an address in its subnet: "
            "set `interface` (and `prefix_length`) for this server"
        )
    best = max(a.address.network.prefixlen for a in subnet)
    tied = {a.index for a in subnet if a.address.network.prefixlen == best}
    held = tied & {h.index for h in holders}  # it is already on one of them: that one
    choice = held or tied
    if len(choice) > 1:
        names = ", ".join(sorted(by_index[i].name for i in choice))
        raise ResourceError(
            f"floating IP {ip} is in the subnet of several interfaces ({names}): "
            "set `interface` for this server"
        )
    return choice.pop()


def _broadcast(ip: IpAddress, prefix: int) -> str | None:
    """The subnet's broadcast address, which `ip addr add ... brd +` would set (none for /31,
    /32 and IPv6)."""
    if ip.version != 4 or prefix > 30:
        return None
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).broadcast_address)


class FloatingIp(Driver):
    """One floating IP on this server: see the module docstring."""

    def __init__(self, ctx: ResourceContext) -> None:
        super().__init__(ctx)
        self.ip: IpAddress = ipaddress.ip_address(self.params["ip"])
        self.interface: str | None = self.params.get("interface") or None  # last known
        self._announcing: asyncio.Task[int] | None = None
        self._ndp = self.ip.version == 6
        self._announcement = "unsolicited NA" if self._ndp else "gratuitous ARP"

    # -- the contract -------------------------------------------------------------------------

    async def start(self, why: Why) -> None:
        place = await self._place()
        name = place.link.name
        self.interface = name
        if place.present is not None:
            self._log("info", "floating IP already active", interface=name)
            return
        if place.elsewhere is not None:
            raise ResourceError(
                f"floating IP {self.ip} is already configured on {place.elsewhere} of this "
                f"server, not on {name}: remove it there (ip addr del {self.ip} dev "
                f"{place.elsewhere}) or set `interface`"
            )
        if not place.link.up:
            raise ResourceError(
                f"interface {name} for floating IP {self.ip} is down: bring it up "
                f"(ip link set {name} up) and start the group again"
            )
        if not place.link.arp:
            self._log("warning", "no ARP/NDP here: neither probed nor announced", interface=name)
        elif self.params.get("force"):
            self._log("info", "force: activating without probing the network", interface=name)
        else:
            await self._probe(name)
        await self._add(place)
        self._log("info", "floating IP added", interface=name, prefix=place.prefix)
        if place.link.arp:
            await self._stop_announcing()  # a previous start's, if its address was taken away
            self._announce(name)

    async def stop(self, why: Why) -> None:
        await self._stop_announcing()
        links, addresses = await self._read()
        if not any(a.address.ip == self.ip for a in addresses):
            return
        try:
            place = locate(self.ip, self._configured, self._prefix_length, links, addresses)
        except ResourceError:
            return  # its interface is gone or it is not ours to remove: nothing of ours is left
        if place.present is None:
            self._log("info", "floating IP left alone on another interface", on=place.elsewhere)
            return
        await self._remove(place.link, place.present)
        self._log("info", "floating IP removed", interface=place.link.name)

    async def active(self) -> bool:
        links, addresses = await self._read()
        try:
            place = locate(self.ip, self._configured, self._prefix_length, links, addresses)
        except ResourceError:
            return False
        return place.present is not None

    def details(self) -> dict[str, Any]:
        return {"ip": str(self.ip), "interface": self.interface}

    async def close(self) -> None:
        await self._stop_announcing()

    # -- steps --------------------------------------------------------------------------------

    @property
    def _configured(self) -> str | None:
        return self.params.get("interface") or None

    @property
    def _prefix_length(self) -> int | None:
        return self.params.get("prefix_length")

    async def _place(self) -> Place:
        links, addresses = await self._read()
        return locate(self.ip, self._configured, self._prefix_length, links, addresses)

    async def _probe(self, interface: str) -> None:
        try:
            conflict = await (ndp if self._ndp else arp).probe(interface, str(self.ip))
        except OSError as e:
            raise ResourceError(
                f"cannot probe for floating IP {self.ip} on {interface}: {e.strerror or e}"
            ) from e
        if conflict is None:
            return
        how = "being claimed right now" if conflict.probing else "already in use"
        raise ResourceError(
            f"floating IP {self.ip} is {how} by {conflict.mac} on {interface}: refusing to "
            "activate (duplicate address); free it on that host, or set force = true to "
            "activate anyway"
        )

    def _announce(self, interface: str) -> None:
        try:
            task = (ndp if self._ndp else arp).start_announcing(interface, str(self.ip))
        except OSError as e:
            self._log("warning", f"{self._announcement} failed", interface=interface, error=str(e))
            return
        task.add_done_callback(self._announced)
        self._announcing = task

    def _announced(self, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            return
        if (e := task.exception()) is not None:
            self._log("warning", f"{self._announcement} failed", error=str(e))

    async def _stop_announcing(self) -> None:
        task, self._announcing = self._announcing, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])  # never raises the task's outcome, only our own cancel

    # -- netlink ------------------------------------------------------------------------------

    async def _read(self) -> tuple[list[Link], list[Address]]:
        async def dump() -> tuple[list[Link], list[Address]]:
            async with AsyncIPRoute() as ipr:
                links = [_link(msg) async for msg in await ipr.link("dump")]
                addresses = [a async for msg in await ipr.addr("dump") if (a := _address(msg))]
            return links, addresses

        return await self._netlink("reading this server's interfaces", dump())

    async def _add(self, place: Place) -> None:
        async def add() -> None:
            async with AsyncIPRoute() as ipr:
                kw: dict[str, Any] = {}
                if (broadcast := _broadcast(self.ip, place.prefix)) is not None:
                    kw["broadcast"] = broadcast
                if self._ndp:
                    kw["flags"] = IFA_F_NODAD  # sent as IFA_FLAGS by pyroute2
                await ipr.addr(
                    "add",
                    index=place.link.index,
                    address=str(self.ip),
                    prefixlen=place.prefix,
                    **kw,
                )

        try:
            await self._netlink(f"adding {self.ip}/{place.prefix} to {place.link.name}", add())
        except NetlinkRefused as e:
            if e.errno != errno.EEXIST:  # added meanwhile by another start: that is our goal
                raise

    async def _remove(self, link: Link, present: Address) -> None:
        async def remove() -> None:
            async with AsyncIPRoute() as ipr:
                await ipr.addr(
                    "del",
                    index=link.index,
                    address=str(present.address.ip),
                    prefixlen=present.address.network.prefixlen,
                )

        try:
            await self._netlink(f"removing {self.ip} from {link.name}", remove())
        except NetlinkRefused as e:
            if e.errno not in (errno.EADDRNOTAVAIL, errno.ENODEV):  # already gone: stopped
                raise

    async def _netlink(self, what: str, work: Any) -> Any:
        try:
            async with asyncio.timeout(NETLINK_TIMEOUT):
                return await work
        except TimeoutError:
            raise ResourceError(
                f"floating IP {self.ip}: {what} got no answer from the kernel within "
                f"{NETLINK_TIMEOUT:.0f}s"
            ) from None
        except NetlinkError as e:
            message = e.args[1] if len(e.args) > 1 else str(e)
            raise NetlinkRefused(e.code, f"floating IP {self.ip}: {what} failed: {message}") from e

    def _log(self, level: str, event: str, **kw: Any) -> None:
        if self.ctx.log is not None:
            getattr(self.ctx.log, level)(event, ip=str(self.ip), **kw)


class NetlinkRefused(ResourceError):
    """The kernel refused a change; its errno lets a caller accept some refusals as success."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.errno = code


def _link(msg: Any) -> Link:
    flags = msg["flags"]
    return Link(
        index=msg["index"],
        name=msg.get("ifname") or "",
        up=bool(flags & IFF_UP),
        arp=msg["ifi_type"] == ARPHRD_ETHER and not flags & IFF_NOARP,
    )


def _address(msg: Any) -> Address | None:
    local = msg.get("local") or msg.get("address")  # IFA_LOCAL is ours on point-to-point links
    if not local:
        return None
    return Address(msg["index"], ipaddress.ip_interface(f"{local}/{msg['prefixlen']}"))
