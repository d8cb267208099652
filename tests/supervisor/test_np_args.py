"""What the lease NP actors are started with (supervisor/children.py), and that the fencing
wait covers their worst-case checks."""

from __future__ import annotations

import pytest

from actors.membership.resolution import NP_REQUEST_MARGIN
from actors.np.disklease import check_time as disk_check_time
from config import load_config
from supervisor.children import child_specs, cluster_fence_wait, membership_args

CONFIG = """
[cluster]
name = "leases"
key_file = "cluster.key"

[[network]]
name = "public"
subnet = "198.18.0.0/24"

[[server]]
name = "node1"
addresses = { public = "198.18.0.11" }

[[server]]
name = "node2"
addresses = { public = "198.18.0.12" }

[node]
stop_timeout = "5s"

[[heartbeat]]
name = "lan"
type = "lanhb"
network = "public"

[[np]]
name = "disk"
type = "disknp"
device = "disk/disk.img"
lease = "8s"
io_timeout = "2s"
per_server = { node2 = { device = "/dev/sdc1" } }

[[np]]
name = "w"
type = "witness"
url = "http://198.18.0.1"
timeout = "1s"
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text(CONFIG)
    return load_config(str(path))


def specs(cfg, server: str) -> dict:
    return {s.name: s for s in child_specs(cfg, server)}


def test_lease_actors_are_critical_and_start_before_membership(cfg) -> None:
    names = list(specs(cfg, "node1"))
    assert names.index("np.disk") < names.index("membership")
    assert names.index("np.w") < names.index("membership")
    assert specs(cfg, "node1")["np.w"].critical and specs(cfg, "node1")["np.disk"].critical


def test_disk_lease_args_name_the_area_the_slots_and_the_hold(cfg, tmp_path) -> None:
    one, two = specs(cfg, "node1")["np.disk"].args, specs(cfg, "node2")["np.disk"].args
    assert one["device"] == str(tmp_path / "disk" / "disk.img")  # relative to the file
    assert two["device"] == "/dev/sdc1"
    assert one["servers"] == two["servers"] == ["node1", "node2"]
    assert one["key_file"] == str(tmp_path / "cluster.key")
    assert one["hold"] == two["hold"] == cluster_fence_wait(cfg)
    assert one["on_isolation"] == "shutdown"


def test_witness_args(cfg) -> None:
    args = specs(cfg, "node2")["np.w"].args
    assert args["url"] == "http://198.18.0.1" and args["hold"] == cluster_fence_wait(cfg)


def test_the_fencing_wait_covers_every_lease_check(cfg) -> None:
    m = membership_args(cfg, list(cfg.heartbeats), "node1")
    checks = {np["name"]: np["check_time"] for np in m["np"]}
    assert checks == {"disk": disk_check_time(8.0, 2.0), "w": 2.0}
    assert checks["disk"] > 8.0 + 2 * 2.0  # the window is longer than the lease, and more
    assert m["fence_wait"] >= sum(t + NP_REQUEST_MARGIN for t in checks.values()) + 5.0
