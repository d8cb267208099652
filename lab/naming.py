"""Names of everything the lab creates, so that several labs coexist and leftovers can be found.

- The lab id is 4 hex digits derived from the lab directory's real path: the same directory always
  gives the same id, so `haven lab down` finds a lab's leftovers by name even when its state file
  is gone. Every namespace of the lab is `hv<id>-<short>`: `hv<id>-sw` (the switch: one bridge per
  network), `hv<id>-rt` (the router) and `hv<id>-<server short name>`.
- A server's short name is its name when that is already short and safe (at most 8 of a-z and
  0-9, e.g. `node1`), else `s<N>` (N its position in the configuration, 1-based).
- Interfaces live inside the lab's namespaces only, so their names need not be unique machine-wide:
  in a server or the router, network number i (configuration order, from 0) is `eth<i>`; in the
  switch, its bridge is `br<i>` and the other end of a server's veth is `<short>-<i>` (the router's
  `rt-<i>`). All at most 15 characters.
"""

from __future__ import annotations

import hashlib
import os
import re

NAMESPACE_PREFIX = "hv"
SWITCH = "sw"
ROUTER = "rt"
ROUTER_NAME = "router"  # what `haven lab exec` and `partition` call the router
_RESERVED = {SWITCH, ROUTER, ROUTER_NAME}
_SAFE = re.compile(r"[a-z0-9]{1,8}")
_FALLBACK = re.compile(r"s[0-9]+")
IFNAMSIZ = 15


def lab_id(directory: str) -> str:
    return hashlib.sha256(os.path.realpath(directory).encode()).hexdigest()[:4]


def namespace_prefix(lab: str) -> str:
    return f"{NAMESPACE_PREFIX}{lab}-"


def namespace(lab: str, short: str) -> str:
    return namespace_prefix(lab) + short


def short_names(names: list[str]) -> dict[str, str]:
    """Server name -> short name, unique, safe for namespace, interface and file names."""
    shorts: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        if _SAFE.fullmatch(name) and name not in _RESERVED and not _FALLBACK.fullmatch(name):
            shorts[name] = name
            taken.add(name)
    for position, name in enumerate(names, start=1):
        if name in shorts:
            continue
        n = position
        while f"s{n}" in taken:
            n += 1
        shorts[name] = f"s{n}"
        taken.add(f"s{n}")
    return shorts


def server_interface(index: int) -> str:
    return f"eth{index}"


def bridge(index: int) -> str:
    return f"br{index}"


def switch_port(short: str, index: int) -> str:
    name = f"{short}-{index}"
    assert len(name) <= IFNAMSIZ, name
    return name


def router_port(index: int) -> str:
    return switch_port(ROUTER, index)
