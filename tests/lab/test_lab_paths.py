"""A lab of config/examples/two-node-paths.toml: `haven lab up` makes the COM line (a socat pty
pair) and the shared disk file the configuration names, every path settles `normal`, and cutting
every network brings nobody down — the serial line and the disk still carry the beats."""

from __future__ import annotations

import json
import os
import time

import pytest

from bus.paths import NodePaths
from bus.rpc import Client
from lab import Lab, LabError
from supervisor.node_actions import RECORD_FILE

PATHS = ("lanhb1", "lanhb2", "comhb1", "diskhb1")
TIMEOUT = 2.0  # the example's profile: default (500 ms / 2 s)


def status(lab: Lab, server: str) -> dict:
    result = lab.exec(server, ["haven", "status", "--json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def request(lab: Lab, server: str, service: str, method: str) -> dict:
    """A request to one of the server's actors (its unix socket is reachable from here)."""
    paths = NodePaths(Lab.server(lab.state(), server).state_dir)
    with Client(paths.service_endpoint(service), "test/lab") as client:
        return client.request(method, timeout=5.0)


def view(st: dict) -> dict[str, tuple[str, dict[str, str]]]:
    """server -> (state, {heartbeat: path state}) as one server sees the others."""
    return {s["name"]: (s["state"], s["heartbeats"]) for s in st["servers"] if s["heartbeats"]}


def wait(lab: Lab, server: str, predicate, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = status(lab, server)
        if predicate(st):
            return st
        assert time.monotonic() < deadline, json.dumps(st, indent=1)[:3000]
        time.sleep(0.2)


def every_path(state: str, node_state: str = "online"):
    return lambda st: all(
        s == node_state and hbs == dict.fromkeys(PATHS, state) for s, hbs in view(st).values()
    )


@pytest.fixture
def lab(make_lab, example, needs_socat) -> Lab:
    lab = make_lab(example("two-node-paths.toml"))
    for server in ("node1", "node2"):
        wait(lab, server, every_path("normal"))
    return lab


def test_lab_up_makes_the_configured_devices_and_every_path_settles_normal(lab: Lab) -> None:
    made = {d["name"]: d for d in lab.status()["devices"]}
    assert set(made) == {"comhb1", "diskhb1"}
    assert made["comhb1"]["ends"] == [os.path.join(lab.dir, "com", f"comhb1.{e}") for e in "ab"]
    assert made["diskhb1"]["path"] == os.path.join(lab.dir, "disk", "diskhb1.img")
    for server in ("node1", "node2"):
        com, disk = (request(lab, server, f"hb.{hb}", "stats") for hb in ("comhb1", "diskhb1"))
        assert com["line_failures"] == 0 and com["dropped"] == {}
        assert disk["direct_io"] is True and disk["dropped"] == {} and disk["io_errors"] == 0


@pytest.mark.slow
@pytest.mark.ci
def test_cutting_every_network_brings_nobody_down(lab: Lab, needs_nft) -> None:
    lab.partition(["node2"])  # every network, the router too
    lan_lost = {"lanhb1": "error", "lanhb2": "error", "comhb1": "normal", "diskhb1": "normal"}
    for server, peer in (("node1", "node2"), ("node2", "node1")):
        wait(lab, server, lambda st, p=peer: view(st)[p][1] == lan_lost)
    time.sleep(TIMEOUT + 1.0)  # well past the timeout: the COM and disk paths keep both up
    for server, peer in (("node1", "node2"), ("node2", "node1")):
        assert view(status(lab, server))[peer] == ("online", lan_lost)
        assert not os.path.exists(os.path.join(lab.dir, server, "state", RECORD_FILE))
    lab.heal()
    for server in ("node1", "node2"):
        wait(lab, server, every_path("normal"))


def test_lab_up_refuses_device_paths_it_does_not_make(make_lab, example, tmp_path) -> None:
    with open(example("two-node-paths.toml")) as f:
        text = f.read().replace('device = "com/comhb1.a"', 'device = "/dev/ttyS0"')
    config = tmp_path / "cluster.toml"
    config.write_text(text)
    lab = make_lab(str(config), up=False)
    with pytest.raises(LabError, match='has device "/dev/ttyS0"; in the lab it must be'):
        lab.up(str(config))
    assert os.listdir(lab.dir) == []  # refused before anything was made
