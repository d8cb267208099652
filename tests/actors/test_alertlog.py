"""The alert log: every alert that reaches the bus, once, as a JSON line; `haven alerts`."""

from __future__ import annotations

import json
import os
import textwrap
import time

from harness import node_config

from actors.alertlog import AlertLogActor


def test_a_groups_alerts_are_logged_and_shown(start_node, tmp_path):
    script = tmp_path / "app.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    config = node_config([]) + textwrap.dedent(
        f"""
        [[group]]
        name = "web"

        [[group.resource]]
        name = "app"
        type = "exec"
        start = "{script}"
        stop = "{script}"
        """
    )
    node = start_node(config=config)
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
    """The log's file handling without a node (no bus needed for append, rotate and read)."""
    log = AlertLogActor.__new__(AlertLogActor)
    log.path = str(tmp_path / "alerts.log")
    log.max_bytes, log.keep = max_bytes, keep
    log.file = open(log.path, "a", encoding="utf-8")  # noqa: SIM115
    return log


def test_the_log_rotates_by_size_and_reads_across_generations(tmp_path):
    log = bare_log(tmp_path, max_bytes=300, keep=2)
    for i in range(30):
        log._append(json.dumps({"sender": "s/a", "seq": i, "time": 0.0, "n": i}))
    log.file.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["alerts.log", "alerts.log.1", "alerts.log.2"]  # no third generation
    assert all(os.path.getsize(tmp_path / n) <= 300 for n in names)
    newest = log._read(5)
    assert [r["n"] for r in newest] == [25, 26, 27, 28, 29]
    everything = log._read(1000)
    assert [r["n"] for r in everything] == list(range(30 - len(everything), 30))
    assert len(everything) < 30  # the oldest went with the generation that fell off


def test_a_damaged_line_is_skipped(tmp_path):
    log = bare_log(tmp_path, max_bytes=10_000, keep=1)
    log._append(json.dumps({"n": 1}))
    log.file.write('{"n": 2, "trunc')  # a crash mid-write
    log.file.write("\n")
    log._append(json.dumps({"n": 3}))
    log.file.close()
    assert [r["n"] for r in log._read(10)] == [1, 3]


def test_alerts_follow_prints_new_alerts_as_they_come(start_node, tmp_path):
    import subprocess
    import sys

    from harness import REPO

    script = tmp_path / "app.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    config = node_config([]) + textwrap.dedent(
        f"""
        [[group]]
        name = "web"

        [[group.resource]]
        name = "app"
        type = "exec"
        start = "{script}"
        stop = "{script}"
        """
    )
    node = start_node(config=config)
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
