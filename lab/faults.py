"""Network faults of the lab: partitions and random loss, as nftables rules of the bridge family in
the lab's switch namespace (where every server's veth meets its network's bridge), so a fault is
a switch that drops frames: the servers' own interfaces, addresses and routes stay as they are,
and the root namespace is never touched.

A fault is a plain dict, kept in the lab state:
- `{"kind": "partition", "members": [names], "network": name | None}`: drop every frame between a
  port of a member and a port of anyone else (the other servers and the router) on that network,
  or on every network when None. "router" may be a member: `partition node1 router` keeps node1
  and the router together. With `"against": [names]`, only frames between the members and those
  are dropped (`partition node1 --against node2`: node1 and node2 lose each other, both keep
  the router). With `"one_way": true`, only frames from the members to the others
  are dropped (the members still hear everyone): a one-way loss.
- `{"kind": "loss", "server": name, "network": name, "percent": p}`: drop each frame from or to the
  server's port on that network with probability p/100 (`numgen random`).

The whole rule set is written again on every change, in one nft transaction.
"""

from __future__ import annotations

from typing import Any

from lab import naming
from lab.commands import have, in_netns, run
from lab.errors import LabError
from lab.state import LabState

TABLE = "haven_lab"


def ports_on(state: LabState, network: str) -> dict[str, str]:
    """Who has a port on `network` (server names and "router") -> switch port."""
    ports = {s.name: s.ports[network] for s in state.servers if network in s.ports}
    if state.router.network == network:
        ports[naming.ROUTER_NAME] = state.router.port
    return ports


def _set(ports: list[str]) -> str:
    return "{ " + ", ".join(f'"{p}"' for p in sorted(ports)) + " }"


def rules(state: LabState, fault: dict[str, Any]) -> list[str]:
    if fault["kind"] == "partition":
        networks = [fault["network"]] if fault["network"] else [n.name for n in state.networks]
        out = []
        for net in networks:
            ports = ports_on(state, net)
            inside = [p for who, p in ports.items() if who in fault["members"]]
            against = fault.get("against")
            outside = [
                p
                for who, p in ports.items()
                if who not in fault["members"] and (not against or who in against)
            ]
            if inside and outside:
                out.append(f"iifname {_set(inside)} oifname {_set(outside)} drop")
                if not fault.get("one_way"):
                    out.append(f"iifname {_set(outside)} oifname {_set(inside)} drop")
        return out
    if fault["kind"] == "loss":
        port = ports_on(state, fault["network"]).get(fault["server"])
        if port is None:
            return []
        below = round(fault["percent"] * 100)  # in 1/10000: 0.01 % steps
        chance = "" if below >= 10000 else f"numgen random mod 10000 < {below} "
        return [f'iifname "{port}" {chance}drop', f'oifname "{port}" {chance}drop']
    raise ValueError(f"unknown fault kind {fault['kind']!r}")


def describe(fault: dict[str, Any]) -> str:
    where = f"on {fault['network']}" if fault.get("network") else "on every network"
    if fault["kind"] == "partition":
        arrow = "->" if fault.get("one_way") else "|"
        others = " + ".join(fault["against"]) if fault.get("against") else "the others"
        return f"partition {' + '.join(fault['members'])} {arrow} {others} {where}"
    return f"loss {fault['percent']:g}% of {fault['server']}'s frames {where}"


def ruleset(state: LabState, faults: list[dict[str, Any]]) -> str:
    """The nft script that makes the switch drop exactly what `faults` say."""
    lines = [f"add table bridge {TABLE}", f"delete table bridge {TABLE}"]
    if faults:
        lines.append(f"table bridge {TABLE} {{")
        lines.append("  chain faults {")
        lines.append("    type filter hook forward priority 0; policy accept;")
        for fault in faults:
            for rule in rules(state, fault):
                lines.append(f"    {rule}")
        lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def apply(state: LabState, faults: list[dict[str, Any]]) -> None:
    if not have("nft"):
        if not faults:
            return  # nothing to remove: without nft there never was a rule
        raise LabError("nft is not installed (Debian package nftables): lab faults need it")
    run(in_netns(state.switch, ["nft", "-f", "-"]), input=ruleset(state, faults))
