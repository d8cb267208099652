"""The supervisor with real actor processes: restarts, hangs, escalation, order, clean stop."""

from __future__ import annotations

import os
import signal
import time

import pytest
from harness import NodeProcess, alive, session_pids, unix_sockets_under

from actors import exitcodes
from supervisor.node_actions import EXIT_ESCALATED, EXIT_PANIC

ECHO = {"kind": "echo", "args": {"interval": "200ms"}}


def node_actor(status: dict, name: str) -> dict:
    return next(a for a in status["actors"] if a["name"] == name)


def actors(*names: str, **extra) -> list[dict]:
    return [{"name": n, **ECHO, **extra} for n in names]


def test_status_lists_live_actors(start_node) -> None:
    node = start_node(actors("alpha", "beta"))
    status = node.status()
    assert [a["name"] for a in status["actors"]] == ["alertlog", "alpha", "beta"]
    for a in status["actors"]:
        assert a["state"] == "running" and a["restarts"] == 0
        os.kill(a["pid"], 0)  # a real, live process
    assert status["node"]["launcher"] == "template"


LAUNCHERS = pytest.mark.parametrize("launcher", ["template", "spawn"])


@LAUNCHERS
def test_sigkilled_actor_is_restarted_with_a_new_pid(start_node, launcher: str) -> None:
    node = start_node(actors("alpha"), launcher=launcher)
    assert node.status()["node"]["launcher"] == launcher
    old = node.actor("alpha")["pid"]
    with node.watch("actor.alpha.state") as w:
        os.kill(old, signal.SIGKILL)
        w.wait_for("actor.alpha.state", lambda b: b["state"] == "restarting")
        ev = w.wait_for("actor.alpha.state", lambda b: b["state"] == "running", timeout=5)
    assert ev.body["pid"] != old and ev.body["restarts"] == 1
    assert node.actor("alpha")["state"] == "running"


@LAUNCHERS
def test_stopped_actor_is_detected_by_missed_beats_and_replaced(start_node, launcher) -> None:
    node = start_node(actors("alpha"), node={"beat_timeout": "600ms"}, launcher=launcher)
    old = node.actor("alpha")["pid"]
    with node.watch("actor.alpha.state") as w:
        os.kill(old, signal.SIGSTOP)
        ev = w.wait_for("actor.alpha.state", lambda b: b["state"] == "restarting", timeout=5)
        assert "hung" in ev.body["reason"]
        w.wait_for("actor.alpha.state", lambda b: b["state"] == "running", timeout=5)
    with pytest.raises(ProcessLookupError):
        os.kill(old, 0)  # killed and reaped, not left stopped


def test_blocked_event_loop_counts_as_hung(start_node) -> None:
    node = start_node(actors("alpha"), node={"beat_timeout": "600ms"})
    with node.watch("actor.alpha.state") as w:
        try:
            node.request("block", {"seconds": 30}, service="alpha", timeout=0.2)
        except Exception:
            pass
        ev = w.wait_for("actor.alpha.state", lambda b: b["state"] == "restarting", timeout=5)
    assert "hung" in ev.body["reason"]


def test_crash_loop_of_noncritical_actor_marks_it_failed(start_node) -> None:
    node = start_node(
        actors("steady") + [{"name": "crasher", "kind": "echo", "args": {"fail_start": True}}],
        node={"max_restarts": 2, "restart_window": "30s"},
    )
    status = node.status()  # the ordered start gave the crasher up before the node ran
    assert status["node"]["state"] == "running"
    by_name = {a["name"]: a for a in status["actors"]}
    assert by_name["crasher"]["state"] == "failed" and by_name["crasher"]["restarts"] == 2
    assert by_name["crasher"]["reason"] == "more than 2 restarts in 30s"
    assert by_name["steady"]["state"] == "running"


def test_crash_loop_of_critical_actor_stops_the_node(start_node) -> None:
    node = start_node(
        actors("steady")
        + [{"name": "vital", "kind": "echo", "critical": True, "args": {"fail_start": True}}],
        node={"max_restarts": 1, "restart_window": "30s"},
        wait=False,
    )
    assert node.wait(30) == EXIT_ESCALATED
    assert "critical actor 'vital' failed" in node.output()
    assert session_pids(node.sid) == []


def test_fatal_exit_stops_the_node(start_node) -> None:
    node = start_node(actors("alpha", "beta"))
    node.request("exit", {"code": exitcodes.FATAL}, service="beta")
    assert node.wait(30) == EXIT_ESCALATED
    assert session_pids(node.sid) == []


def test_panic_exit_kills_the_node_at_once_in_the_lab(start_node) -> None:
    node = start_node(actors("alpha", "beta"))
    node.request("exit", {"code": exitcodes.PANIC}, service="alpha")
    assert node.wait(10) == EXIT_PANIC
    deadline = time.monotonic() + 5
    while session_pids(node.sid) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILLed children are reaped by init once the node is gone
    assert session_pids(node.sid) == []


@pytest.mark.parametrize(
    "restart, code, final",
    [("transient", 0, "stopped"), ("temporary", 0, "stopped"), ("temporary", 1, "failed")],
)
def test_restart_types(start_node, restart: str, code: int, final: str) -> None:
    node = start_node(actors("alpha") + actors("once", restart=restart))
    with node.watch("actor.once.state") as w:
        node.request("exit", {"code": code}, service="once")
        w.wait_for("actor.once.state", lambda b: b["state"] == final)
    assert node.actor("once")["restarts"] == 0
    assert node.actor("once")["pid"] is None


def test_transient_actor_is_restarted_after_a_failure(start_node) -> None:
    node = start_node(actors("once", restart="transient"))
    with node.watch("actor.once.state") as w:
        node.request("exit", {"code": 1}, service="once")
        w.wait_for("actor.once.state", lambda b: b["state"] == "running")


def test_ordered_start_and_reverse_stop(start_node) -> None:
    node = start_node(actors("first", "second", "third"))
    since = {a["name"]: a["since"] for a in node.status()["actors"]}
    assert since["first"] < since["second"] < since["third"]
    with node.watch("actor.") as w:
        node.proc.send_signal(signal.SIGTERM)
        order = [
            w.wait_for_any(
                lambda e: e.topic.endswith(".state") and e.body["state"] == "stopped"
            ).topic.split(".")[1]
            for _ in range(3)
        ]
    assert order == ["third", "second", "first"]
    assert node.wait(30) == 0


@LAUNCHERS
def test_sigterm_leaves_no_process_socket_or_file(start_node, launcher: str) -> None:
    node = start_node(actors("alpha", "beta", "gamma"), launcher=launcher)
    pids = [a["pid"] for a in node.status()["actors"]]
    assert len(session_pids(node.sid)) >= 4  # node, three actors (and the template)
    assert node.terminate() == 0
    assert session_pids(node.sid) == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert node.paths.socket_files() == []
    assert unix_sockets_under(node.state_dir) == []


def test_sigterm_stops_a_stopped_actor_too(start_node) -> None:
    node = start_node(actors("alpha"), node={"beat_timeout": "30s"})
    os.kill(node.actor("alpha")["pid"], signal.SIGSTOP)
    assert node.terminate() == 0
    assert session_pids(node.sid) == []


def test_second_node_on_the_same_state_dir_is_refused(start_node) -> None:
    node = start_node(actors("alpha"))
    with open(node.config_path) as f:
        second = NodeProcess(node.state_dir, f.read())
    assert second.wait(20) == 2
    assert "already running" in second.output()
    assert node.status()["node"]["state"] == "running"


def test_two_nodes_on_one_machine_do_not_interfere(start_node) -> None:
    a = start_node(actors("alpha"))
    b = start_node(actors("alpha"))
    pid_a, pid_b = a.actor("alpha")["pid"], b.actor("alpha")["pid"]
    assert pid_a != pid_b
    with a.watch("actor.alpha.state") as w:
        os.kill(pid_a, signal.SIGKILL)
        w.wait_for("actor.alpha.state", lambda body: body["state"] == "running")
    assert b.actor("alpha")["pid"] == pid_b and b.actor("alpha")["restarts"] == 0
    assert a.actor("alpha")["restarts"] == 1


def test_actors_do_not_outlive_a_sigkilled_node(start_node) -> None:
    node = start_node(actors("alpha", "beta"))
    pids = [a["pid"] for a in node.status()["actors"]]
    node.proc.kill()
    node.wait(10)
    deadline = time.monotonic() + 10
    while session_pids(node.sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_pids(node.sid) == [], "actors or the template outlived their supervisor"
    assert not any(alive(pid) for pid in pids)


def test_ctrl_c_stops_the_node_in_order_without_restarts(start_node) -> None:
    node = start_node(actors("alpha", "beta"))
    with node.watch("actor.") as w:
        os.killpg(node.sid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        stopped = [
            w.wait_for_any(
                lambda e: e.topic.endswith(".state") and e.body["state"] != "running"
            ).body["state"]
            for _ in range(2)
        ]
    assert stopped == ["stopped", "stopped"]
    assert node.wait(30) == 0


def test_restarts_leak_no_file_descriptors_in_the_supervisor(start_node) -> None:
    node = start_node(actors("alpha"), node={"max_restarts": 50})
    fds = lambda: len(os.listdir(f"/proc/{node.proc.pid}/fd"))  # noqa: E731
    before = fds()
    with node.watch("actor.alpha.state") as w:
        for _ in range(8):
            os.kill(node.actor("alpha")["pid"], signal.SIGKILL)
            w.wait_for("actor.alpha.state", lambda b: b["state"] == "running", timeout=10)
    assert node.actor("alpha")["restarts"] == 8
    assert fds() == before


def test_sigterm_during_a_slow_start_stops_at_once(start_node) -> None:
    node = start_node(
        actors("alpha") + [{"name": "slow", "kind": "echo", "args": {"start_delay": 60}}],
        wait=False,
    )
    node.wait_status(lambda s: node_actor(s, "slow")["state"] == "starting")
    t0 = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    assert node.wait(30) == 0
    # The node's start timeout (10 s) and the actor's stop deadline (10 s) are not waited out.
    assert time.monotonic() - t0 < 5
    assert session_pids(node.sid) == []


def test_ordered_start_waits_for_a_crash_looping_child_to_be_given_up(start_node) -> None:
    node = start_node(
        actors("first")
        + [{"name": "crasher", "kind": "echo", "args": {"fail_start": True}}]
        + actors("last"),
        node={"max_restarts": 2},
    )
    by_name = {a["name"]: a for a in node.status()["actors"]}
    assert by_name["crasher"]["state"] == "failed"
    assert by_name["crasher"]["since"] < by_name["last"]["since"]


def test_a_critical_temporary_actor_that_fails_stops_the_node(start_node) -> None:
    node = start_node(actors("vital", restart="temporary", critical=True))
    node.request("exit", {"code": 1}, service="vital")
    assert node.wait(30) == EXIT_ESCALATED
    assert "critical actor 'vital' failed" in node.output()


def test_a_killed_actor_leaves_no_socket_file(start_node) -> None:
    node = start_node(actors("alpha") + actors("once", restart="temporary"))
    assert any(p.endswith("/s-once") for p in node.paths.socket_files())
    with node.watch("actor.once.state") as w:
        os.kill(node.actor("once")["pid"], signal.SIGKILL)
        w.wait_for("actor.once.state", lambda b: b["state"] == "failed")
    assert not any(p.endswith("/s-once") for p in node.paths.socket_files())


def test_a_terminal_hang_up_leaves_the_node_running(start_node) -> None:
    node = start_node(actors("alpha"))
    pids = {a["name"]: a["pid"] for a in node.status()["actors"]}
    os.killpg(node.sid, signal.SIGHUP)
    with node.watch("actor.alpha.beat") as w:
        w.wait_for("actor.alpha.beat", lambda b: b["pid"] == pids["alpha"])
    status = node.status()
    assert status["node"]["state"] == "running" and status["node"]["launcher"] == "template"
    assert {a["name"]: a["pid"] for a in status["actors"]} == pids


def test_after_an_unclean_stop_automatic_start_is_held(start_node) -> None:
    node = start_node(actors("alpha"))
    assert node.status()["cluster"]["auto_start"] == "enabled"
    with open(node.config_path) as f:
        config, state_dir = f.read(), node.state_dir
    node.kill_all()  # the machine died: no orderly stop
    again = NodeProcess(state_dir, config)
    try:
        status = again.wait_running()
        assert status["cluster"]["auto_start"] == "held"
        assert again.terminate() == 0  # an orderly stop...
        third = NodeProcess(state_dir, config)
        try:
            assert third.wait_running()["cluster"]["auto_start"] == "enabled"  # ...clears it
        finally:
            third.kill_all()
    finally:
        again.kill_all()
