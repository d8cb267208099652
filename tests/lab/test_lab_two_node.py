"""One lab of config/examples/two-node.toml, broken and repaired: nodes answer through `lab exec`,
every path is reachable, and kill / start / partition / loss / heal / pause / resume do what they
say. Every test leaves the lab as it found it (both nodes running, no fault)."""

from __future__ import annotations

import json
import sys

import pytest

from lab import Lab, LabError
from lab.procs import is_alive

N1_PUBLIC, N2_PUBLIC = "198.18.0.11", "198.18.0.12"
N1_INTER, N2_INTER = "198.19.0.11", "198.19.0.12"
ROUTER = "198.18.0.1"


def lab_status(lab: Lab, server: str) -> dict:
    return next(s for s in lab.status()["servers"] if s["name"] == server)


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def cli(two_node_lab: Lab, haven):
    """`haven ...` with HAVEN_LAB_DIR set to the lab's directory."""
    return lambda *args: haven(*args, lab_dir=two_node_lab.dir)


@pytest.fixture
def lab(two_node_lab: Lab) -> Lab:
    yield two_node_lab
    # whatever the test did: no fault, both nodes running again
    two_node_lab.heal()
    for server in ("node1", "node2"):
        state = lab_status(two_node_lab, server)["state"]
        if state == "paused":
            two_node_lab.resume(server)
        elif state != "running":
            two_node_lab.start(server)


def test_nodes_answer_haven_status_through_lab_exec(lab: Lab, cli) -> None:
    for server in ("node1", "node2"):
        result = cli("lab", "exec", server, "--", "haven", "status", "--json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["server"] == server
        assert status["node"]["state"] == "running"
        assert status["node"]["pid"] == lab_status(lab, server)["pid"]


def test_every_path_is_reachable(lab: Lab) -> None:
    assert lab.reachable("router", N1_PUBLIC)
    assert lab.reachable("router", N2_PUBLIC)
    assert lab.reachable("node1", ROUTER)
    for source, target in (
        ("node1", N2_PUBLIC),
        ("node1", N2_INTER),
        ("node2", N1_PUBLIC),
        ("node2", N1_INTER),
    ):
        assert lab.reachable(source, target), f"{source} -> {target}"
    assert not lab.reachable("router", N1_INTER, timeout=0.2)  # the router is on public only


def test_status_shows_servers_namespaces_addresses(lab: Lab, cli) -> None:
    result = cli("lab", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["phase"] == "up" and status["cluster"] == "two-node"
    assert status["router"]["address"] == ROUTER
    node1 = status["servers"][0]
    assert node1["name"] == "node1" and node1["state"] == "running"
    assert node1["namespace"] == f"hv{status['id']}-node1"
    assert node1["addresses"] == {"public": N1_PUBLIC, "interconnect": N1_INTER}
    assert node1["interfaces"] == {"public": "eth0", "interconnect": "eth1"}
    text = cli("lab", "status").stdout
    assert "node1" in text and "running" in text and "Faults   none" in text


def test_kill_ends_every_process_of_that_server_only(lab: Lab, cli) -> None:
    mine, others = lab.pids("node1"), lab.pids("node2")
    assert len(mine) >= 2 and len(others) >= 2  # a supervisor and its actors
    result = cli("lab", "kill", "node1")
    assert result.returncode == 0, result.stderr
    assert [p for p in mine if is_alive(p)] == []
    assert all(is_alive(p) for p in others)
    assert lab_status(lab, "node1")["state"] == "killed"
    assert lab.exec("node1", ["haven", "status"]).returncode != 0

    result = cli("lab", "start", "node1")
    assert result.returncode == 0, result.stderr
    assert lab_status(lab, "node1")["state"] == "running"
    assert lab.exec("node1", ["haven", "status"]).returncode == 0


def test_partition_one_network_then_heal(lab: Lab, cli, needs_nft: None) -> None:
    result = cli("lab", "partition", "node1", "--network", "interconnect")
    assert result.returncode == 0, result.stderr
    assert not lab.reachable("node1", N2_INTER, timeout=0.3)
    assert not lab.reachable("node2", N1_INTER, timeout=0.3)
    assert lab.reachable("node1", N2_PUBLIC)
    assert lab.reachable("router", N1_PUBLIC)
    assert [f["kind"] for f in lab.status()["faults"]] == ["partition"]

    assert cli("lab", "heal").returncode == 0
    assert lab.reachable("node1", N2_INTER)
    assert lab.status()["faults"] == []
    assert cli("lab", "heal").returncode == 0  # nothing to heal is fine


def test_partition_on_every_network_cuts_the_router_too(lab: Lab, needs_nft: None) -> None:
    lab.partition(["node1"])
    assert not lab.reachable("node1", N2_PUBLIC, timeout=0.3)
    assert not lab.reachable("node1", N2_INTER, timeout=0.3)
    assert not lab.reachable("router", N1_PUBLIC, timeout=0.3)
    assert lab.reachable("router", N2_PUBLIC)
    lab.heal()
    lab.partition(["node1", "router"])  # node1 keeps the router, node2 loses both
    assert lab.reachable("router", N1_PUBLIC)
    assert not lab.reachable("router", N2_PUBLIC, timeout=0.3)


def test_full_loss_then_heal(lab: Lab, cli, needs_nft: None) -> None:
    result = cli("lab", "loss", "node2", "--network", "public", "--percent", "100")
    assert result.returncode == 0, result.stderr
    assert not lab.reachable("router", N2_PUBLIC, timeout=0.3)
    assert not lab.reachable("node1", N2_PUBLIC, timeout=0.3)
    assert lab.reachable("node1", N2_INTER)
    lab.heal()
    assert lab.reachable("router", N2_PUBLIC)


def test_random_loss_drops_about_that_share(lab: Lab, needs_nft: None) -> None:
    lab.loss("node2", "public", 30)
    probe = [sys.executable, "-m", "lab.probe", N2_PUBLIC, "--count", "120", "--timeout", "0.15"]
    result = lab.exec("router", [*probe, "--stats"], timeout=60)
    received = json.loads(result.stdout)["received"]
    # request and reply each pass the lossy port: 0.7 * 0.7 = 49 % answered (about 59 of 120);
    # the timeout leaves room for a busy machine (a late reply would count as lost)
    assert 30 <= received <= 88, received
    lab.loss("node2", "public", 0)  # 0 removes it
    assert lab.status()["faults"] == []


def test_pause_stops_every_process_and_resume_continues(lab: Lab, cli) -> None:
    pids = lab.pids("node2")
    result = cli("lab", "pause", "node2")
    assert result.returncode == 0, result.stderr
    assert {proc_state(p) for p in pids} == {"T"}
    assert lab_status(lab, "node2")["state"] == "paused"
    assert {proc_state(p) for p in lab.pids("node1")} != {"T"}
    result = cli("lab", "resume", "node2")
    assert result.returncode == 0, result.stderr
    assert "T" not in {proc_state(p) for p in pids}
    assert lab_status(lab, "node2")["state"] == "running"
    assert lab.exec("node2", ["haven", "status"]).returncode == 0


def test_exec_passes_the_exit_status_and_sets_the_state_dir(lab: Lab, cli) -> None:
    result = cli("lab", "exec", "router", "--", "sh", "-c", "exit 7")
    assert result.returncode == 7
    result = cli("lab", "exec", "node2", "--", "sh", "-c", 'echo "$HAVEN_STATE_DIR"')
    assert result.stdout.strip() == lab_status(lab, "node2")["state_dir"]
    result = cli("lab", "exec", "node1", "--", "ip", "-brief", "addr", "show", "eth1")
    assert N1_INTER in result.stdout


def test_mistakes_get_one_line_errors(lab: Lab, cli, example) -> None:
    for args in (
        ("lab", "kill", "nosuch"),
        ("lab", "partition", "node1", "--network", "nosuch"),
        ("lab", "loss", "node1", "--network", "public", "--percent", "101"),
        ("lab", "start", "node1"),  # already running
        ("lab", "up", "--config", "nosuch.toml"),
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("haven: ") and "Traceback" not in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = cli("lab", "up", "--config", example("two-node.toml"))
    assert "already up" in result.stderr
    with pytest.raises(LabError, match="unknown server"):
        lab.pause("nosuch")
