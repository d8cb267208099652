"""Membership and NP resolution across real networks: the lab's namespaces, bridges and nftables
faults (issue #3's scenarios). Timing is the `fast`-ish 100 ms / 600 ms so a test takes seconds."""

from __future__ import annotations

import json
import os
import time

import pytest
from lab_cluster import (
    PINGNP,
    cluster_config,
    member_view,
    servers,
    settled,
    stand_down_record,
    status,
    wait,
)

from lab import Lab
from supervisor.node_actions import RECORD_FILE

CONFIG = cluster_config(2, PINGNP)


@pytest.fixture
def lab(make_lab, needs_nft) -> Lab:
    lab = make_lab(text=CONFIG)
    for server in ("node1", "node2"):
        wait(lab, server, settled)
    return lab


def test_both_servers_see_each_other_on_every_path(lab: Lab) -> None:
    for server in ("node1", "node2"):
        st = wait(
            lab,
            server,
            lambda s: (
                [(n["name"], n["state"], n["servers"]) for n in s["np"]]
                == [("router", "normal", {"node1": "normal", "node2": "normal"})]
            ),
        )
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
    epoch = member_view(lab, "node1")["body"]["epoch"]
    for network in ("public", "interconnect"):
        lab.loss("node2", network, 30)
    time.sleep(20)
    view = member_view(lab, "node1")["body"]
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
