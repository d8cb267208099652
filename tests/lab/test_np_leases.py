"""NP resolution by the lease methods across real networks (issue #3): `witness` (the lab runs
`haven witness serve` in its router namespace) and `disknp` (the lab's shared file). Every path
between the two servers is cut while both still reach the witness and the disk: exactly one side
survives, in every trial — never both, never none. A witness that cannot be reached while the
heartbeats are fine is an NP error, never a stand-down."""

from __future__ import annotations

import json
import os
import time

import pytest
from lab_cluster import cluster_config, record_path, servers, settled, wait

from lab import Lab, procs

SERVERS = ("node1", "node2")
TRIALS = 4
WITNESS = """
[[np]]
name = "w"
type = "witness"
url = "http://198.18.0.1:29005"
timeout = "300ms"
interval = "500ms"
"""
DISKNP = """
[[np]]
name = "disk"
type = "disknp"
device = "disk/disk.img"
lease = "1s"
io_timeout = "250ms"
"""


def np_states(st: dict) -> dict[str, str]:
    return {np["name"]: np["state"] for np in st["np"]}


def np_normal(name: str):
    return lambda st: settled(st) and np_states(st) == {name: "normal"}


@pytest.fixture
def lease_lab(make_lab, needs_nft):
    def make(np: str, name: str) -> Lab:
        lab = make_lab(text=cluster_config(2, np))
        for server in SERVERS:
            wait(lab, server, np_normal(name), timeout=30)
        return lab

    return make


def stood_down(lab: Lab) -> list[str]:
    return [s for s in SERVERS if os.path.exists(record_path(lab, s))]


def ended(lab: Lab, server: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while lab.pids(server):
        assert time.monotonic() < deadline, f"{server} stood down but its node did not end"
        time.sleep(0.2)


def cut(lab: Lab, name: str) -> str:
    """One trial: cut every path between the servers (both keep the router and the disk).
    Checks that exactly one side stood down and the other goes on; returns the loser."""
    lab.partition(["node2"], against=["node1"])
    deadline = time.monotonic() + 30
    while not stood_down(lab):
        assert time.monotonic() < deadline, "nobody stood down: both sides would take over"
        time.sleep(0.2)
    (loser,) = stood_down(lab)
    (winner,) = [s for s in SERVERS if s != loser]
    with open(record_path(lab, loser)) as f:
        record = json.load(f)
    assert record["action"] == "shutdown" and f"{name}: isolated" in record["reason"], record
    # the winner reports the loser fenced only after the fencing wait, by when every check of
    # the loser's is long over: had the winner lost too, it would have stood down by now
    st = wait(
        lab,
        winner,
        lambda st: any(s["name"] == loser and s.get("fenced") is True for s in st["servers"]),
        timeout=40,
    )
    assert stood_down(lab) == [loser], "both sides stood down"
    assert servers(st)[loser] == "offline" and st["node"]["state"] == "running"
    assert lab.pids(loser) == [], f"{winner} reported {loser} fenced while it still runs"
    ended(lab, loser)
    return loser


def repair(lab: Lab, loser: str, name: str) -> None:
    lab.heal()
    os.unlink(record_path(lab, loser))
    lab.start(loser)
    for server in SERVERS:
        wait(lab, server, np_normal(name), timeout=30)


@pytest.mark.slow
@pytest.mark.ci
def test_witness_one_side_of_a_cut_survives(lease_lab) -> None:
    lab = lease_lab(WITNESS, "w")
    assert lab.status()["router"]["witness"]["running"] is True
    cut(lab, "w")
    witness = lab.state().router.witness
    lab.down()  # and `down` stops the witness with everything else
    assert not procs.is_alive(witness["pid"], witness["start_time"])


@pytest.mark.slow
def test_witness_exactly_one_side_survives_in_repeated_trials(lease_lab) -> None:
    lab = lease_lab(WITNESS, "w")
    losers = []
    for _ in range(TRIALS):
        losers.append(cut(lab, "w"))
        repair(lab, losers[-1], "w")
    print("witness trials, losers:", losers)


@pytest.mark.slow
def test_disknp_exactly_one_side_survives_in_repeated_trials(lease_lab) -> None:
    lab = lease_lab(DISKNP, "disk")
    assert any(d["name"] == "disk" for d in lab.status()["devices"])
    losers = []
    for _ in range(TRIALS):
        losers.append(cut(lab, "disk"))
        repair(lab, losers[-1], "disk")
    print("disknp trials, losers:", losers)


@pytest.mark.slow
def test_an_unreachable_witness_is_an_np_error_and_nobody_stands_down(lease_lab) -> None:
    lab = lease_lab(WITNESS, "w")
    lab.partition(["router"])  # the witness host is cut off; the servers still hear each other
    for server in SERVERS:
        wait(lab, server, lambda st: np_states(st) == {"w": "error"})
    time.sleep(2)
    assert stood_down(lab) == []
    for server in SERVERS:
        assert settled(wait(lab, server, settled))
    lab.heal()
    for server in SERVERS:
        wait(lab, server, np_normal("w"), timeout=30)
