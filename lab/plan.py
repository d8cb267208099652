"""From a cluster configuration to the lab that stands for it (pure: creates nothing).

The router sits on the public network (the network named "public", else the first one) and owns
that subnet's first host address (e.g. 198.18.0.1): the NP ping target and the clients' machine,
and the witness host when a `witness` NP resource's URL names that address.
"""

from __future__ import annotations

import ipaddress
import os

from config import Cluster
from config.witness import host_port, parse_url
from lab import naming
from lab.errors import LabError
from lab.state import LabState, NetworkState, RouterState, ServerState

PUBLIC = "public"


def public_network(cluster: Cluster) -> str:
    names = [n.name for n in cluster.networks]
    if not names:
        raise LabError("the configuration has no [[network]]: the lab needs at least one")
    return PUBLIC if PUBLIC in names else names[0]


def router_address(subnet: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    net = ipaddress.ip_network(subnet)
    first = next(iter(net.hosts()), None)
    if first is None:
        raise LabError(f"subnet {subnet} has no host address for the lab router")
    return ipaddress.ip_interface(f"{first}/{net.prefixlen}")


def witness_listen(
    cluster: Cluster, router_ip: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> str | None:
    """Where the router serves `haven witness serve` ("ADDR:PORT"): when a `witness` NP resource's
    URL points at the router's address. None when no witness is the router's."""
    ports = set()
    for np in cluster.np:
        if np.type != "witness":
            continue
        host, port, _ = parse_url(np.params["url"])
        try:
            if ipaddress.ip_address(host) == router_ip:
                ports.add(port)
        except ValueError:
            continue  # a host name: a witness elsewhere, not the lab's
    if len(ports) > 1:
        raise LabError(
            f"witness NP resources name the router on several ports ({sorted(ports)}); "
            "the lab runs one witness: give them the same URL"
        )
    return host_port(str(router_ip), ports.pop()) if ports else None


def make_plan(cluster: Cluster, directory: str, config_path: str) -> LabState:
    directory = os.path.abspath(directory)
    lab = naming.lab_id(directory)
    networks = [
        NetworkState(n.name, n.subnet, i, naming.bridge(i)) for i, n in enumerate(cluster.networks)
    ]
    by_name = {n.name: n for n in networks}
    public = public_network(cluster)
    router_if = router_address(by_name[public].subnet)
    shorts = naming.short_names([s.name for s in cluster.servers])
    servers = []
    for s in cluster.servers:
        addresses, interfaces, ports = {}, {}, {}
        for net_name, address in s.addresses.items():
            net = by_name.get(net_name)
            if net is None:
                raise LabError(f"server {s.name!r} has an address on unknown network {net_name!r}")
            prefix = ipaddress.ip_network(net.subnet).prefixlen
            if ipaddress.ip_address(address) == router_if.ip and net_name == public:
                raise LabError(
                    f"server {s.name!r} uses {address}, which the lab's router owns (the first "
                    f"host address of network {public!r}); give the server another address"
                )
            addresses[net_name] = f"{address}/{prefix}"
            interfaces[net_name] = naming.server_interface(net.index)
            ports[net_name] = naming.switch_port(shorts[s.name], net.index)
        server_dir = os.path.join(directory, shorts[s.name])
        servers.append(
            ServerState(
                name=s.name,
                short=shorts[s.name],
                namespace=naming.namespace(lab, shorts[s.name]),
                dir=server_dir,
                state_dir=os.path.join(server_dir, "state"),
                log=os.path.join(server_dir, "node.log"),
                addresses=addresses,
                interfaces=interfaces,
                ports=ports,
            )
        )
    index = by_name[public].index
    listen = witness_listen(cluster, router_if.ip)
    router = RouterState(
        namespace=naming.namespace(lab, naming.ROUTER),
        network=public,
        address=str(router_if),
        interface=naming.server_interface(index),
        port=naming.router_port(index),
        witness={"listen": listen} if listen else None,
    )
    return LabState(
        id=lab,
        dir=directory,
        config=os.path.abspath(config_path),
        config_copy=os.path.join(directory, "cluster.toml"),
        cluster=cluster.name,
        switch=naming.namespace(lab, naming.SWITCH),
        router=router,
        networks=networks,
        servers=servers,
    )
