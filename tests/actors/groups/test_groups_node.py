"""The groups actor in a real one-server node, with real exec scripts: cluster start, operator
commands, activation failure, actor restart and node stop. (Failover between servers is in the
lab: tests/lab/test_groups.py.)"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time

import pytest
from harness import node_config

STARTUP = 'startup = "auto"'


def cluster(tmp: str, group_extra: str = STARTUP, app_start: str = "", app_final: str = "") -> str:
    """A one-server cluster with group "web": an exec "prep" and an exec "app" after it, each
    writing what it did to `events` in the configuration's folder."""
    for name, start_extra in (("prep", ""), ("app", app_start)):
        d = os.path.join(tmp, "scripts", "web", name)
        os.makedirs(d, exist_ok=True)
        for verb, extra in (("start", start_extra), ("stop", "")):
            path = os.path.join(d, f"{verb}.sh")
            with open(path, "w") as f:
                f.write(
                    textwrap.dedent(
                        f"""\
                        #!/bin/sh
                        echo "{name} {verb} $CLP_EVENT $CLP_FACTOR" >> "{tmp}/events"
                        {extra}
                        """
                    )
                )
            os.chmod(path, 0o755)
    base = node_config([], node={"stop_timeout": "5s"})
    return base + textwrap.dedent(
        f"""
        [[group]]
        name = "web"
        {group_extra}

        [[group.resource]]
        name = "prep"
        type = "exec"
        start = "{tmp}/scripts/web/prep/start.sh"
        stop = "{tmp}/scripts/web/prep/stop.sh"
        start_timeout = "5s"
        stop_timeout = "5s"

        [[group.resource]]
        name = "app"
        type = "exec"
        start = "{tmp}/scripts/web/app/start.sh"
        stop = "{tmp}/scripts/web/app/stop.sh"
        start_timeout = "5s"
        stop_timeout = "5s"
        depends_on = ["prep"]
        {app_final}
        """
    )


def events(tmp: str) -> list[str]:
    try:
        with open(os.path.join(tmp, "events")) as f:
            return [line.strip() for line in f]
    except FileNotFoundError:
        return []


def group_status(node) -> dict:
    return node.request("status", {}, timeout=10, service="groups")["groups"]["web"]


def wait_group(node, predicate, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        g = group_status(node)
        if predicate(g):
            return g
        if time.monotonic() > deadline:
            raise AssertionError(f"group never got there: {g}")
        time.sleep(0.1)


@pytest.fixture
def web(start_node, tmp_path):
    def start(**kw):
        node = start_node(config=cluster(str(tmp_path), **kw))
        node.tmp = str(tmp_path)
        return node

    return start


def test_auto_group_starts_in_dependency_order_and_stops_in_reverse(web, tmp_path):
    node = web()
    g = wait_group(node, lambda g: g["state"] == "online")
    assert g["server"] == "node1"
    assert g["resources"]["app"]["state"] == "online"
    assert events(node.tmp) == ["prep start START", "app start START"]
    out = node.cli("group", "stop", "web")
    assert out.returncode == 0, out.stderr
    assert "offline" in out.stdout
    assert events(node.tmp)[2:] == ["app stop START GROUPSTOP", "prep stop START GROUPSTOP"]
    again = node.cli("group", "stop", "web")  # safe to run twice
    assert again.returncode == 0 and "nothing to do" in again.stdout
    out = node.cli("group", "start", "web", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["state"] == "online"


def test_manual_group_stays_offline_until_started(web):
    node = web(group_extra='startup = "manual"')
    time.sleep(1.5)
    assert group_status(node)["state"] == "offline"
    assert events(node.tmp) == []
    out = node.cli("group", "start", "web")
    assert out.returncode == 0, out.stderr
    assert group_status(node)["state"] == "online"


def test_unknown_group_and_server_are_clear_errors(web):
    node = web()
    out = node.cli("group", "start", "nope")
    assert out.returncode == 2 and "no group 'nope'" in out.stderr and "web" in out.stderr
    out = node.cli("group", "start", "web", "--server", "elsewhere")
    assert out.returncode == 2 and "not in group web's failover policy" in out.stderr
    assert "Traceback" not in out.stderr


def test_activation_failure_with_do_nothing_leaves_the_group_in_error(web):
    node = web(
        app_start="exit 3",
        app_final='activation = { retry = 1, failover_threshold = 0, final_action = "do_nothing" }',
    )
    g = wait_group(node, lambda g: g["state"] == "error")
    assert "exit 3" in g["failure"]["error"]
    assert events(node.tmp).count("app start START") == 2  # one retry
    assert g["resources"]["prep"]["state"] == "online"  # the resources before it stay up
    out = node.cli("group", "stop", "web")
    assert out.returncode == 0, out.stderr
    assert group_status(node)["state"] == "offline"


def test_ignored_activation_failure_goes_on(web):
    node = web(
        app_start="exit 3",
        app_final='activation = { retry = 0, failover_threshold = 0, final_action = "ignore" }',
    )
    g = wait_group(node, lambda g: g["state"] == "online")
    assert g["resources"]["app"]["state"] == "error"


def test_a_restarted_groups_actor_does_not_start_the_group_again(web):
    node = web()
    wait_group(node, lambda g: g["state"] == "online")
    before = events(node.tmp)
    with node.watch("actor.groups.state") as w:
        os.kill(node.actor("groups")["pid"], signal.SIGKILL)
        w.wait_for("actor.groups.state", lambda b: b["state"] == "running", timeout=10)
    g = wait_group(node, lambda g: g["state"] == "online")
    time.sleep(1.0)
    assert events(node.tmp) == before  # rechecked, not restarted
    assert g["resources"]["app"]["state"] == "online"


def test_node_stop_releases_the_group(web):
    node = web()
    wait_group(node, lambda g: g["state"] == "online")
    assert node.terminate() == 0
    assert events(node.tmp)[-2:] == [
        "app stop START CLUSTERSHUTDOWN",
        "prep stop START CLUSTERSHUTDOWN",
    ]


def test_status_watch_redraws_on_group_changes(web):
    """`haven status --watch` redraws when the bus says a group changed, not only on a timer."""
    import subprocess
    import sys

    from harness import REPO

    node = web()
    wait_group(node, lambda g: g["state"] == "online")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "status", "--watch", "--json", "--watch-for", "4"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HAVEN_STATE_DIR": node.state_dir},
    )
    time.sleep(1.0)
    assert node.cli("group", "stop", "web").returncode == 0
    out, _ = watcher.communicate(timeout=20)
    states = [
        next(g["state"] for g in json.loads(line)["groups"] if g["name"] == "web")
        for line in out.splitlines()
        if line.strip()
    ]
    # redrawn on the group's events: without them the first redraw would come after 5 s
    assert states[0] == "online" and states[-1] == "offline"


def test_nothing_an_actor_started_outlives_the_node(start_node, tmp_path):
    """An application whose stop script fails (final action `ignore`) is still running when the
    groups actor has done what it could: the node kills it on its way out."""
    d = tmp_path / "scripts"
    d.mkdir()
    (d / "start.sh").write_text("#!/bin/sh\nexec sleep 1000\n")
    (d / "stop.sh").write_text("#!/bin/sh\nexit 1\n")
    for f in d.iterdir():
        f.chmod(0o755)
    config = node_config([], node={"stop_timeout": "5s"}) + textwrap.dedent(
        f"""
        [[group]]
        name = "web"

        [[group.resource]]
        name = "app"
        type = "exec"
        start = "{d}/start.sh"
        stop = "{d}/stop.sh"
        start_sync = false
        stop_timeout = "2s"
        deactivation = {{ retry = 0, final_action = "ignore" }}
        """
    )
    node = start_node(config=config)
    g = wait_group(node, lambda g: g["state"] == "online")
    pid = g["resources"]["app"]["pid"]
    assert os.path.exists(f"/proc/{pid}")
    node.terminate()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
