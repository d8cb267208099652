"""The link across the lab's real networks: it moves to the public LAN when the interconnect is
cut, and `haven status` from any server shows every server's node and NP states."""

from __future__ import annotations

import pytest
from lab_cluster import cluster_config, settled, status, wait

from lab import Lab


@pytest.fixture
def lab(make_lab, needs_nft) -> Lab:
    lab = make_lab(text=cluster_config(2))
    for server in ("node1", "node2"):
        wait(lab, server, settled)
    return lab


def nodes_seen(st: dict) -> dict[str, str]:
    return {s["name"]: s["node"]["state"] for s in st["servers"]}


def test_status_from_any_server_and_the_link_survives_losing_the_interconnect(lab: Lab) -> None:
    both = {"node1": "normal", "node2": "normal"}
    for server in ("node1", "node2"):
        # an NP resource is "unknown" on a server until its first check there has ended
        st = wait(
            lab,
            server,
            lambda s: (
                nodes_seen(s) == {"node1": "running", "node2": "running"}
                and s["np"][0].get("servers") == both
            ),
        )
        assert st["np"][0]["servers"] == both
    lab.partition(["node1"], network="interconnect")
    # The interconnect's connection is dropped by ZeroMQ's heartbeat (about a second); from then
    # on the link runs over the public LAN, and stays there.
    wait(lab, "node2", lambda s: nodes_seen(s)["node1"] == "running", timeout=10)
    for _ in range(5):
        assert nodes_seen(status(lab, "node2"))["node1"] == "running"
    pulled = lab.exec("node2", ["haven", "config", "pull", "--server", "node1"])
    assert pulled.returncode == 0 and "[cluster]" in pulled.stdout, pulled.stderr
    lab.heal()


def test_a_dead_server_shows_unreachable_from_the_other(lab: Lab) -> None:
    lab.kill("node1")
    st = wait(lab, "node2", lambda s: nodes_seen(s)["node1"] == "unreachable", timeout=15)
    assert nodes_seen(st)["node2"] == "running"
