"""NP resolution by `majority` across real networks (issue #3): one server is cut off on every
path; more than half of the servers go on, an exact half only with the master server (node1), and
the rest stands down. Exactly one side survives, in every trial: never both, never none."""

from __future__ import annotations

import json
import os
import time

import pytest
from lab_cluster import (
    MAJORITY,
    cluster_config,
    record_path,
    servers,
    settled,
    stand_down_record,
    wait,
)

from lab import Lab

MASTER = "node1"  # the first server in the configuration
TRIALS = 5


def names(lab: Lab) -> list[str]:
    return [s["name"] for s in lab.status()["servers"]]


def settle(lab: Lab) -> None:
    for server in names(lab):
        wait(lab, server, settled, timeout=30)


def ended(lab: Lab, server: str, timeout: float = 20.0) -> None:
    """Until the server's node process tree is gone (the lab form of its shutdown)."""
    deadline = time.monotonic() + timeout
    while lab.pids(server):
        assert time.monotonic() < deadline, f"{server} stood down but its node did not end"
        time.sleep(0.2)


def cut_off(lab: Lab, alone: str) -> str:
    """One trial: `alone` loses every path to everyone. Checks that exactly the expected side
    survives; returns the server that stood down."""
    everyone = names(lab)
    if 2 * (len(everyone) - 1) > len(everyone):
        loser = alone  # the others are more than half
    else:
        loser = next(s for s in everyone if s != MASTER)  # an exact half: the master's side
    winners = [s for s in everyone if s != loser]
    lab.partition([alone])

    with open(stand_down_record(lab, loser, f"{loser} did not stand down (cut off: {alone})")) as f:
        record = json.load(f)
    assert record["action"] == "shutdown" and "majority: isolated" in record["reason"], record
    for winner in winners:
        st = wait(
            lab,
            winner,
            lambda st: any(s["name"] == loser and s.get("fenced") is True for s in st["servers"]),
            timeout=30,
        )
        # fenced means surely stopped: the loser's node has ended by now
        assert lab.pids(loser) == [], f"{winner} reported {loser} fenced while it still runs"
        assert servers(st) == {s: "offline" if s == loser else "online" for s in everyone}
        assert st["node"]["state"] == "running"
    ended(lab, loser)
    survivors = [s for s in everyone if not os.path.exists(record_path(lab, s))]
    assert survivors == winners, f"cut off: {alone}; stood down: {set(everyone) - {*survivors}}"
    assert [s["state"] for s in lab.status()["servers"] if s["name"] in winners] == [
        "running"
    ] * len(winners)
    return loser


def repair(lab: Lab, loser: str) -> None:
    """Heal the network and start the server that stood down (its record read and cleared)."""
    lab.heal()
    os.unlink(record_path(lab, loser))
    lab.start(loser)
    settle(lab)


@pytest.fixture
def majority_lab(make_lab, needs_nft):
    def make(size: int) -> Lab:
        lab = make_lab(text=cluster_config(size, MAJORITY))
        settle(lab)
        return lab

    return make


@pytest.mark.slow
@pytest.mark.ci
def test_a_server_cut_off_from_two_others_stands_down_and_they_go_on(majority_lab) -> None:
    lab = majority_lab(3)
    assert cut_off(lab, "node3") == "node3"


@pytest.mark.slow
def test_three_servers_exactly_one_side_survives_in_repeated_trials(majority_lab) -> None:
    lab = majority_lab(3)
    for trial in range(TRIALS):
        alone = f"node{trial % 3 + 1}"  # the master too
        assert cut_off(lab, alone) == alone, f"trial {trial}"
        repair(lab, alone)


@pytest.mark.slow
def test_two_servers_only_the_master_side_survives_in_repeated_trials(majority_lab) -> None:
    lab = majority_lab(2)
    for trial in range(TRIALS):
        alone = ("node1", "node2")[trial % 2]  # naming either side: the same cut
        assert cut_off(lab, alone) == "node2", f"trial {trial}"
        repair(lab, "node2")
