"""The commands a person types, run as real subprocesses against a real node."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from harness import REPO

ECHO = [
    {"name": "echo", "kind": "echo", "args": {"interval": "100ms"}},
    {"name": "ticker", "kind": "echo", "args": {"interval": "300ms"}},
]


def haven(*args: str, state_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if state_dir:
        env["HAVEN_STATE_DIR"] = state_dir
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_status_json_shape(start_node) -> None:
    node = start_node(ECHO)
    out = node.cli("status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert {k: status["cluster"][k] for k in ("name", "state")} == {
        "name": "test",
        "state": "online",
    }
    assert set(status) >= {"cluster", "servers", "np", "groups", "monitors", "actors"}
    assert [s["name"] for s in status["servers"]] == ["node1"]
    for actor in status["actors"]:
        assert set(actor) >= {"name", "pid", "state", "restarts"}
        assert actor["state"] in {"starting", "running", "restarting", "failed", "stopped"}
        assert isinstance(actor["pid"], int) and isinstance(actor["restarts"], int)
    assert [a["name"] for a in status["actors"]] == ["alertlog", "echo", "ticker"]


def test_status_for_humans(start_node) -> None:
    node = start_node(ECHO)
    out = node.cli("status")
    assert out.returncode == 0, out.stderr
    assert "Cluster  test  (online)" in out.stdout
    assert "ticker" in out.stdout and "running" in out.stdout


def test_state_dir_flag_beats_the_environment(start_node) -> None:
    node = start_node(ECHO)
    out = haven("status", "--json", "--state-dir", node.state_dir, state_dir="/nonexistent")
    assert out.returncode == 0, out.stderr


def test_status_without_a_node_is_a_clear_error(state_dir: str) -> None:
    out = haven("status", state_dir=state_dir)
    assert out.returncode == 2
    assert "no node is running with state directory" in out.stderr
    assert "Traceback" not in out.stderr


def test_bus_tap_prints_live_events(start_node) -> None:
    node = start_node(ECHO)
    out = node.cli("bus", "tap", "echo.echo.", "--count", "3", "--timeout", "10", "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(events) == 3
    assert {e["topic"] for e in events} == {"echo.echo.tick"}
    assert all(e["sender"] == "node1/echo" for e in events)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)


def test_node_run_with_a_missing_config_file(state_dir: str) -> None:
    out = haven("node", "run", "--config", f"{state_dir}/nope.toml", "--state-dir", state_dir)
    assert out.returncode == 2
    assert "nope.toml" in out.stderr and "Traceback" not in out.stderr


def test_node_run_with_a_broken_config_names_each_error(state_dir: str) -> None:
    path = f"{state_dir}/bad.toml"
    with open(path, "w") as f:
        f.write('[cluster]\nname = "x"\n[node]\nbeat_interval = "fast"\nmax_restarts = -1\n')
    out = haven("node", "run", "--config", path, "--state-dir", state_dir)
    assert out.returncode == 2
    assert "beat_interval" in out.stderr and "max_restarts" in out.stderr
    assert "Traceback" not in out.stderr


def test_node_run_refuses_an_unknown_server(start_node, state_dir: str) -> None:
    node = start_node(ECHO)
    out = haven(
        "node", "run", "--config", node.config_path, "--state-dir", state_dir, "--server", "ghost"
    )
    assert out.returncode == 2
    assert "'ghost' is not in the configuration" in out.stderr


def test_status_of_a_node_that_died_says_so(start_node) -> None:
    node = start_node(ECHO)
    node.kill_all()
    out = node.cli("status")
    assert out.returncode == 2
    assert "no node is running" in out.stderr and "stale" in out.stderr


def test_absurd_timeouts_are_refused_in_one_line(start_node) -> None:
    node = start_node(ECHO)
    for args in (
        ("status", "--timeout", "inf"),
        ("bus", "tap", "--timeout", "1e300"),
        ("bus", "tap", "--count", "-3"),
    ):
        out = node.cli(*args)
        assert out.returncode == 2, args
        assert "Traceback" not in out.stderr and "error:" in out.stderr


def test_bus_tap_shows_odd_bodies_without_failing(start_node) -> None:
    import zmq

    from bus import envelope

    node = start_node(ECHO)
    tap = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "bus",
            "tap",
            "odd.",
            "--count",
            "1",
            "--timeout",
            "20",
            "--state-dir",
            node.state_dir,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.linger = 1000
    pub.connect(node.paths.publish_endpoint)
    try:
        deadline = time.monotonic() + 15
        while tap.poll() is None and time.monotonic() < deadline:
            # The tap subscribes once it has started; send until it has shown the event.
            pub.send_multipart(
                envelope.to_multipart(
                    envelope.Envelope("odd.one", "t/x", 1, 1e300, {b"k": b"\x00\xff", "n": [1.5]})
                )
            )
            time.sleep(0.2)
        out, err = tap.communicate(timeout=10)
    finally:
        pub.close()
        ctx.term()
    assert tap.returncode == 0, err
    assert "Traceback" not in err
    assert "odd.one" in out and "00ff" in out
