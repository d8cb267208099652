"""Helpers for the lab's cluster scenarios (tests/lab/test_cluster_membership.py and its
neighbours): their cluster configuration, a server's `haven status`, waiting for a state, a
server's stand-down record, the membership view off its bus. (Here rather than in tests/lab/,
whose name the `lab` package has.)"""

from __future__ import annotations

import json
import os
import subprocess
import time

from lab import Lab
from supervisor.node_actions import RECORD_FILE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTTPD = os.path.join(REPO, "config", "examples", "scripts", "web", "httpd")
FIP = "198.18.0.100"

PINGNP = """
[[np]]
name = "router"
type = "pingnp"
targets = ["198.18.0.1"]
interval = "500ms"
timeout = "300ms"
retry = 1
"""

MAJORITY = """
[[np]]
name = "majority"
type = "majority"
"""


def cluster_config(servers: int = 2, np: str = PINGNP) -> str:
    """node1..nodeN on a public network and an interconnect, a LAN heartbeat on each, the
    `fast`-ish 100 ms / 600 ms timing (a scenario takes seconds) and the NP resource `np`."""
    text = """
[cluster]
name = "lab cluster"
key_file = "cluster.key"

[timing]
heartbeat_interval = "100ms"
heartbeat_timeout = "600ms"

[[network]]
name = "public"
subnet = "198.18.0.0/24"

[[network]]
name = "interconnect"
subnet = "198.19.0.0/24"
"""
    for i in range(1, servers + 1):
        text += f"""
[[server]]
name = "node{i}"
addresses = {{ public = "198.18.0.{10 + i}", interconnect = "198.19.0.{10 + i}" }}
"""
    text += """
[node]
stop_timeout = "2s"

[[heartbeat]]
name = "lanhb1"
type = "lanhb"
network = "interconnect"

[[heartbeat]]
name = "lanhb2"
type = "lanhb"
network = "public"
"""
    return text + np


def status(lab: Lab, server: str) -> dict:
    result = lab.exec(server, ["haven", "status", "--json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def servers(st: dict) -> dict[str, str]:
    return {s["name"]: s["state"] for s in st["servers"]}


def settled(st: dict) -> bool:
    """Every server online and every heartbeat path to it normal."""
    return all(
        s["state"] == "online" and all(state == "normal" for state in s["heartbeats"].values())
        for s in st["servers"]
    )


def wait(lab: Lab, server: str, predicate, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = status(lab, server)
        if predicate(st):
            return st
        assert time.monotonic() < deadline, json.dumps(st, indent=1)[:3000]
        time.sleep(0.2)


def record_path(lab: Lab, server: str) -> str:
    """Where the server's node-action record goes (it exists once the server stood down)."""
    return os.path.join(lab.dir, server, "state", RECORD_FILE)


def stand_down_record(lab: Lab, server: str, failure: str, timeout: float = 20.0) -> str:
    """The path of the server's node-action record, once it exists (the server stood down)."""
    path = record_path(lab, server)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, failure
        time.sleep(0.2)
    return path


def member_view(lab: Lab, server: str) -> dict:
    """The next `member.view` event on the server's bus (republished every few seconds): the
    envelope, whose `body` is the view and whose `time` is the membership actor's clock."""
    tap = ["haven", "bus", "tap", "member.view", "--count", "1", "--timeout", "10", "--json"]
    result = lab.exec(server, tap)
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def group(
    name: str,
    servers: list[str],
    ip: str | None = FIP,
    http: bool = False,
    extra: str = "",
    app: str = "",
) -> str:
    text = f"""
[[group]]
name = "{name}"
servers = {json.dumps(servers)}
{extra}
"""
    if ip:
        text += f"""
[[group.resource]]
name = "{name} ip"
type = "fip"
ip = "{ip}"
"""
    if http:
        text += f"""
[[group.resource]]
name = "{name} httpd"
type = "exec"
start = "{HTTPD}/start.sh"
stop = "{HTTPD}/stop.sh"
start_sync = false
start_timeout = "10s"
stop_timeout = "10s"
"""
    if app:
        text += f"""
[[group.resource]]
name = "{name} app"
type = "exec"
start = "{app}"
stop = "{app}"
start_timeout = "10s"
stop_timeout = "10s"
"""
    return text


def groups_of(st: dict) -> dict[str, dict]:
    return {g["name"]: g for g in st.get("groups", [])}


def wait_online(lab: Lab, server: str, name: str, on: str, timeout: float = 40.0) -> dict:
    def there(st: dict) -> bool:
        g = groups_of(st).get(name) or {}
        return g.get("state") == "online" and g.get("server") == on

    try:
        return wait(lab, server, there, timeout)
    except AssertionError:
        st = status(lab, server)
        logs = ""
        for s in lab.status()["servers"]:
            with open(s["log"], errors="replace") as f:
                tail = [line for line in f if '"level": "info"' not in line][-25:]
            logs += f"\n--- {s['name']} log (not info):\n" + "".join(tail)
        raise AssertionError(
            f"group {name} not online on {on}: {json.dumps(st.get('groups'), indent=1)}\n"
            f"servers: {json.dumps(st.get('servers'))}{logs}"
        ) from None


def haven(lab: Lab, server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.exec(server, ["haven", *args])
