"""Names known so far while validating, and the checks of references to them.

Sections are read in an order where every name is known before it is referenced: networks and
servers first, then groups and their resources, then monitors (whose names are collected before
any monitor is read, because `mtw` names other monitors). Each check reports an unknown name at
the place of the reference, with the closest known name as a hint.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from config.issues import Report, Where
from config.reader import Reader, quoted, suggest


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    type: str | None  # None when the type itself was refused
    where: Where


@dataclass(frozen=True)
class PortClaim:
    where: Where
    protocol: str
    port: int
    scope: str | None  # a network name, or None for every address


@dataclass
class Known:
    report: Report
    servers: list[str] = field(default_factory=list)
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)  # server -> network -> ip
    networks: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network | None] = field(
        default_factory=dict
    )
    groups: dict[str, Where] = field(default_factory=dict)
    resources: dict[str, ResourceInfo] = field(default_factory=dict)
    monitors: list[str] = field(default_factory=list)
    ports: list[PortClaim] = field(default_factory=list)

    def _unknown(self, where: Where, what: str, name: object, names: list[str]) -> bool:
        hint = suggest(name, names) or f" (known {what}s: {quoted(names)})"
        self.report.error(where, f'unknown {what} "{name}"{hint}')
        return False

    def server(self, where: Where, name: str) -> bool:
        return name in self.servers or self._unknown(where, "server", name, self.servers)

    def network(self, where: Where, name: str) -> bool:
        return name in self.networks or self._unknown(where, "network", name, list(self.networks))

    def group(self, where: Where, name: str) -> bool:
        return name in self.groups or self._unknown(where, "group", name, list(self.groups))

    def resource(self, where: Where, name: str) -> ResourceInfo | None:
        info = self.resources.get(name)
        if info is None:
            self._unknown(where, "resource", name, list(self.resources))
        return info

    def monitor(self, where: Where, name: str) -> bool:
        return name in self.monitors or self._unknown(where, "monitor", name, self.monitors)

    def server_list(self, where: Where, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """Check a list of server names (e.g. a failover policy); None if any is unknown."""
        if names is None:
            return None
        ok = all([self.server(where.index(i), name) for i, name in enumerate(names)])
        if ok and not names:
            self.report.error(where, "must name at least one server")
            return None
        return names if ok else None

    def claim_port(self, where: Where, protocol: str, port: int, scope: str | None) -> None:
        """Record that something binds `port`; `check_ports` refuses overlaps."""
        self.ports.append(PortClaim(where, protocol, port, scope))

    def check_ports(self) -> None:
        for index, claim in enumerate(self.ports):
            for earlier in self.ports[:index]:
                same_scope = claim.scope is None or earlier.scope is None
                if (
                    claim.protocol == earlier.protocol
                    and claim.port == earlier.port
                    and (same_scope or claim.scope == earlier.scope)
                ):
                    self.report.error(
                        claim.where,
                        f"{claim.protocol} port {claim.port} is already used by "
                        f"{earlier.where.place}",
                    )
                    break


def read_servers(reader: Reader, known: Known, key: str = "servers") -> tuple[str, ...]:
    """A list of server names under `key`; all servers in priority order when absent."""
    if not reader.has(key):
        reader.raw(key)
        return tuple(known.servers)
    names = known.server_list(reader.at(key), reader.strings(key))
    return tuple(known.servers) if names is None else names
