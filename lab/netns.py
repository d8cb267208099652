"""Network namespaces and the links between them, with `ip` (iproute2).

Everything happens inside the lab's own namespaces: bridges live in the lab's switch namespace,
and a veth is created from inside the switch with its other end placed straight into the server's
namespace, so the root namespace's interfaces, routes and firewall are never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess

from lab.commands import run
from lab.errors import LabError

NETNS_DIR = "/run/netns"


def list_namespaces(prefix: str = "") -> list[str]:
    """Named network namespaces whose name starts with `prefix`."""
    out = run(["ip", "netns", "list"]).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(prefix))


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def add_namespace(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def namespace_pids(name: str) -> list[int]:
    """Processes whose network namespace is `name` (none if it does not exist)."""
    if not exists(name):
        return []
    proc = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def kill_namespace_processes(name: str) -> int:
    """SIGKILL every process in namespace `name`; how many there were."""
    pids = namespace_pids(name)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def delete_namespace(name: str) -> bool:
    """Remove namespace `name`; False if there was none. Its interfaces go with it (a veth dies
    with either end), its processes must be gone first or they keep it alive unnamed."""
    if not exists(name):
        return False
    proc = run(["ip", "netns", "delete", name], check=False)
    if proc.returncode != 0 and exists(name):
        raise LabError(f"could not delete network namespace {name}: {proc.stderr.strip()}")
    return True


def add_bridge(switch: str, bridge: str) -> None:
    run(["ip", "-n", switch, "link", "add", bridge, "type", "bridge", "stp_state", "0"])
    run(["ip", "-n", switch, "link", "set", bridge, "up"])


def connect(
    switch: str, bridge: str, port: str, namespace: str, interface: str, address: str
) -> None:
    """A veth from `namespace` (`interface`, with `address` = "ip/prefix") to `bridge`'s `port`."""
    run(
        [
            "ip", "-n", switch, "link", "add", port, "type", "veth",
            "peer", "name", interface, "netns", namespace,
        ]
    )  # fmt: skip
    run(["ip", "-n", switch, "link", "set", port, "master", bridge, "up"])
    nodad = ["nodad"] if ":" in address else []  # IPv6: usable at once, no duplicate detection
    run(["ip", "-n", namespace, "addr", "add", address, "dev", interface, *nodad])
    run(["ip", "-n", namespace, "link", "set", interface, "up"])


def power_off(namespace: str, interfaces: list[str]) -> None:
    """The machine is dead: its NICs answer nothing any more (no ARP for an address it held)."""
    for interface in interfaces:
        subprocess.run(
            ["ip", "-n", namespace, "link", "set", interface, "down"],
            capture_output=True,
            timeout=10,
        )


def boot(namespace: str, interface: str, address: str) -> None:
    """The machine boots: its NIC comes up with only its configured address (whatever a
    previous run added, such as a floating IP, died with it)."""
    run(["ip", "-n", namespace, "addr", "flush", "dev", interface])
    nodad = ["nodad"] if ":" in address else []
    run(["ip", "-n", namespace, "addr", "add", address, "dev", interface, *nodad])
    run(["ip", "-n", namespace, "link", "set", interface, "up"])
