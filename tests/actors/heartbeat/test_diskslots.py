"""The disk heartbeat's slots on a real file: layout, direct I/O (`actors/diskio.py`, shared
with disk NP), and the refusals."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import structlog

from actors.diskio import DiskError, SlotArea
from actors.heartbeat.diskslots import SLOT_BYTES, area_bytes, pack_slot, unpack_slot
from actors.heartbeat.frame import FrameError

LOG = structlog.get_logger()


@pytest.fixture
def device(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(area_bytes(4096, 3)))
    return str(path)


def test_each_server_writes_its_own_aligned_slot_and_reads_all(device) -> None:
    disk = SlotArea(device, 4096, 3, LOG)
    try:
        disk.open()
        assert disk.direct  # /tmp is a real file system
        disk.write_slot(1, pack_slot(b"frame of the second server"))
        area, started, ended = disk.read_all()
    finally:
        disk.close()
    assert [len(slot) for slot in area] == [SLOT_BYTES] * 3 and started <= ended
    assert unpack_slot(area[1]) == b"frame of the second server"
    with open(device, "rb") as f:
        assert f.read(4096 + SLOT_BYTES) == bytes(4096 + SLOT_BYTES)  # nothing else was touched


def test_a_slot_that_holds_no_frame_says_why() -> None:
    for raw, why in [
        (bytes(SLOT_BYTES), "empty slot"),
        (b"\x00\x00junk".ljust(SLOT_BYTES, b"\x00"), "garbage"),
        (b"\xff" * SLOT_BYTES, "garbage"),
    ]:
        with pytest.raises(FrameError, match=why):
            unpack_slot(raw)


def test_a_device_too_small_or_a_misaligned_offset_is_refused(device) -> None:
    fds = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(DiskError, match="needs 20480"):
        SlotArea(device, 4096, 4, LOG).open()
    with pytest.raises(DiskError, match="multiple of 4096"):
        SlotArea(device, 512, 2, LOG)
    with pytest.raises(DiskError, match="cannot open"):
        SlotArea(device + ".absent", 0, 2, LOG).open()
    assert sorted(os.listdir("/proc/self/fd")) == fds  # every refusal closed what it opened


def test_without_o_direct_it_falls_back_to_buffered_io_and_says_so(tmp_path) -> None:
    """ramfs refuses O_DIRECT; mounted in a private mount namespace, so nothing is left behind."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1)")
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    script = f"""
import structlog
from actors.diskio import SlotArea
from actors.heartbeat.diskslots import pack_slot, unpack_slot
open("{mnt}/disk.img", "wb").write(bytes(8192))
disk = SlotArea("{mnt}/disk.img", 0, 2, structlog.get_logger())
disk.open()
disk.write_slot(0, pack_slot(b"hello"))
print("direct" if disk.direct else "buffered", unpack_slot(disk.read_all()[0][0]).decode())
disk.close()
"""
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f'mount -t ramfs none "{mnt}" && exec "{sys.executable}" -c \'{script}\''],
        capture_output=True, text=True, timeout=30, cwd=os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "buffered hello"
    assert "without O_DIRECT" in proc.stdout
