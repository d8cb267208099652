"""Bringing labs up and down: down leaves nothing (also after `up` was SIGKILLed half-way), labs
with different directories coexist, long server names with spaces work, and `up` refuses what it
must refuse before creating anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from lab import Lab, LabError, naming
from lab.procs import is_alive

LONG_NAMES = [
    "db server one in the north building, rack 12, slot 4 (primary)",
    "db server two in the south building, rack 7, slot 1 (standby)",
    "witness and spare server three, third building, rack 1, slot 9",
]


def long_names_config() -> str:
    servers = "".join(
        f"[[server]]\nname = {json.dumps(name)}\n"
        f'addresses = {{ public = "198.18.0.{21 + i}", interconnect = "198.19.0.{21 + i}" }}\n\n'
        for i, name in enumerate(LONG_NAMES)
    )
    return (
        '[cluster]\nname = "long names"\nkey_file = "cluster.key"\n\n'
        '[[network]]\nname = "public"\nsubnet = "198.18.0.0/24"\n\n'
        '[[network]]\nname = "interconnect"\nsubnet = "198.19.0.0/24"\n\n'
        f"{servers}"
        '[[heartbeat]]\nname = "lan interconnect"\ntype = "lanhb"\nnetwork = "interconnect"\n'
    )


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and is_alive(int(entry)):
            found.append(int(entry))
    return found


def test_down_removes_everything_and_twice_is_fine(make_lab, haven, leftovers) -> None:
    lab = make_lab()
    st = lab.state()
    pids = lab.pids("node1") + lab.pids("node2")
    assert len(pids) >= 4
    result = haven("lab", "down", "--dir", lab.dir)
    assert result.returncode == 0, result.stderr
    assert "namespaces removed" in result.stdout
    assert [p for p in pids if is_alive(p)] == []
    assert processes_mentioning(lab.dir) == []
    assert leftovers(lab, st.id) == []
    result = haven("lab", "down", "--dir", lab.dir)
    assert result.returncode == 0 and "nothing to remove" in result.stdout
    result = haven("lab", "status", "--dir", lab.dir)
    assert result.returncode == 2 and "no lab is up" in result.stderr


@pytest.mark.parametrize("moment", ["namespaces exist", "a node was started"])
def test_down_after_up_was_sigkilled(make_lab, haven, leftovers, example, moment: str) -> None:
    lab = make_lab(up=False)
    lab_id = naming.lab_id(lab.dir)
    up = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "lab", "up", "--config", example("two-node.toml")],
        env={**os.environ, "HAVEN_LAB_DIR": lab.dir},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and up.poll() is None:
            if moment == "namespaces exist":
                if os.path.exists(f"/run/netns/hv{lab_id}-node1"):
                    break
            elif os.path.exists(os.path.join(lab.dir, "node1", "node.log")):
                break
            time.sleep(0.002)
        assert up.poll() is None, "up finished before it could be killed"
    finally:
        up.kill()
        up.wait(10)
    assert naming.namespace_prefix(lab_id) + "sw" in os.listdir("/run/netns")
    result = haven("lab", "down", "--dir", lab.dir)
    assert result.returncode == 0, result.stderr
    assert leftovers(lab, lab_id) == []
    assert processes_mentioning(lab.dir) == []


def test_down_without_state_cleans_up_by_name(make_lab, leftovers) -> None:
    lab = make_lab()
    st = lab.state()
    pids = lab.pids("node1")
    os.unlink(os.path.join(lab.dir, "lab.json"))  # the state is lost
    report = lab.down()
    assert sorted(report["namespaces"]) == sorted(st.namespaces)
    assert [p for p in pids if is_alive(p)] == []
    assert leftovers(lab, st.id) == []


def test_two_labs_side_by_side(make_lab) -> None:
    first, second = make_lab(), make_lab()
    assert first.state().id != second.state().id
    for lab in (first, second):
        for server in ("node1", "node2"):
            result = lab.exec(server, ["haven", "status", "--json"])
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["node"]["pid"] in lab.pids(server)
        assert lab.reachable("node1", "198.19.0.12")
    first.kill("node1")
    assert lab_state(second, "node1") == "running"
    first.down()
    assert lab_state(second, "node1") == "running"
    assert second.exec("node1", ["haven", "status"]).returncode == 0


def lab_state(lab: Lab, server: str) -> str:
    return next(s["state"] for s in lab.status()["servers"] if server in (s["name"], s["short"]))


def test_long_server_names_with_spaces(make_lab, haven) -> None:
    lab = make_lab(text=long_names_config())
    status = lab.status()
    assert [s["name"] for s in status["servers"]] == LONG_NAMES
    assert [s["short"] for s in status["servers"]] == ["s1", "s2", "s3"]
    for s in status["servers"]:
        assert s["state"] == "running"
        assert s["namespace"] == f"hv{status['id']}-{s['short']}"
    argv = ["lab", "exec", "--dir", lab.dir, LONG_NAMES[2], "--", "haven", "status", "--json"]
    result = haven(*argv)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["server"] == LONG_NAMES[2]
    assert lab.reachable(LONG_NAMES[0], "198.19.0.23")
    result = haven("lab", "kill", "--dir", lab.dir, LONG_NAMES[1])
    assert result.returncode == 0, result.stderr
    assert lab_state(lab, "s2") == "killed"  # the short name works too
    lab.start("s2")
    assert lab_state(lab, LONG_NAMES[1]) == "running"


def test_up_refuses_a_server_on_the_router_address(make_lab) -> None:
    text = long_names_config().replace("198.18.0.22", "198.18.0.1")
    with pytest.raises(LabError, match="router owns"):
        make_lab(text=text)  # and nothing is left behind (checked by the fixture)


def test_up_refuses_a_directory_that_is_not_a_lab(make_lab, example) -> None:
    lab = make_lab(up=False)
    with open(os.path.join(lab.dir, "notes.txt"), "w") as f:
        f.write("mine\n")
    with pytest.raises(LabError, match="not empty"):
        lab.up(example("two-node.toml"))
    lab.down()
    assert os.path.exists(os.path.join(lab.dir, "notes.txt"))  # not ours: left alone
    os.unlink(os.path.join(lab.dir, "notes.txt"))


def test_commands_need_root(two_node_lab: Lab, example) -> None:
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for args in (
        ["up", "--config", example("two-node.toml"), "--dir", "/tmp/hvlab-never"],
        ["kill", "node1", "--dir", two_node_lab.dir],
        ["down", "--dir", two_node_lab.dir],
    ):
        result = subprocess.run(
            [*nobody, sys.executable, "-m", "cli.main", "lab", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip() == "haven: the lab needs root (it creates network namespaces)"
    assert not os.path.exists("/tmp/hvlab-never")
    assert lab_state(two_node_lab, "node1") == "running"
