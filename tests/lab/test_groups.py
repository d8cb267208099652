"""Failover groups in the lab: real servers in namespaces, a real floating IP, real scripts.

Each test is named after the behaviour it shows (issue #4, SPEC §12). The cluster is the lab's
fast-timing cluster of tests/lab_cluster.py with groups added; `exec` resources run the example's
HTTP server or a sleeping stand-in for an application.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from lab_cluster import (
    FIP,
    REPO,
    cluster_config,
    group,
    groups_of,
    haven,
    status,
    wait,
    wait_online,
)

from lab import Lab


def where(lab: Lab, server: str, name: str) -> str | None:
    g = groups_of(status(lab, server)).get(name) or {}
    return g.get("server") if g.get("state") == "online" else None


class Probe:
    """lab/http_probe.py in the router namespace, for the length of a `with` block."""

    def __init__(self, lab: Lab, tmp: str) -> None:
        st = lab.status()
        self.out = os.path.join(tmp, "probe.jsonl")
        self.stop_file = os.path.join(tmp, "probe.stop")
        argv = [
            sys.executable, "-m", "lab.http_probe", f"http://{FIP}/",
            "--interface", st["router"]["interface"], "--source", st["router"]["address"],
            "--out", self.out, "--until-file", self.stop_file, "--timeout", "0.2",
            "--deadline", "120",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", st["router"]["namespace"], *argv],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def lines(self) -> list[dict]:
        try:
            with open(self.out) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_answer(self, text: str, timeout: float = 40.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.get("ok") and text in line["answer"]:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no answer {text!r}: {self.lines()[-5:]}")

    def summary(self) -> dict:
        open(self.stop_file, "w").close()
        self.proc.wait(10)
        return next(line["summary"] for line in self.lines() if "summary" in line)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            open(self.stop_file, "w").close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.ci
def test_node_death_fails_over_and_the_client_never_sees_two_macs(make_lab, tmp_path):
    """SPEC §12-1/2: the active server dies; the group, its IP and its service come up on the
    next server of the policy, and at no time do two servers answer ARP for the address."""
    lab = make_lab(text=cluster_config(2) + group("web", ["node1", "node2"], http=True))
    wait_online(lab, "node1", "web", "node1")
    with Probe(lab, str(tmp_path)) as probe:
        probe.wait_answer("hello from node1 (START)")
        killed = time.monotonic()
        lab.kill("node1")
        answer = probe.wait_answer("hello from node2 (FAILOVER)")
        summary = probe.summary()
    assert answer["t"] > killed
    assert summary["double_mac_windows"] == 0
    assert len(summary["macs"]) == 2  # node1's, then node2's
    st = wait_online(lab, "node2", "web", "node2")
    assert groups_of(st)["web"]["resources"]["web ip"]["ip"] == FIP
    assert groups_of(st)["web"]["resources"]["web httpd"]["pid"]


@pytest.mark.ci
def test_floating_ip_already_in_use_is_refused(make_lab):
    """The address answers already (here: the router holds it): activation is refused with
    the owner's MAC, on every server, and the group ends in error instead of stealing it."""
    text = cluster_config(2) + group(
        "web",
        ["node1", "node2"],
        extra='startup = "manual"',
    )
    lab = make_lab(text=text)
    router = lab.status()["router"]
    subprocess.run(
        ["ip", "-n", router["namespace"], "addr", "add", f"{FIP}/24", "dev", router["interface"]],
        check=True,
    )
    wait(lab, "node1", lambda st: "web" in groups_of(st))
    out = haven(lab, "node1", "group", "start", "web", "--timeout", "30")
    assert out.returncode != 0
    assert "in use" in out.stderr and "Traceback" not in out.stderr
    st = status(lab, "node1")
    g = groups_of(st)["web"]
    assert g["state"] in ("error", "offline")
    for server in ("node1", "node2"):
        addrs = lab.exec(server, ["ip", "-o", "addr"]).stdout
        assert FIP not in addrs, f"{server} took the address: {addrs}"


@pytest.mark.slow
def test_planned_move_and_two_operators_moving_at_once(make_lab, tmp_path):
    """A move is answered when done and safe to repeat; two operators moving the same group to
    different servers at once: one wins, the other is told the group is busy."""
    slow = tmp_path / "slow.sh"  # a start that takes 3 s: both commands arrive while it runs
    slow.write_text("#!/bin/sh\nsleep 3\n")
    slow.chmod(0o755)
    lab = make_lab(text=cluster_config(3) + group("web", ["node1", "node2", "node3"], app=slow))
    wait_online(lab, "node1", "web", "node1")
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def move(server: str, to: str) -> None:
        results[to] = haven(lab, server, "group", "move", "web", "--to", to, "--quiet")

    threads = [
        threading.Thread(target=move, args=("node1", "node2")),
        threading.Thread(target=move, args=("node3", "node3")),
    ]
    threads[0].start()
    time.sleep(0.5)
    threads[1].start()
    for t in threads:
        t.join(60)
    won = [to for to, r in results.items() if r.returncode == 0]
    lost = [to for to, r in results.items() if r.returncode != 0]
    assert len(won) == 1 and len(lost) == 1, {k: (r.stdout, r.stderr) for k, r in results.items()}
    assert "busy" in results[lost[0]].stderr
    st = wait_online(lab, "node1", "web", won[0])
    assert groups_of(st)["web"]["resources"]["web ip"]["state"] == "online"
    again = haven(lab, "node2", "group", "move", "web", "--to", won[0])
    assert again.returncode == 0 and "nothing to do" in again.stdout


@pytest.mark.slow
def test_auto_failback_returns_and_manual_does_not(make_lab):
    text = (
        cluster_config(2)
        + group("back", ["node1", "node2"], ip=FIP, extra='failback = "auto"')
        + group("stay", ["node1", "node2"], ip="198.18.0.101")
    )
    lab = make_lab(text=text)
    wait_online(lab, "node1", "back", "node1")
    wait_online(lab, "node1", "stay", "node1")
    lab.kill("node1")
    wait_online(lab, "node2", "back", "node2")
    wait_online(lab, "node2", "stay", "node2")
    lab.start("node1")
    wait_online(lab, "node1", "back", "node1")  # auto failback: home again
    time.sleep(2.0)
    assert where(lab, "node1", "stay") == "node2"  # manual failback: it stays


@pytest.mark.slow
def test_n_plus_one_with_exclusive_groups(make_lab):
    """N+1: node3 stands by for two exclusive groups. The first failure goes to node3; a second
    does not share node3 with the first (complete exclusion) while no other server is free."""
    extra = 'exclusive = "complete"'
    text = (
        cluster_config(3)
        + group("a", ["node1", "node3"], ip=FIP, extra=extra)
        + group("b", ["node2", "node3"], ip="198.18.0.101", extra=extra)
    )
    lab = make_lab(text=text)
    wait_online(lab, "node3", "a", "node1")
    wait_online(lab, "node3", "b", "node2")
    lab.kill("node1")
    wait_online(lab, "node3", "a", "node3")
    assert where(lab, "node3", "b") == "node2"
    lab.kill("node2")
    st = wait(
        lab,
        "node3",
        lambda st: "exclusive" in (groups_of(st).get("b") or {}).get("waiting", ""),
        40,
    )
    assert groups_of(st)["a"]["server"] == "node3"
    assert groups_of(st)["b"]["state"] == "offline", groups_of(st)["b"]
    time.sleep(2.0)
    assert where(lab, "node3", "b") is None  # still not shared


@pytest.mark.slow
def test_a_rejoined_server_leaves_the_group_where_it_runs(make_lab):
    """The killed master comes back: it coordinates again, finds the group on node2 (manual
    failback) and starts nothing; its leftovers of the earlier run are gone."""
    lab = make_lab(text=cluster_config(2) + group("web", ["node1", "node2"]))
    wait_online(lab, "node1", "web", "node1")
    lab.kill("node1")
    wait_online(lab, "node2", "web", "node2")
    lab.start("node1")
    wait(lab, "node1", lambda st: all(s["state"] == "online" for s in st["servers"]), 30)
    time.sleep(2.0)
    st = status(lab, "node1")
    assert groups_of(st)["web"]["server"] == "node2"
    assert groups_of(st)["web"]["servers"]["node1"] == "offline"
    assert FIP not in lab.exec("node1", ["ip", "-o", "addr"]).stdout


@pytest.mark.ci
def test_server_shutdown_releases_and_fails_over_without_waiting_for_fencing(make_lab):
    """A planned stop of the active server: its groups are released first, and the other
    server starts them as soon as it sees it gone — not after the fencing wait."""
    lab = make_lab(text=cluster_config(2) + group("web", ["node1", "node2"]))
    wait_online(lab, "node1", "web", "node1")
    out = haven(lab, "node1", "server", "shutdown", "--timeout", "25")
    assert out.returncode == 0, out.stderr
    assert "stopped" in out.stdout
    st = wait_online(lab, "node2", "web", "node2", timeout=30)
    node1 = next(s for s in st["servers"] if s["name"] == "node1")
    assert node1["state"] == "offline"
    assert FIP not in lab.exec("node1", ["ip", "-o", "addr"]).stdout  # released, not killed
    with open(os.path.join(lab.dir, "node2", "node.log")) as f:
        assert "server stops with every group released" in f.read()


@pytest.mark.slow
def test_suspend_holds_decisions_and_resume_fails_over(make_lab):
    lab = make_lab(text=cluster_config(2) + group("web", ["node1", "node2"]))
    wait_online(lab, "node1", "web", "node1")
    out = haven(lab, "node2", "cluster", "suspend")
    assert out.returncode == 0 and "suspended" in out.stdout, out.stderr
    again = haven(lab, "node2", "cluster", "suspend")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    refused = haven(lab, "node2", "group", "move", "web")
    assert refused.returncode != 0 and "suspended" in refused.stderr
    lab.kill("node1")
    wait(
        lab,
        "node2",
        lambda st: (
            "suspended" in (groups_of(st)["web"].get("waiting") or "")
            and any(s["name"] == "node1" and s["state"] == "offline" for s in st["servers"])
        ),
        30,
    )
    time.sleep(2.0)
    assert where(lab, "node2", "web") is None  # no failover while suspended
    out = haven(lab, "node2", "cluster", "resume")
    assert out.returncode == 0, out.stderr
    wait_online(lab, "node2", "web", "node2")


@pytest.mark.slow
def test_cluster_stop_stops_every_server_and_releases_its_groups(make_lab):
    """SPEC §12-47: cluster stop does not hang; every server stops, every group is released."""
    lab = make_lab(
        text=cluster_config(2)
        + group("web", ["node1", "node2"])
        + group("db", ["node2", "node1"], ip="198.18.0.101")
    )
    wait_online(lab, "node1", "web", "node1")
    wait_online(lab, "node1", "db", "node2")
    out = haven(lab, "node1", "cluster", "stop", "--timeout", "25")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "node1: stopped" in out.stdout and "node2: stopped" in out.stdout
    deadline = time.monotonic() + 30
    while any(lab.pids(s) for s in ("node1", "node2")):
        assert time.monotonic() < deadline, "a node did not stop"
        time.sleep(0.2)
    for server in ("node1", "node2"):
        addrs = lab.exec(server, ["ip", "-o", "addr"]).stdout
        assert FIP not in addrs and "198.18.0.101" not in addrs


@pytest.mark.slow
def test_double_activation_after_a_split_brain_is_alerted_and_stopped_on_the_worse_server(
    make_lab,
):
    """A badly chosen NP resource (both halves reach the router) lets both servers run the
    group during a partition; once it heals the double activation is alerted and the group
    stays only on its best server (on_double_activation = stop_others, the default)."""
    lab = make_lab(text=cluster_config(2) + group("web", ["node1", "node2"]))
    wait_online(lab, "node1", "web", "node1")
    lab.partition(["node1"], against=["node2"])
    wait_online(lab, "node2", "web", "node2", timeout=60)  # node2 took over: split brain
    lab.heal()
    st = wait(
        lab,
        "node1",
        lambda st: groups_of(st)["web"]["servers"] == {"node1": "online", "node2": "offline"},
        60,
    )
    assert groups_of(st)["web"]["state"] == "online"
    with open(os.path.join(lab.dir, "node1", "node.log")) as f:
        log = f.read()
    assert "is active on node1, node2 at once" in log


@pytest.mark.slow
def test_a_failover_that_coincides_with_a_move_succeeds(make_lab, tmp_path):
    """SPEC §12-1/§12-5: the move's target dies while the group starts there; the group does
    not end up stopped everywhere: it starts on the next server once the target has fenced."""
    slow = tmp_path / "slow.sh"
    slow.write_text("#!/bin/sh\nsleep 3\n")
    slow.chmod(0o755)
    lab = make_lab(text=cluster_config(2) + group("web", ["node1", "node2"], app=str(slow)))
    wait_online(lab, "node1", "web", "node1")
    moved: list[subprocess.CompletedProcess[str]] = []
    mover = threading.Thread(
        target=lambda: moved.append(haven(lab, "node1", "group", "move", "web", "--to", "node2"))
    )
    mover.start()
    wait(lab, "node1", lambda st: groups_of(st)["web"]["servers"].get("node2") == "starting", 20)
    lab.kill("node2")
    mover.join(30)
    assert moved and moved[0].returncode != 0
    assert "node2 went down during the move" in moved[0].stderr
    wait_online(lab, "node1", "web", "node1", timeout=60)


@pytest.mark.slow
def test_manual_failover_with_do_nothing_on_a_failed_stop_does_not_fail_over(make_lab, tmp_path):
    """SPEC §12-9: the stop script fails at server shutdown and the final action is "do
    nothing": the group stays where it was (in error), and with manual failover no other server
    starts it — the operator decides."""
    app = tmp_path / "app.sh"  # starts fine, fails to stop
    app.write_text('#!/bin/sh\n[ "${CLP_FACTOR:-}" = "" ] && exit 0\nexit 1\n')
    app.chmod(0o755)
    text = cluster_config(2) + group(
        "web",
        ["node1", "node2"],
        extra='failover = "manual"',
        app=str(app),
    ).replace(
        'stop_timeout = "10s"',
        'stop_timeout = "10s"\ndeactivation = { retry = 0, final_action = "do_nothing" }',
    )
    lab = make_lab(text=text)
    wait_online(lab, "node1", "web", "node1")
    out = haven(lab, "node1", "server", "shutdown", "--service-only", "--timeout", "25")
    assert out.returncode == 0, out.stderr
    st = wait(
        lab,
        "node2",
        lambda st: "manual failover" in (groups_of(st)["web"].get("waiting") or ""),
        60,
    )
    assert groups_of(st)["web"]["state"] == "offline"
    time.sleep(2.0)
    assert where(lab, "node2", "web") is None


@pytest.mark.slow
def test_start_and_stop_on_others_run_the_scripts_on_the_standby_server(make_lab, tmp_path):
    """exec `start_on_others` / `stop_on_others`: when the group starts or stops on its server,
    the other servers of its policy run the scripts with CLP_SERVER=OTHER."""
    log = tmp_path / "others.log"
    script = tmp_path / "app.sh"
    script.write_text(f'#!/bin/sh\necho "$HAVEN_SERVER $CLP_SERVER $CLP_FACTOR" >> "{log}"\n')
    script.chmod(0o755)
    text = cluster_config(2) + group("web", ["node1", "node2"], ip=None, app=str(script))
    text = text.replace(
        f'start = "{script}"', f'start = "{script}"\nstart_on_others = true\nstop_on_others = true'
    )
    lab = make_lab(text=text)
    wait_online(lab, "node1", "web", "node1")
    deadline = time.monotonic() + 20
    while "node2 OTHER" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.1)
    out = haven(lab, "node1", "group", "stop", "web")
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 20
    while "node2 OTHER GROUPSTOP" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    lines = log.read_text().splitlines()
    assert "node1 HOME " in lines[0] + " "  # the start on the group's own server
    assert "node1 HOME GROUPSTOP" in lines


@pytest.mark.ci
def test_an_activation_failure_climbs_retry_then_failover_then_final_action(make_lab, tmp_path):
    """A resource that fails to start is retried, then the group fails over; where it fails
    again past the failover threshold the final action applies and the group stays in error."""
    tries = tmp_path / "tries.log"
    app = tmp_path / "app.sh"  # fails on node1; on node2 only while the `broken` file exists
    broken = tmp_path / "broken"
    app.write_text(
        "#!/bin/sh\n"
        '[ -n "${CLP_FACTOR:-}" ] && exit 0\n'
        f'echo "$HAVEN_SERVER" >> "{tries}"\n'
        '[ "$HAVEN_SERVER" = node1 ] && exit 1\n'
        f'[ -e "{broken}" ] && exit 1\n'
        "exit 0\n"
    )
    app.chmod(0o755)
    text = cluster_config(2) + group("web", ["node1", "node2"], ip=None, app=str(app))
    text = text.replace(
        f'start = "{app}"',
        f'start = "{app}"\n'
        'activation = { retry = 1, failover_threshold = 1, final_action = "do_nothing" }',
    )
    lab = make_lab(text=text)
    st = wait_online(lab, "node1", "web", "node2")
    assert tries.read_text().split() == ["node1", "node1", "node2"]  # 1 try + 1 retry, failover
    # now it fails everywhere: node1 first (its failure history is cleared by the operator's
    # start), then node2, past the threshold: the final action, and an error an operator sees
    broken.touch()
    assert haven(lab, "node1", "group", "stop", "web").returncode == 0
    tries.write_text("")
    out = haven(lab, "node1", "group", "start", "web", "--timeout", "25")
    assert out.returncode != 0 and "failed to start" in out.stderr, out.stderr
    st = wait(lab, "node1", lambda st: groups_of(st)["web"]["state"] == "error", 30)
    g = groups_of(st)["web"]
    assert g["server"] == "node2" and "exit 1" in g["failure"]["error"]
    assert tries.read_text().split() == ["node1", "node1", "node2", "node2"]


@pytest.mark.slow
def test_a_server_that_fails_at_cluster_start_has_its_groups_fail_over(make_lab):
    """SPEC §12-46: node1, the home of group web, dies as the cluster starts: after the start
    wait its group starts on node2."""
    text = cluster_config(2).replace(
        'heartbeat_timeout = "600ms"', 'heartbeat_timeout = "600ms"\nstartup_wait = "3s"'
    ) + group("web", ["node1", "node2"])
    lab = make_lab(text=text)
    lab.kill("node1")
    wait_online(lab, "node2", "web", "node2", timeout=60)


@pytest.mark.slow
def test_names_with_spaces_work_everywhere(make_lab, tmp_path):
    """SPEC §12-20/39: group and resource names with spaces, a script path with a double quote
    and a space; status, move and resource commands take them as they are."""
    folder = tmp_path / 'app "v2" dir'
    folder.mkdir()
    app = folder / "run me.sh"
    app.write_text('#!/bin/sh\necho "$CLP_GROUPNAME/$CLP_RESOURCENAME" > "$0.seen"\n')
    app.chmod(0o755)
    text = cluster_config(2) + group("web site", ["node1", "node2"], app=str(app))
    text = text.replace(f'"{app}"', f"'{app}'")  # a TOML literal string: the quote stays as is
    lab = make_lab(text=text)
    wait_online(lab, "node1", "web site", "node1")
    assert (folder / "run me.sh.seen").read_text().strip() == "web site/web site app"
    out = haven(lab, "node1", "group", "move", "web site", "--to", "node2")
    assert out.returncode == 0, out.stderr
    out = haven(lab, "node2", "resource", "stop", "web site app")
    assert out.returncode == 0, out.stderr
    out = haven(lab, "node2", "resource", "start", "web site app")
    assert out.returncode == 0, out.stderr
    st = wait_online(lab, "node2", "web site", "node2")
    assert groups_of(st)["web site"]["resources"]["web site app"]["state"] == "online"
