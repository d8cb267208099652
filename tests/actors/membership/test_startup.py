"""Cluster start: a starting server waits a bounded time for the others (SPEC §10)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from harness import node_config

from config.clusterkey import generate_cluster_key

HB = {"name": "lan", "type": "lanhb", "network": "public", "port": 29131}


@pytest.fixture
def config(tmp_path):
    key = str(tmp_path / "cluster.key")
    generate_cluster_key(key)
    return lambda wait, extra="": (
        node_config(
            [],
            servers=("node1", "node2"),
            subnet="127.0.0",
            heartbeats=(HB,),
            key_file=key,
            timing={
                "heartbeat_interval": "100ms",
                "heartbeat_timeout": "600ms",
                "startup_wait": wait,
            },
        )
        + extra
    )


def startup(status: dict) -> str:
    return status["cluster"]["startup"]


def test_the_first_server_waits_for_the_other_and_completes_when_it_comes(start_node, config):
    text = config("60s")
    n1 = start_node(config=text, server="node1")
    assert startup(n1.status()) == "waiting"
    with n1.watch("alert.") as w:
        n2 = start_node(config=text, server="node2")
        w.wait_for("alert.info", lambda b: b["event"] == "startup_complete", timeout=10)
    n1.wait_status(lambda s: startup(s) == "complete", timeout=5)
    n2.wait_status(lambda s: startup(s) == "complete", timeout=10)  # node1 was there already


def test_the_wait_is_bounded(start_node, config):
    n1 = start_node(config=config("1s"), server="node1")
    st = n1.wait_status(lambda s: startup(s) != "waiting", timeout=10)
    assert startup(st) == "timed_out"
    assert st["node"]["state"] == "running"


def test_a_restarted_membership_actor_does_not_wait_again(start_node, config):
    n1 = start_node(config=config("1s"), server="node1")
    n1.wait_status(lambda s: startup(s) == "timed_out", timeout=10)
    old = n1.actor("membership")["pid"]
    os.kill(old, signal.SIGKILL)
    n1.wait_status(
        lambda s: any(
            a["name"] == "membership" and a["pid"] not in (None, old) and a["state"] == "running"
            for a in s["actors"]
        )
    )
    view = n1.request("view", service="membership")
    assert view["startup"] == "timed_out"


def test_a_server_starting_alone_is_no_partition_to_resolve(start_node, config):
    # node2 (not the master) alone in a two-server majority cluster: were node1's absence taken
    # for a partition, node2 would find itself without a majority and stand down
    votes = '\n[[np]]\nname = "votes"\ntype = "majority"\n'
    n2 = start_node(config=config("1s", votes), server="node2")
    n2.wait_status(lambda s: startup(s) == "timed_out", timeout=10)
    time.sleep(1.0)
    st = n2.status()
    assert st["node"]["state"] == "running"
    assert {s["name"]: s["state"] for s in st["servers"]}["node1"] == "offline"
