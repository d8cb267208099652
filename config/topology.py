"""The cluster's frame: `[cluster]`, `[timing]`, `[ports]`, `[[network]]` and `[[server]]`.

Servers are listed in priority order: the first is the master server (priority 0). Each server has
one address per network it is on; an address must lie in its network's subnet and be unique on it.
"""

from __future__ import annotations

import ipaddress

from config import defaults as d
from config.model import Network, Ports, Server
from config.reader import Reader, unique_names
from config.references import Known


def read_cluster(top: Reader) -> tuple[str | None, str | None]:
    """The cluster's name and its key file (`key_file`, needed once there are heartbeats)."""
    if not top.has("cluster"):
        top.raw("cluster")
        top.error("cluster", "the [cluster] section with the cluster's name is missing")
        return None, None
    section = top.sub("cluster")
    if section is None:
        return None, None
    name = section.name()
    key_file = section.string("key_file")
    if key_file == "":
        section.error("key_file", "an empty path; give the cluster key's file")
        key_file = None
    section.finish()
    return name, key_file


def read_ports(top: Reader, known: Known) -> Ports:
    r = top.optional("ports")
    values = {}
    for key, (protocol, default) in d.PORTS.items():
        values[key] = r.integer(key, default, d.PORT_RANGE)
        known.claim_port(r.at(key), protocol, values[key], None)
    r.finish()
    return Ports(**values)


def read_networks(top: Reader, known: Known) -> tuple[Network, ...]:
    networks = []
    for r, name in unique_names(top.elements("network", "network"), "network"):
        subnet = _read_subnet(r, known)
        r.finish()
        if name is not None:
            known.networks[name] = subnet
            networks.append(Network(name, str(subnet) if subnet else ""))
    return tuple(networks)


def _read_subnet(r: Reader, known: Known):
    text = r.string("subnet", required=True)
    if text is None:
        return None
    try:
        subnet = ipaddress.ip_network(text)
    except ValueError:
        try:
            fixed = ipaddress.ip_network(text, strict=False)
        except ValueError:
            r.error("subnet", f'"{text}" is not a subnet; write e.g. "198.18.0.0/24"')
        else:
            r.error("subnet", f'"{text}" has host bits set; did you mean "{fixed}"?')
        return None
    for other, other_subnet in known.networks.items():
        same_version = other_subnet is not None and subnet.version == other_subnet.version
        if same_version and subnet.overlaps(other_subnet):
            r.error("subnet", f'{subnet} overlaps network "{other}" ({other_subnet})')
            return None
    return subnet


def read_servers(top: Reader, known: Known) -> tuple[Server, ...]:
    readers = top.elements("server", "server")
    if not readers and not top.has("server"):
        top.error("server", "at least one [[server]] is required")
    if len(readers) > d.MAX_SERVERS:
        top.error("server", f"at most {d.MAX_SERVERS} servers, got {len(readers)}")
    owners: dict[tuple[str, str], str] = {}  # (network, address) -> server
    servers = []
    for r, name in unique_names(readers, "server"):
        addresses = _read_addresses(r, name, known, owners)
        r.finish()
        if name is not None:
            known.servers.append(name)
            known.addresses[name] = addresses
            servers.append(Server(name, r.where.path[-1], addresses))
    return tuple(servers)


def _read_addresses(r: Reader, server: str | None, known: Known, owners: dict) -> dict[str, str]:
    table = r.sub("addresses", required=True)
    if table is None:
        return {}
    if not table.written_keys():
        r.error(
            "addresses",
            'a server needs an address on at least one network, e.g. public = "198.18.0.11"',
        )
    addresses = {}
    for network in table.written_keys():
        if not known.network(table.at(network), network):
            continue
        address = table.ip(network, required=True)
        if address is None:
            continue
        subnet = known.networks[network]
        if subnet is not None and ipaddress.ip_address(address) not in subnet:
            table.error(network, f'{address} is not in network "{network}" ({subnet})')
            continue
        owner = owners.setdefault((network, address), server or "")
        if owner != (server or ""):
            table.error(network, f'{address} is already the address of server "{owner}"')
            continue
        addresses[network] = address
    table.skip()
    return addresses
