"""A wall-clock jump of hours on one server changes nothing (issue #3): heartbeats and membership
run on monotonic time. node2's node runs under libfaketime with its monotonic clocks left alone
(as a real clock step leaves them), reading its offset from a file the test rewrites while the
cluster runs; the machine's own clock is never touched."""

from __future__ import annotations

import glob
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from lab_cluster import PINGNP, cluster_config, member_view, record_path, settled, status, wait

from lab import Lab

HOUR = 3600.0
JUMPS = [7 * HOUR, -5 * HOUR, 0.0]  # forward 7 h, back 12 h, forward 5 h to the true time
OBSERVE = 2.0  # seconds of watching after each jump: over three heartbeat timeouts


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.skip("libfaketime is not installed (Debian package faketime; setup.sh adds it)")
    return found[0]


def set_offset(rc: str, seconds: float) -> None:
    """libfaketime's offset for node2 (re-read at every clock call), replaced atomically."""
    with open(rc + ".tmp", "w") as f:
        f.write(f"{seconds:+.0f}\n")
    os.replace(rc + ".tmp", rc)


def within(value: float, low: float, high: float, slack: float = 1.0) -> bool:
    return low - slack <= value <= high + slack


def clocks() -> dict[str, float]:
    return {
        "wall": time.time(),
        "mono": time.monotonic(),
        "boot": time.clock_gettime(time.CLOCK_BOOTTIME),  # heartbeats check their own stalls on it
    }


PROBE = (
    "import json, time; print(json.dumps({'wall': time.time(), 'mono': time.monotonic(),"
    " 'boot': time.clock_gettime(time.CLOCK_BOOTTIME)}))"
)


def check_clock(lab: Lab, env: dict[str, str], offset: float) -> None:
    """A process in node2's namespace and node2's environment reads the wall clock shifted by
    `offset` and the monotonic clocks as they are."""
    before = clocks()
    result = lab.exec("node2", [sys.executable, "-c", PROBE], env=env)
    after = clocks()
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert within(seen["wall"] - offset, before["wall"], after["wall"]), f"not {offset:+.0f}s"
    for clock in ("mono", "boot"):
        assert within(seen[clock], before[clock], after[clock]), f"libfaketime shifted {clock}"


def faked(pid: int, library: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return library in f.read()
    except OSError:
        return False


def tap(lab: Lab, server: str) -> subprocess.Popen[str]:
    """Every bus event of the server, one JSON line each, until `untap`."""
    argv, env = lab.command(server, ["haven", "bus", "tap", "--json", "--timeout", "300"])
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10.0)
    assert ready and proc.stdout.readline(), "the bus tap saw no event"
    return proc  # subscribed: it has seen an event (actor beats flow all the time)


def untap(proc: subprocess.Popen[str]) -> tuple[int, list[dict]]:
    """Ends the tap as Ctrl-C would: its exit status and every event it saw."""
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, [json.loads(line) for line in out.splitlines() if line.strip()]


def trouble(e: dict) -> bool:
    """What a wall-clock jump must not cause: a heartbeat path leaving `normal`, a stall of our
    own heartbeat, an alert above `info` (server down, path lost, a late beat, an NP problem)."""
    topic = e["topic"]
    return (
        (topic.startswith("hb.") and e["body"].get("state") != "normal")
        or topic.startswith("hbstall.")
        or (topic.startswith("alert.") and topic != "alert.info")
    )


def steady(st: dict) -> bool:
    return (
        settled(st)
        and st["node"]["state"] == "running"
        and all(a["state"] == "running" for a in st["actors"])
        and all(np["state"] == "normal" for np in st["np"])
    )


def restarts(st: dict) -> dict[str, int]:
    return {a["name"]: a["restarts"] for a in st["actors"]}


@pytest.mark.slow
@pytest.mark.ci
def test_a_wall_clock_jump_of_hours_on_one_server_changes_nothing(make_lab, tmp_path) -> None:
    library = libfaketime()
    lab = make_lab(text=cluster_config(2, PINGNP))
    rc = str(tmp_path / "faketime.rc")
    set_offset(rc, 0)
    env = {
        "LD_PRELOAD": library,
        "FAKETIME_TIMESTAMP_FILE": rc,
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # libfaketime 0.9.10's name
        "DONT_FAKE_MONOTONIC": "1",  # older releases' name
    }
    # node2 again, this time under libfaketime
    lab.kill("node2")
    lab.start("node2", env=env)
    for server in ("node1", "node2"):
        wait(lab, server, lambda st: steady(st) and st["np"], timeout=30)

    # Not vacuous: node2's clock is really faked, in every process of its node.
    set_offset(rc, JUMPS[0])
    check_clock(lab, env, JUMPS[0])
    pids = lab.pids("node2")
    actors = [a["pid"] for a in status(lab, "node2")["actors"]]
    assert set(actors) <= set(pids) and len(actors) >= 4, (actors, pids)
    assert [pid for pid in pids if not faked(pid, library)] == []
    set_offset(rc, 0)
    check_clock(lab, env, 0)
    before = {server: restarts(wait(lab, server, steady)) for server in ("node1", "node2")}

    taps = {server: tap(lab, server) for server in ("node1", "node2")}
    try:
        for offset in JUMPS:
            set_offset(rc, offset)
            check_clock(lab, env, offset)
            # the membership actor (forked from the node's template) reads the jumped clock
            wall0 = time.time()
            view = member_view(lab, "node2")
            assert within(view["time"] - offset, wall0, time.time()), (offset, view["time"])
            deadline = time.monotonic() + OBSERVE
            while time.monotonic() < deadline:
                for server in ("node1", "node2"):
                    st = status(lab, server)
                    assert steady(st), (offset, server, json.dumps(st, indent=1)[:3000])
                    assert restarts(st) == before[server], (offset, server)
    finally:
        seen = {server: untap(proc) for server, proc in taps.items()}
    for server, (code, events) in seen.items():
        assert code == 0, f"the bus tap on {server} failed (did its node stop?)"
        assert [e for e in events if trouble(e)] == [], server
        epochs = {e["body"]["epoch"] for e in events if e["topic"] == "member.view"}
        assert len(epochs) == 1, f"{server}'s membership view changed: epochs {sorted(epochs)}"
    assert [s["state"] for s in lab.status()["servers"]] == ["running", "running"]
    assert not any(os.path.exists(record_path(lab, s)) for s in ("node1", "node2"))
