"""Heartbeat devices of the lab: a socat pty pair (COM heartbeat) and a shared file (disk
heartbeat); `down` removes both."""

from __future__ import annotations

import os
import select
import tempfile

import pytest

from lab import LabError, devices
from lab.procs import is_alive


@pytest.fixture
def directory():
    d = tempfile.mkdtemp(prefix="hvdev-", dir="/tmp")
    yield d
    for root, dirs, files in os.walk(d, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(d)


def read_within(fd: int, n: int, timeout: float = 2.0) -> bytes:
    data = b""
    while len(data) < n and select.select([fd], [], [], timeout)[0]:
        data += os.read(fd, n - len(data))
    return data


def test_pty_pair_carries_bytes_both_ways(directory: str, needs_socat: None) -> None:
    record = devices.pty_pair(directory, "com hb/1")
    a, b = record["ends"]
    assert a == os.path.join(directory, "com", "com_hb_1.a")
    assert os.path.realpath(a).startswith("/dev/pts/")
    fa = os.open(a, os.O_RDWR | os.O_NOCTTY)
    fb = os.open(b, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fa, b"beat 1\n")
        assert read_within(fb, 7) == b"beat 1\n"
        os.write(fb, b"\x00\xffbinary")
        assert read_within(fa, 8) == b"\x00\xffbinary"
    finally:
        os.close(fa)
        os.close(fb)
    with pytest.raises(LabError, match="already exists"):
        devices.pty_pair(directory, "com hb/1")
    devices.remove(record)
    assert not is_alive(record["pid"], record["start_time"])
    assert not os.path.lexists(a) and not os.path.lexists(b)
    devices.remove(record)  # again: nothing to do


def test_shared_file_has_its_size_and_goes_away(directory: str) -> None:
    record = devices.shared_file(directory, "disk hb", 1 << 20)
    assert os.path.getsize(record["path"]) == 1 << 20
    with open(record["path"], "rb") as f:
        assert f.read(4096) == bytes(4096)
    with pytest.raises(LabError):
        devices.shared_file(directory, "bad", 0)
    devices.remove(record)
    assert not os.path.exists(record["path"])


def test_lab_devices_are_shared_by_servers_and_removed_by_down(make_lab, needs_socat) -> None:
    lab = make_lab()
    pair = lab.add_pty_pair("com1")
    disk = lab.add_shared_file("disk1", 64 * 1024)
    assert [d["name"] for d in lab.status()["devices"]] == ["com1", "disk1"]
    write = f"open({disk['path']!r}, 'r+b').write(b'node1 was here')"
    assert lab.exec("node1", ["python3", "-c", write]).returncode == 0
    read = f"print(open({disk['path']!r}, 'rb').read(14).decode())"
    assert lab.exec("node2", ["python3", "-c", read]).stdout.strip() == "node1 was here"
    lab.down()
    assert not is_alive(pair["pid"], pair["start_time"])
    assert not os.path.exists(lab.dir)
