"""Membership and NP resolution across real networks: the lab's namespaces, bridges and nftables
faults (issue #3's scenarios). Timing is the `fast`-ish 100 ms / 600 ms so a test takes seconds."""

from __future__ import annotations

import json
import os
import time

import pytest

from lab import Lab
from supervisor.node_actions import RECORD_FILE

CONFIG = """
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

[[server]]
name = "node1"
addresses = { public = "198.18.0.11", interconnect = "198.19.0.11" }

[[server]]
name = "node2"
addresses = { public = "198.18.0.12", interconnect = "198.19.0.12" }

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

[[np]]
name = "router"
type = "pingnp"
targets = ["198.18.0.1"]
interval = "500ms"
timeout = "300ms"
retry = 1
"""


def status(lab: Lab, server: str) -> dict:
    result = lab.exec(server, ["haven", "status", "--json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def servers(st: dict) -> dict[str, str]:
    return {s["name"]: s["state"] for s in st["servers"]}


def wait(lab: Lab, server: str, predicate, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = status(lab, server)
        if predicate(st):
            return st
        assert time.monotonic() < deadline, json.dumps(st, indent=1)[:3000]
        time.sleep(0.2)


def stand_down_record(lab: Lab, server: str, failure: str, timeout: float = 20.0) -> str:
    """The path of the server's node-action record, once it exists (the server stood down)."""
    path = os.path.join(lab.dir, server, "state", RECORD_FILE)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, failure
        time.sleep(0.2)
    return path


def settled(st: dict) -> bool:
    return servers(st) == {"node1": "online", "node2": "online"} and all(
        state == "normal" for s in st["servers"] for state in s["heartbeats"].values()
    )


@pytest.fixture
def lab(make_lab, needs_nft) -> Lab:
    lab = make_lab(text=CONFIG)
    for server in ("node1", "node2"):
        wait(lab, server, settled)
    return lab


def test_both_servers_see_each_other_on_every_path(lab: Lab) -> None:
    for server in ("node1", "node2"):
        st = wait(lab, server, lambda s: s["np"] == [{"name": "router", "state": "normal"}])
        assert settled(st)


def test_losing_the_interconnect_only_brings_nobody_down(lab: Lab) -> None:
    lab.partition(["node2"], network="interconnect")
    st = wait(lab, "node1", lambda s: s["servers"][1]["heartbeats"]["lanhb1"] == "error")
    time.sleep(1.5)  # well past the timeout: the public LAN heartbeat keeps node2 up
    st = status(lab, "node1")
    assert servers(st)["node2"] == "online"
    assert st["servers"][1]["heartbeats"] == {"lanhb1": "error", "lanhb2": "normal"}
    assert servers(status(lab, "node2"))["node1"] == "online"
    lab.heal()
    wait(lab, "node1", settled)


@pytest.mark.slow
@pytest.mark.ci
def test_a_cut_off_server_stands_down_and_the_other_goes_on(lab: Lab) -> None:
    lab.partition(["node2"])  # every network, the router too: node2 is the isolated one
    wait(lab, "node1", lambda s: servers(s)["node2"] == "offline")
    with open(stand_down_record(lab, "node2", "node2 did not stand down")) as f:
        record = json.load(f)
    assert record["action"] == "shutdown" and "isolated" in record["reason"]
    assert "router: isolated" in record["reason"]
    st = wait(lab, "node1", lambda s: s["servers"][1].get("fenced") is True, timeout=20)
    assert st["node"]["state"] == "running"
    assert not os.path.exists(os.path.join(lab.dir, "node1", "state", RECORD_FILE))


@pytest.mark.slow
def test_a_paused_server_stands_down_when_it_wakes(lab: Lab) -> None:
    lab.pause("node2")
    wait(lab, "node1", lambda s: servers(s)["node2"] == "offline")
    time.sleep(1.0)  # node1 resolves the partition (it reaches the router) and goes on
    lab.resume("node2")
    with open(stand_down_record(lab, "node2", "node2 acted as if nothing had happened")) as f:
        assert "stalled" in json.load(f)["reason"]
    wait(lab, "node1", lambda s: s["servers"][1].get("fenced") is True, timeout=20)


@pytest.mark.slow
def test_thirty_percent_loss_on_every_path_brings_nobody_down_at_the_default_profile(
    make_lab, needs_nft
) -> None:
    text = CONFIG.replace(
        'heartbeat_interval = "100ms"\nheartbeat_timeout = "600ms"\n', 'profile = "default"\n'
    )
    lab = make_lab(text=text)
    wait(lab, "node1", settled)
    epoch = json.loads(
        lab.exec(
            "node1",
            ["haven", "bus", "tap", "member.view", "--count", "1", "--timeout", "10", "--json"],
        ).stdout
    )["body"]["epoch"]
    for network in ("public", "interconnect"):
        lab.loss("node2", network, 30)
    time.sleep(20)
    view = json.loads(
        lab.exec(
            "node1",
            ["haven", "bus", "tap", "member.view", "--count", "1", "--timeout", "10", "--json"],
        ).stdout
    )["body"]
    lab.heal()
    assert view["servers"]["node2"]["state"] == "online"
    assert view["epoch"] == epoch, "node2 went down (and back) under 30 % loss"


def test_a_server_whose_frames_are_lost_one_way_stands_down(lab: Lab) -> None:
    # node2's frames to everyone are lost; node2 still hears node1 (and the router answers
    # node1). node1 declares node2 down and survives by ping NP; node2 must learn it from
    # node1's frames and stand down — never go on as if nothing had happened.
    lab.partition(["node2"], one_way=True)
    wait(lab, "node1", lambda s: servers(s)["node2"] == "offline")
    with open(stand_down_record(lab, "node2", "node2 did not learn it was declared down")) as f:
        assert "no longer hears this server" in json.load(f)["reason"]
    st = wait(lab, "node1", lambda s: s["servers"][1].get("fenced") is True, timeout=20)
    assert st["node"]["state"] == "running"
