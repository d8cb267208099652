"""The COM and disk heartbeats' own rules: a serial line joins two servers; a disk area is
aligned."""

from __future__ import annotations

COM = '[[heartbeat]]\nname = "com1"\ntype = "comhb"\ndevice = "/dev/ttyS0"\n'
DISK = '[[heartbeat]]\nname = "disk1"\ntype = "diskhb"\ndevice = "/dev/sdb1"\n'
NODE3 = """
[[server]]
name = "node3"
addresses = { public = "198.18.0.13", interconnect = "198.19.0.13" }
"""


def test_a_serial_line_joins_two_servers(probe) -> None:
    cfg = probe.valid(COM + 'baud = "115200"\n', typed=True)
    com = cfg.heartbeat("com1")
    assert (com.type, com.servers, com.params) == (
        "comhb",
        ("node1", "node2"),
        {"device": "/dev/ttyS0", "baud": "115200"},
    )


def test_a_serial_line_between_three_servers_is_refused(probe) -> None:
    e = probe.one_error(NODE3 + COM, typed=True)
    assert e.path == ("heartbeat", 1, "servers")
    assert e.message == (
        "a serial line joins exactly two servers; this one would join 3 "
        '("node1", "node2", "node3"): name the two with servers = [...]'
    )
    probe.valid(NODE3 + COM + 'servers = ["node1", "node3"]\n', typed=True)


def test_each_server_names_its_own_end_of_the_line(probe) -> None:
    text = (
        '[[heartbeat]]\nname = "com1"\ntype = "comhb"\n'
        'per_server = { node1 = { device = "com/com1.a" }, node2 = { device = "com/com1.b" } }\n'
    )
    com = probe.valid(text, typed=True).heartbeat("com1")
    assert com.params_for("node2")["device"] == "com/com1.b"


def test_a_disk_area_starts_at_a_multiple_of_4096(probe) -> None:
    assert probe.valid(DISK + "offset = 8192\n", typed=True).heartbeat("disk1").params == {
        "device": "/dev/sdb1",
        "offset": 8192,
    }
    e = probe.one_error(DISK + "offset = 512\n", typed=True)
    assert (e.path, e.message) == (
        ("heartbeat", 1, "offset"),
        "must be a multiple of 4096 (the disk heartbeat's block)",
    )
