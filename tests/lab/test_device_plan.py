"""Which devices `haven lab up` makes for a configuration, and the paths it accepts (pure: no
root needed, nothing is made)."""

from __future__ import annotations

import os

import pytest

from config import DEFAULT_TYPES, check_text, load_config
from lab import LabError
from lab.device_plan import MIN_FILE_BYTES, DeviceNeed, lab_devices

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATHS_EXAMPLE = os.path.join(REPO, "config", "examples", "two-node-paths.toml")

BASE = """
[cluster]
name = "c"
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
"""


def cluster(text: str):
    types = DEFAULT_TYPES.with_implemented(np=["disknp"])  # whether built yet or not
    cfg, issues = check_text(BASE + text, "cluster.toml", types=types)
    assert cfg is not None, "\n".join(map(str, issues))
    return cfg


def test_the_paths_example_gets_a_pty_pair_and_a_shared_file() -> None:
    assert lab_devices(load_config(PATHS_EXAMPLE)) == [
        DeviceNeed("pty", "comhb1"),
        DeviceNeed("file", "diskhb1", MIN_FILE_BYTES),
    ]


def test_the_examples_without_such_heartbeats_need_no_device() -> None:
    assert lab_devices(load_config(os.path.join(REPO, "config", "examples", "two-node.toml"))) == []


def test_the_line_ends_follow_the_order_of_the_servers_and_names_are_made_safe() -> None:
    text = """
[[heartbeat]]
name = "com 1"
type = "comhb"
servers = ["node3", "node2"]
per_server = { node2 = { device = "com/com_1.a" }, node3 = { device = "./com/com_1.b" } }
[[heartbeat]]
name = "disk"
type = "diskhb"
device = "disk/disk.img"
offset = 1048576
[[np]]
name = "lease"
type = "disknp"
device = "disk/lease.img"
"""
    assert lab_devices(cluster(text)) == [
        DeviceNeed("pty", "com 1"),
        DeviceNeed("file", "disk", 1048576 + 3 * 4096),
        DeviceNeed("file", "lease", MIN_FILE_BYTES),
    ]


def test_paths_the_lab_does_not_make_are_refused_with_the_expected_ones() -> None:
    text = """
[[heartbeat]]
name = "com"
type = "comhb"
servers = ["node1", "node2"]
per_server = { node1 = { device = "/dev/ttyS0" }, node2 = { device = "com/com.a" } }
[[heartbeat]]
name = "disk"
type = "diskhb"
device = "/dev/sdb1"
per_server = { node2 = { device = "disk/disk.img" } }
"""
    with pytest.raises(LabError) as e:
        lab_devices(cluster(text))
    lines = str(e.value).splitlines()
    assert lines[0] == "the configuration's devices do not fit the lab:"
    assert lines[1].startswith(
        'heartbeat "com" (comhb): server "node1" has device "/dev/ttyS0"; in the lab it must be '
        '"com/com.a"'
    )
    assert lines[2].startswith('heartbeat "com" (comhb): server "node2" has device "com/com.a"; ')
    assert '"com/com.b"' in lines[2]
    assert [line.split(":")[1].split(";")[0] for line in lines[3:]] == [
        ' server "node1" has device "/dev/sdb1"',
        ' server "node3" has device "/dev/sdb1"',
    ]
