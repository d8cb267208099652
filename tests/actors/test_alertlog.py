"""The alert log: every alert that reaches the bus, once, as a JSON line; `haven alerts`."""

from __future__ import annotations

import json
import os
import time

import pytest
from harness import exec_group, node_config

from actors.alertlog import RECENT, AlertLogActor
from actors.alerts.ledger import Ledger
from bus.rpc import RequestError


def one_group(tmp_path) -> str:
    script = tmp_path / "app.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return node_config([]) + exec_group(script, script)


def test_a_groups_alerts_are_logged_and_shown(start_node, tmp_path):
    node = start_node(config=one_group(tmp_path))
    deadline = time.monotonic() + 15
    while True:
        out = node.cli("alerts", "--json")
        assert out.returncode == 0, out.stderr
        records = [json.loads(line) for line in out.stdout.splitlines()]
        events = [r["event"] for r in records]
        if "group_start_completed" in events:
            break
        assert time.monotonic() < deadline, records
        time.sleep(0.2)
    start = records[events.index("group_start_started")]
    assert start["server"] == "node1" and start["module"] == "groups" and start["id"] == 10
    assert start["level"] == "info" and start["message"] == "group web: starting on node1"
    assert start["details"]["group"] == "web" and start["details"]["reason"] == "startup"
    done = records[events.index("group_start_completed")]
    assert done["id"] == 11 and done["message"] == "group web: started on node1"
    assert events.count("group_start_started") == 1
    text = node.cli("alerts", "--level", "warning")
    assert text.returncode == 0 and "group_start" not in text.stdout  # info is below warning
    path = os.path.join(node.state_dir, "alerts", "alerts.log")
    with open(path) as f:
        assert [json.loads(line)["event"] for line in f] == events  # the file is the log


def bare_log(tmp_path, max_bytes: int, keep: int) -> AlertLogActor:
    """The log's file handling without a node (no bus needed for store, rotate and read)."""
    log = AlertLogActor.__new__(AlertLogActor)
    log.me = "a"
    log.path = str(tmp_path / "alerts.log")
    log.max_bytes, log.keep = max_bytes, keep
    log.ledger, log.recent = Ledger(), []
    log.file = open(log.path, "a", encoding="utf-8")  # noqa: SIM115
    return log


def record(server: str, n: int, **kw) -> dict:
    return {"server": server, "n": n, "time": float(n), "level": "info", "module": "m",
            "event": "e", "id": 1, "message": f"{server} {n}", "details": {}, **kw}  # fmt: skip


def numbers(records) -> list[int]:
    return [r["n"] for r in records]


def test_the_log_rotates_by_size_and_what_falls_off_is_no_longer_held(tmp_path):
    log = bare_log(tmp_path, max_bytes=1000, keep=2)
    for n in range(1, 31):
        log._store(record("b", n))
    log.file.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["alerts.log", "alerts.log.1", "alerts.log.2"]  # no third generation
    assert all(os.path.getsize(tmp_path / n) <= 1000 for n in names)
    on_disk = sorted(n for chunk in log._generations() for n in numbers(chunk))
    assert on_disk == list(range(31 - len(on_disk), 31)) and len(on_disk) < 30
    assert sorted(log.ledger.held["b"]) == on_disk  # the ledger lets go of what fell off
    assert log.ledger.marks["b"] == 30  # ... and never asks for it again
    log.recent = log.recent[-5:]
    assert numbers(log._tail({"count": 5})["records"]) == [26, 27, 28, 29, 30]


def test_a_damaged_or_foreign_line_is_skipped(tmp_path):
    log = bare_log(tmp_path, max_bytes=10_000, keep=1)
    log._append(json.dumps(record("b", 1)))
    log.file.write('{"n": 2, "trunc\n')  # a crash mid-write
    log._append(json.dumps({"n": 3}))  # no server
    log._append(json.dumps(record("b", 4, time="nan")))
    log._append(json.dumps(record("b", 5, level="panic")))
    log._append(json.dumps(record("b", 6)))
    log.file.close()
    assert [numbers(chunk) for chunk in log._generations()] == [[1, 6]]


def test_a_stored_record_is_bounded_and_a_peer_cannot_store_twice_or_as_us(tmp_path):
    log = bare_log(tmp_path, max_bytes=100_000, keep=1)
    big = record("b", 1, message="x" * 100_000, details={"out": "y" * 100_000, "code": 3})
    assert log._accept(big) and not log._accept(big)
    assert not log._accept(record("a", 9))  # our own numbers are ours
    assert not log._accept({**record("b", 2), "n": "x"}) and not log._accept(["junk"])
    [stored] = log._generations().__next__()
    assert len(stored["message"]) == 2000 and stored["details"] == {"code": 3, "truncated": True}


def test_since_sends_exactly_what_the_asker_lacks_and_reads_nothing_when_it_lacks_nothing(tmp_path):
    log = bare_log(tmp_path, max_bytes=100_000, keep=1)
    for n in (1, 2, 3, 5, 6):
        log._accept(record("b", n))
    asker = Ledger()
    for n in (1, 2, 6):
        asker.add("b", n)
    answer = log._since(asker.request())
    assert numbers(answer["records"]) == [3, 5] and not answer["more"]
    assert answer["marks"] == {"b": 3}
    for n in (3, 5):
        asker.add("b", n)
    os.unlink(log.path)  # were it read, it would find nothing: the ledger answers alone
    assert log._since(asker.request()) == {"server": "a", "marks": {"b": 3}, "records": [],
                                           "more": False}  # fmt: skip
    with pytest.raises(RequestError):
        log._since({"marks": {"b": "x"}})


def test_a_page_stays_inside_a_frame(tmp_path):
    log = bare_log(tmp_path, max_bytes=10_000_000, keep=1)
    for n in range(1, 401):
        log._accept(record("b", n, message="m" * 1900, details={"d": "z" * 3000}))
    answer = log._since({"marks": {}, "ahead": {}})
    assert answer["more"] and 100 < len(answer["records"]) < 400
    assert len(json.dumps(answer)) < 600 * 1024


def test_alerts_follow_prints_new_alerts_as_they_come(start_node, tmp_path):
    import subprocess
    import sys

    from harness import REPO

    node = start_node(config=one_group(tmp_path))
    follower = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "alerts", "-n", "0", "--follow", "--for", "4", "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HAVEN_STATE_DIR": node.state_dir},
    )
    time.sleep(1.0)
    assert node.cli("group", "stop", "web").returncode == 0
    out, _ = follower.communicate(timeout=20)
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert "group_stop_started" in events and "group_stop_completed" in events
    assert "group_start_started" not in events  # only what came after


def test_a_long_tail_comes_in_pages_that_fit_a_frame(tmp_path):
    log = bare_log(tmp_path, max_bytes=100_000_000, keep=1)
    for n in range(1, 1201):
        log._accept(record("b", n, message="m" * 1000))
    log.recent = log.recent[-RECENT:]
    first = log._tail({"count": 1200})
    assert first["truncated"] and 100 < len(first["records"]) < 1200
    assert numbers(first["records"])[-1] == 1200  # the newest first: older ones on request
    got = first["records"]
    while len(got) < 1200:
        oldest = got[0]
        page = log._tail({"count": 1200 - len(got), "before": [oldest["time"], "b", oldest["n"]]})
        assert page["records"], page
        got = page["records"] + got
    assert numbers(got) == list(range(1, 1201))
    with pytest.raises(RequestError):
        log._tail({"count": 1, "before": "yesterday"})
