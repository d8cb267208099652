"""The nas resource, and the mountinfo reading it relies on.

This kernel has no NFS client, so no share can really be mounted. The real mount.nfs is run for
the failure; everything else runs on real mounts of a tmpfs whose source reads `server:share`,
standing in for the NFS mount (the driver only ever compares sources, never filesystem types).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from actors.resources import mountinfo
from actors.resources.base import ResourceContext, ResourceError, Why
from actors.resources.nas import NasDriver
from config.catalog import RESOURCE_TYPES

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount needs root")
SHARE = "/export/data"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture
def mount_point(tmp_path) -> Iterator[str]:
    """A mount point with a space in its name; whatever is mounted there is unmounted after."""
    from actors.resources import holders

    path = tmp_path / "nas share"
    yield str(path)
    deadline = time.monotonic() + 10
    while any(m.mount_point == str(path) for m in mountinfo.read()):
        assert time.monotonic() < deadline, f"cannot clean up the mounts on {path}"
        holders.kill(str(path), wait=2)
        sh("umount", str(path), check=False)


def driver(tmp_path, mount_point: str, server: str = "127.0.0.1", **kw) -> NasDriver:
    defaults = {p.name: p.default for p in RESOURCE_TYPES["nas"].params}
    params = {**defaults, "server": server, "share": SHARE, "mount_point": mount_point, **kw}
    ctx = ResourceContext(
        server="s1",
        group="g1",
        resource="nas1",
        params=params,
        priority=1,
        state_dir=str(tmp_path),
        config_dir=str(tmp_path),
        log=structlog.get_logger().bind(resource="nas1"),
    )
    return NasDriver(ctx)


def stand_in(source: str, path: str) -> None:
    """A tmpfs mounted from `source`: what an NFS mount of that share looks like in mountinfo."""
    os.makedirs(path, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "size=1m", source, path)


def mounts_at(path: str) -> list[mountinfo.Mount]:
    return [m for m in mountinfo.read() if m.mount_point == path]


@needs_root
@pytest.mark.skipif(shutil.which("mount.nfs") is None, reason="no mount.nfs (nfs-common)")
def test_failed_nfs_mount_gives_mounts_message(tmp_path, mount_point):
    """Here the kernel has no NFS ("No such device"); where it has one, nothing serves NFS on
    127.0.0.1 and the attempt ends at mount_timeout. Either way: one attempt, a clear error."""
    d = driver(tmp_path, mount_point, mount_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(ResourceError) as failed:
        asyncio.run(d.start(Why()))
    assert time.monotonic() - started < 8
    message = str(failed.value)
    assert message.startswith(f"cannot mount 127.0.0.1:{SHARE} on {mount_point} (nfs): mount")
    assert "mount.nfs:" in message or "within its timeout" in message
    assert os.path.isdir(mount_point) and not asyncio.run(d.active())


@needs_root
def test_start_active_stop_with_a_stand_in_filesystem(tmp_path, mount_point):
    d = driver(tmp_path, mount_point, fs="tmpfs", mount_options="rw,size=1m")
    assert d.details() == {"source": f"127.0.0.1:{SHARE}", "mount_point": mount_point}
    asyncio.run(d.start(Why()))
    assert asyncio.run(d.active())
    asyncio.run(d.start(Why()))
    assert [m.source for m in mounts_at(mount_point)] == [f"127.0.0.1:{SHARE}"]
    asyncio.run(d.stop(Why()))
    assert not asyncio.run(d.active()) and mounts_at(mount_point) == []
    asyncio.run(d.stop(Why()))


@needs_root
def test_share_already_mounted_is_not_mounted_again(tmp_path, mount_point):
    """fs stays "nfs": were mount.nfs run, it would fail on this kernel."""
    stand_in(f"127.0.0.1:{SHARE}/", mount_point)  # written with a trailing slash
    d = driver(tmp_path, mount_point)
    assert asyncio.run(d.active())
    asyncio.run(d.start(Why()))
    assert len(mounts_at(mount_point)) == 1
    asyncio.run(d.stop(Why()))
    assert mounts_at(mount_point) == []


@needs_root
def test_ipv6_server_is_written_in_brackets(tmp_path, mount_point):
    stand_in(f"[fd00::5]:{SHARE}", mount_point)
    d = driver(tmp_path, mount_point, server="fd00::5")
    assert d.details()["source"] == f"[fd00::5]:{SHARE}"
    assert asyncio.run(d.active())


@needs_root
def test_another_filesystem_on_the_mount_point_is_refused_and_left_alone(tmp_path, mount_point):
    stand_in("nas2:/other", mount_point)
    d = driver(tmp_path, mount_point)
    with pytest.raises(ResourceError, match=r"nas2:/other \(tmpfs\) is already mounted on"):
        asyncio.run(d.start(Why()))
    assert not asyncio.run(d.active())
    asyncio.run(d.stop(Why()))
    assert [m.source for m in mounts_at(mount_point)] == ["nas2:/other"]


@needs_root
def test_busy_mount_holders_are_killed_then_it_is_unmounted(tmp_path, mount_point, processes):
    stand_in(f"127.0.0.1:{SHARE}", mount_point)
    holder = subprocess.Popen(["sleep", "60"], cwd=mount_point)
    processes.append(holder)
    deadline = time.monotonic() + 5
    while os.readlink(f"/proc/{holder.pid}/cwd") != mount_point:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    d = driver(tmp_path, mount_point)
    with capture_logs() as logs:
        asyncio.run(d.stop(Why()))
    assert holder.wait(timeout=5) == -9
    assert mounts_at(mount_point) == []
    (umount, killed) = [e for e in logs if e["log_level"] == "warning"]
    assert "target is busy" in umount["error"]
    assert killed["killed"] == f"{holder.pid} (sleep: cwd {mount_point})"


# --- mountinfo, on text as the kernel writes it ---------------------------------------------

SAMPLE = rb"""22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
30 22 0:25 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
41 22 0:45 / /srv/my\040share\011tab\134back rw shared:20 master:3 - nfs4 nas1:/a\040b rw,vers=4.2
42 22 7:3 / /mnt/data ro,relatime - ext4 /dev/loop3 ro
43 42 0:46 / /mnt/data rw,relatime - nfs nas1:/export rw,vers=3
44 22 7:3 /sub /mnt/bind rw - ext4 /dev/loop3 rw
this line is not mountinfo
"""


def test_mountinfo_unescapes_paths_and_reads_optional_fields():
    mounts = mountinfo.parse(SAMPLE)
    assert len(mounts) == 6
    share = mountinfo.at(mounts, "/srv/my share\ttab\\back")
    assert share is not None
    assert (share.mount_id, share.fs_type, share.source) == (41, "nfs4", "nas1:/a b")
    assert share.super_options.startswith("rw,vers=4.2")
    assert mountinfo.parse(SAMPLE.decode())[2] == share  # text or bytes alike


def test_mountinfo_the_visible_mount_is_the_one_on_top():
    mounts = mountinfo.parse(SAMPLE)
    top = mountinfo.at(mounts, "/mnt/data")
    assert top is not None and (top.mount_id, top.source) == (43, "nas1:/export")
    assert mountinfo.at(mounts, "/mnt") is None


def test_mountinfo_finds_a_device_by_number_and_mounts_below_a_path():
    mounts = mountinfo.parse(SAMPLE)
    loop3 = os.makedev(7, 3)
    assert [m.mount_point for m in mountinfo.of_device(mounts, loop3)] == ["/mnt/data", "/mnt/bind"]
    assert mountinfo.of_device(mounts, loop3)[0].read_only
    assert [m.mount_id for m in mountinfo.under(mounts, "/mnt/data")] == [42, 43]
    assert [m.mount_id for m in mountinfo.under(mounts, "/mnt/dat")] == []
