"""The alert service in the lab (issue #5): every server ends up holding the whole cluster's
alerts, in the same order, without duplicates, carrying the server each one happened on —
including a server that was down while they were raised."""

from __future__ import annotations

import json
import time

import pytest
from lab_cluster import cluster_config, group, haven, wait_online

from lab import Lab


def alerts(lab: Lab, server: str) -> list[dict]:
    out = haven(lab, server, "alerts", "-n", "10000", "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def names(records: list[dict]) -> list[tuple[str, int, str]]:
    return [(r["server"], r["n"], r["event"]) for r in records]


def wait_same(lab: Lab, servers: list[str], want, timeout: float = 30.0) -> list[dict]:
    """Until every server's log is the same list and `want(records)` holds; the list."""
    deadline = time.monotonic() + timeout
    while True:
        logs = {s: alerts(lab, s) for s in servers}
        first = names(logs[servers[0]])
        if all(names(logs[s]) == first for s in servers) and want(logs[servers[0]]):
            return logs[servers[0]]
        if time.monotonic() > deadline:
            diff = {s: names(logs[s])[-8:] for s in servers}
            raise AssertionError(
                f"the alert logs differ or lack events: {json.dumps(diff)}" + sync_log(lab)
            )
        time.sleep(0.5)


def sync_log(lab: Lab) -> str:
    out = ""
    for s in lab.status()["servers"]:
        with open(s["log"], errors="replace") as f:
            lines = [line for line in f if "alert sync" in line or "caught up" in line]
        out += f"\n--- {s['name']}:\n" + "".join(lines[-10:])
    return out


def events_of(records: list[dict], server: str) -> list[str]:
    return [r["event"] for r in records if r["server"] == server]


@pytest.mark.ci
def test_alert_logs_converge_on_every_server_including_one_that_was_down(make_lab):
    lab = make_lab(text=cluster_config(3) + group("web", ["node1", "node2", "node3"], ip=None,
                                                   app="/bin/true"))  # fmt: skip
    wait_online(lab, "node1", "web", "node1")
    every = ["node1", "node2", "node3"]
    wait_same(lab, every, lambda r: "group_start_completed" in events_of(r, "node1"))

    lab.kill("node3")  # node3 misses what follows
    assert haven(lab, "node1", "group", "move", "web", "--to", "node2").returncode == 0
    wait_online(lab, "node1", "web", "node2")
    wait_same(
        lab,
        ["node1", "node2"],
        lambda r: (
            "group_move_completed" in events_of(r, "node2")
            and "server_down" in events_of(r, "node1")
        ),
    )
    lab.kill("node1")  # and node1, which raised some of them, is down when node3 returns
    lab.start("node3")
    records = wait_same(
        lab,
        ["node2", "node3"],
        lambda r: (
            "group_move_started" in events_of(r, "node1")  # node1's, from node2's copy
            and "node_started" in events_of(r, "node3")
        ),
        timeout=40,
    )
    keys = [(r["server"], r["n"]) for r in records]
    assert len(keys) == len(set(keys)), "an alert is recorded twice"
    # one order everywhere: the origin's time, then the server, then its number
    assert records == sorted(records, key=lambda r: (r["time"], r["server"], r["n"]))
    # each alert carries the server it happened on, not the one that passed it on
    assert "group_move_completed" not in events_of(records, "node1")
    assert "group_stop_completed" in events_of(records, "node1")
    assert {r["server"] for r in records} == set(every)

    lab.start("node1")  # node1 catches up on what node2 and node3 raised while it was down
    wait_same(lab, every, lambda r: events_of(r, "node1").count("node_started") == 2, 40)
