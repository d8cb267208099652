"""What each kind of heartbeat actor is started with (supervisor/children.py), from a
configuration file: the positions, the peers, and each path's own arguments."""

from __future__ import annotations

import os

from config import load_config
from supervisor.children import child_specs, heartbeat_args, membership_args

CONFIG = """
[cluster]
name = "paths"
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

[[server]]
name = "node3"
addresses = { public = "198.18.0.13" }

[[heartbeat]]
name = "lan"
type = "lanhb"
network = "public"

[[heartbeat]]
name = "com"
type = "comhb"
servers = ["node1", "node3"]
per_server = { node1 = { device = "com/com.a" }, node3 = { device = "/dev/ttyS1" } }

[[heartbeat]]
name = "disk"
type = "diskhb"
device = "disk/disk.img"
offset = 4096
"""


def load(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text(CONFIG)
    return load_config(str(path)), str(tmp_path)


def test_every_heartbeat_knows_the_positions_of_its_server_and_peers(tmp_path) -> None:
    cfg, _ = load(tmp_path)
    for hb in cfg.heartbeats:
        args = heartbeat_args(cfg, hb, "node3")
        assert args["index"] == 2
        assert args["key_file"] == os.path.join(str(tmp_path), "cluster.key")
    lan, com, disk = (heartbeat_args(cfg, hb, "node3") for hb in cfg.heartbeats)
    assert lan["peers"] == disk["peers"] == {"node1": 0, "node2": 1}
    assert com["peers"] == {"node1": 0}  # the other end of the line, nobody else


def test_lan_arguments(tmp_path) -> None:
    cfg, _ = load(tmp_path)
    args = heartbeat_args(cfg, cfg.heartbeat("lan"), "node1")
    assert (args["address"], args["port"], args["network"]) == ("198.18.0.11", 29002, "public")
    assert args["addresses"] == {"node2": "198.18.0.12", "node3": "198.18.0.13"}


def test_devices_relative_to_the_configuration_file(tmp_path) -> None:
    cfg, base = load(tmp_path)
    com1 = heartbeat_args(cfg, cfg.heartbeat("com"), "node1")
    com3 = heartbeat_args(cfg, cfg.heartbeat("com"), "node3")
    assert (com1["device"], com1["baud"]) == (os.path.join(base, "com/com.a"), 19200)
    assert com3["device"] == "/dev/ttyS1"
    disk = heartbeat_args(cfg, cfg.heartbeat("disk"), "node2")
    assert disk["device"] == os.path.join(base, "disk/disk.img")
    assert (disk["offset"], disk["slots"]) == (4096, 3)


def test_a_server_off_the_serial_line_runs_no_comhb(tmp_path) -> None:
    cfg, _ = load(tmp_path)
    names = [s.name for s in child_specs(cfg, "node2")]
    assert names[:3] == ["alertlog", "hb.lan", "hb.disk"]
    peers = membership_args(cfg, [cfg.heartbeat("lan"), cfg.heartbeat("disk")], "node2")["peers"]
    assert peers == {"node1": ["lan", "disk"], "node3": ["lan", "disk"]}
    kinds = {s.name: s.kind for s in child_specs(cfg, "node1")}
    assert kinds["hb.com"] == "comhb" and kinds["hb.disk"] == "diskhb"
