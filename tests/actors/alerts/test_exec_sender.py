"""alert.exec: a real command per alert, the alert in its environment and on its stdin."""

from __future__ import annotations

import json
import time

from harness import node_config


def exec_config(tmp_path, script_body: str, extra: str = "") -> tuple[str, str]:
    out = tmp_path / "got.jsonl"
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\n" + script_body.replace("OUT", str(out)))
    script.chmod(0o755)
    config = node_config([]) + (
        f'\n[[alert]]\nname = "hook"\ntype = "exec"\ncommand = "{script}"\ntimeout = "2s"\n' + extra
    )
    return config, str(out)


def read_lines(path: str, count: int, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                lines = [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            lines = []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_each_alert_runs_the_command_with_its_environment(start_node, tmp_path):
    body = (
        'printf \'{"event": "%s", "id": "%s", "level": "%s", "server": "%s", "message": "%s", '
        '"stdin": %s}\\n\' "$HAVEN_ALERT_EVENT" "$HAVEN_ALERT_ID" "$HAVEN_ALERT_LEVEL" '
        '"$HAVEN_ALERT_SERVER" "$HAVEN_ALERT_MESSAGE" "$(cat)" >> OUT\n'
    )
    config, out = exec_config(tmp_path, body)
    node = start_node(config=config)
    r = node.cli("alerts", "test", "--count", "2", "--text", "hello")
    assert r.returncode == 0, r.stderr
    got = read_lines(out, 3)
    tests = [g for g in got if g["event"] == "alert_test"]
    assert len(tests) == 2, got
    assert tests[0]["id"] == "1" and tests[0]["level"] == "info" and tests[0]["server"] == "node1"
    assert tests[0]["message"] == "test alert to hook: hello (1 of 2)"
    assert tests[0]["stdin"]["details"]["destination"] == "hook"
    assert tests[1]["message"].endswith("(2 of 2)")
    # the node's own start is an alert too (node_started goes to exec by default)
    assert any(g["event"] == "node_started" for g in got), got
    state = json.loads(node.cli("alerts", "destinations", "--json").stdout)
    assert state[0]["destination"] == "hook" and state[0]["sent"] >= 3 and state[0]["failures"] == 0


def test_a_hung_command_is_killed_at_its_timeout_and_the_next_alert_goes_on(start_node, tmp_path):
    body = 'case "$HAVEN_ALERT_MESSAGE" in *"(1 of 2)") sleep 60;; esac\n'
    body += 'echo "{\\"message\\": \\"$HAVEN_ALERT_MESSAGE\\"}" >> OUT\n'
    config, out = exec_config(tmp_path, body, 'events = ["alert"]\n')
    node = start_node(config=config)
    started = time.monotonic()
    assert node.cli("alerts", "test", "--count", "2", "--text", "hang").returncode == 0
    got = read_lines(out, 1)
    assert [g["message"] for g in got] == ["test alert to hook: hang (2 of 2)"]
    assert time.monotonic() - started < 15
    state = json.loads(node.cli("alerts", "destinations", "--json").stdout)[0]
    assert state["failures"] == 1 and "timeout" in state["last_error"]
    records = [json.loads(x) for x in node.cli("alerts", "--json").stdout.splitlines()]
    failing = [r for r in records if r["event"] == "alert_delivery_failing"]
    assert failing and failing[0]["details"]["destination"] == "hook"


def test_an_unknown_event_in_the_routing_is_refused_with_its_place(tmp_path):
    from config import check_text

    config, _ = exec_config(tmp_path, "true\n", 'events = ["server_down", "no_such"]\n')
    cluster, issues = check_text(config)
    assert cluster is None
    [issue] = issues
    assert issue.path == ("alert", 0, "events", 1) and issue.level == "error"
    assert issue.message.startswith('unknown event "no_such"')
    assert issue.place == 'alert "hook" → events'
    for good in ("default", "all", "groups", "groups.32", "server_up"):
        cluster, issues = check_text(config.replace('"no_such"', f'"{good}"'))
        assert cluster is not None, (good, issues)
