"""The disk resource on a real loop device: mkfs.ext4, fsck, mount, umount and blockdev for real.

Every test gets its own loop device over a file in tmp_path; the fixture unmounts whatever is
still mounted from it (killing holders) and detaches it, whatever the test did.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from actors.resources import mountinfo
from actors.resources.base import ResourceContext, ResourceError, Why
from actors.resources.disk import DiskDriver
from config.catalog import RESOURCE_TYPES

TOOLS = ("losetup", "mkfs.ext4", "fsck", "blockdev", "mount", "umount", "dumpe2fs")
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = [
    pytest.mark.skipif(bool(missing), reason=f"missing tools: {missing} (apt-get install ...)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mount need root"),
    pytest.mark.skipif(not os.path.exists("/dev/loop-control"), reason="no loop device support"),
]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


def cleanup_mounts(device: str) -> None:
    """Unmount everything of `device`, top mounts first, killing whatever holds them."""
    from actors.resources import holders

    rdev = os.stat(device).st_rdev
    for _ in range(10):
        mounts = mountinfo.of_device(mountinfo.read(), rdev)
        if not mounts:
            return
        for mount in reversed(mounts):
            holders.kill(mount.mount_point, wait=2)
            sh("umount", mount.mount_point, check=False)


@pytest.fixture
def loops(tmp_path) -> Iterator:
    """make(name, mkfs=True) -> a fresh loop device; all of them torn down afterwards."""
    made: list[str] = []

    def make(name: str = "disk", mkfs: bool = True) -> str:
        image = tmp_path / f"{name}.img"
        with open(image, "wb") as f:
            f.truncate(32 * 1024 * 1024)
        made.append(sh("losetup", "--find", "--show", str(image)).stdout.strip())
        if mkfs:
            sh("mkfs.ext4", "-q", made[-1])
        return made[-1]

    yield make
    for device in made:
        cleanup_mounts(device)
        sh("blockdev", "--setrw", device, check=False)
        sh("losetup", "-d", device, check=False)


def disk_params(device: str, mount_point: str, **kw) -> dict:
    defaults = {p.name: p.default for p in RESOURCE_TYPES["disk"].params}
    return {**defaults, "device": device, "mount_point": mount_point, "fs": "ext4", **kw}


def driver(tmp_path, device: str, mount_point: str = "data dir", **kw) -> DiskDriver:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    ctx = ResourceContext(
        server="s1",
        group="g1",
        resource="disk1",
        params=disk_params(device, mount_point, **kw),
        priority=1,
        state_dir=str(state),
        config_dir=str(tmp_path),
        log=structlog.get_logger().bind(resource="disk1"),
    )
    return DiskDriver(ctx)


def read_only(device: str) -> bool:
    return sh("blockdev", "--getro", device).stdout.strip() == "1"


def mount_count(device: str) -> int:
    out = sh("dumpe2fs", "-h", device).stdout
    line = next(x for x in out.splitlines() if x.startswith("Mount count:"))
    return int(line.split(":")[1])


def mounts_at(path: str) -> list[mountinfo.Mount]:
    return [m for m in mountinfo.read() if m.mount_point == path]


def test_start_mounts_read_write_and_stop_leaves_the_disk_read_only(tmp_path, loops):
    device = loops()
    d = driver(tmp_path, device, fsck_interval=0)
    mount_point = str(tmp_path / "data dir")
    assert d.details() == {"device": device, "mount_point": mount_point}

    asyncio.run(d.start(Why()))
    assert asyncio.run(d.active())
    mount = mounts_at(mount_point)
    assert len(mount) == 1 and mount[0].fs_type == "ext4" and not mount[0].read_only
    assert not read_only(device)
    (tmp_path / "data dir" / "kept").write_text("yes")

    asyncio.run(d.stop(Why()))
    assert not asyncio.run(d.active())
    assert mounts_at(mount_point) == []
    assert read_only(device)

    asyncio.run(d.start(Why()))  # read-only from the stop: start makes it writable again
    assert (tmp_path / "data dir" / "kept").read_text() == "yes"
    (tmp_path / "data dir" / "again").write_text("writable")
    asyncio.run(d.stop(Why()))


def test_start_and_stop_twice_do_it_once(tmp_path, loops):
    device = loops()
    d = driver(tmp_path, device, fsck_interval=0)
    mount_point = str(tmp_path / "data dir")
    asyncio.run(d.start(Why()))
    asyncio.run(d.start(Why()))
    assert len(mounts_at(mount_point)) == 1
    asyncio.run(d.stop(Why()))
    asyncio.run(d.stop(Why()))
    assert mounts_at(mount_point) == [] and read_only(device)


def test_active_compares_the_device_number_not_its_name(tmp_path, loops):
    device = loops()
    alias = tmp_path / "by-id-link"
    alias.symlink_to(device)
    d = driver(tmp_path, str(alias), fsck_interval=0)
    asyncio.run(d.start(Why()))
    assert mounts_at(str(tmp_path / "data dir"))[0].source == device  # the kernel's name
    assert asyncio.run(d.active())
    asyncio.run(d.start(Why()))  # still recognised as mounted: no second mount, no error
    asyncio.run(d.stop(Why()))
    assert not asyncio.run(d.active())


def test_another_filesystem_on_the_mount_point_is_refused(tmp_path, loops):
    device = loops()
    mount_point = tmp_path / "data dir"
    mount_point.mkdir()
    sh("mount", "-t", "tmpfs", "squatter", str(mount_point))
    try:
        d = driver(tmp_path, device, fsck_interval=0)
        with pytest.raises(ResourceError, match=r"squatter \(tmpfs\) is already mounted on"):
            asyncio.run(d.start(Why()))
        assert not asyncio.run(d.active())
        asyncio.run(d.stop(Why()))  # not ours: left mounted, the disk made read-only
        assert [m.fs_type for m in mounts_at(str(mount_point))] == ["tmpfs"]
        assert read_only(device)
    finally:
        sh("umount", str(mount_point), check=False)


def test_device_mounted_elsewhere_is_refused(tmp_path, loops):
    device = loops()
    other = tmp_path / "other"
    other.mkdir()
    sh("mount", device, str(other))
    d = driver(tmp_path, device, fsck_interval=0)
    with pytest.raises(ResourceError, match=f"{device} is already mounted on {other}"):
        asyncio.run(d.start(Why()))
    with pytest.raises(ResourceError, match="unmount it there by hand"):
        asyncio.run(d.stop(Why()))
    assert not asyncio.run(d.active())
    assert [m.mount_point for m in mountinfo.of_device(mountinfo.read(), os.stat(device).st_rdev)]
    assert [m.mount_point for m in mounts_at(str(other))] == [str(other)]


def test_wrong_fs_type_fails_with_mounts_message_after_each_attempt(tmp_path, loops):
    device = loops()
    d = driver(tmp_path, device, fs="xfs", fsck_interval=0, mount_retry=1)
    with capture_logs() as logs, pytest.raises(ResourceError) as failed:
        asyncio.run(d.start(Why()))
    message = str(failed.value)
    assert f"cannot mount {device} on {tmp_path / 'data dir'} (xfs) after 2 attempt(s)" in message
    assert "wrong fs type" in message
    assert [e["attempt"] for e in logs if e["event"] == "mount failed"] == [1, 2]
    assert not asyncio.run(d.active())


def test_stuck_umount_kills_the_holders_and_names_them(tmp_path, loops, processes):
    device = loops()
    d = driver(tmp_path, device, fsck_interval=0, umount_retry=1, umount_failure="kill")
    asyncio.run(d.start(Why()))
    inside = tmp_path / "data dir"
    (inside / "log").write_text("")
    in_cwd = subprocess.Popen(["sleep", "60"], cwd=inside)
    open_file = subprocess.Popen(["sh", "-c", 'exec 3>>"$1"; exec sleep 60', "sh", inside / "log"])
    processes += [in_cwd, open_file]
    wait_until(lambda: holds_file(open_file.pid, inside / "log"))

    with capture_logs() as logs:
        asyncio.run(d.stop(Why()))
    assert in_cwd.wait(timeout=5) == -9 and open_file.wait(timeout=5) == -9
    (event,) = [e for e in logs if e["event"] == "killed the processes holding the mount point"]
    assert f"{in_cwd.pid} (sleep: cwd {inside})" in event["killed"]
    assert f"{open_file.pid} (sleep: open {inside / 'log'})" in event["killed"]
    assert not asyncio.run(d.active()) and read_only(device)


def test_holders_by_executable_and_by_mapped_library_are_found_too(tmp_path, loops, processes):
    """Neither has an open file descriptor nor its current folder on the mount. (No space in
    this mount point: LD_PRELOAD splits at spaces.)"""
    lib = next(
        p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/libz.so.1") if os.path.exists(p)
    )
    device = loops()
    d = driver(tmp_path, device, "data", fsck_interval=0, umount_retry=1)
    asyncio.run(d.start(Why()))
    inside = tmp_path / "data"
    shutil.copy(shutil.which("sleep"), inside / "sleep")
    shutil.copy(lib, inside / "libz.so.1")
    by_exe = subprocess.Popen([inside / "sleep", "60"], cwd="/")
    by_map = subprocess.Popen(
        ["sleep", "60"], cwd="/", env={"LD_PRELOAD": str(inside / "libz.so.1")}
    )
    processes += [by_exe, by_map]
    wait_until(lambda: str(inside / "libz.so.1") in Path(f"/proc/{by_map.pid}/maps").read_text())
    wait_until(lambda: os.readlink(f"/proc/{by_exe.pid}/exe") == str(inside / "sleep"))

    with capture_logs() as logs:
        asyncio.run(d.stop(Why()))
    (event,) = [e for e in logs if e["event"] == "killed the processes holding the mount point"]
    assert f"{by_exe.pid} (sleep: exe {inside / 'sleep'})" in event["killed"]
    assert f"{by_map.pid} (sleep: mapped {inside / 'libz.so.1'})" in event["killed"]
    assert by_exe.wait(timeout=5) == -9 and by_map.wait(timeout=5) == -9


def test_holders_are_named_not_killed_when_umount_failure_is_none(tmp_path, loops, processes):
    device = loops()
    d = driver(tmp_path, device, fsck_interval=0, umount_retry=1, umount_failure="none")
    asyncio.run(d.start(Why()))
    holder = subprocess.Popen(["sleep", "60"], cwd=tmp_path / "data dir")
    processes.append(holder)
    wait_until(lambda: os.readlink(f"/proc/{holder.pid}/cwd") == str(tmp_path / "data dir"))
    with pytest.raises(ResourceError) as failed:
        asyncio.run(d.stop(Why()))
    assert "after 2 attempt(s)" in str(failed.value) and "target is busy" in str(failed.value)
    assert f"held by {holder.pid} (sleep: cwd {tmp_path / 'data dir'})" in str(failed.value)
    assert holder.poll() is None and asyncio.run(d.active())


def test_fsck_runs_every_nth_mount(tmp_path, loops):
    """`fsck -f` resets ext4's mount count, which each mount raises: the count after each mount
    shows which mounts were checked (every second one here)."""
    device = loops()
    d = driver(tmp_path, device, fsck_interval=2, fsck_options="-f -y")
    counts = []
    for _ in range(5):
        asyncio.run(d.start(Why()))
        asyncio.run(d.stop(Why()))
        counts.append(mount_count(device))
    assert counts == [1, 1, 2, 1, 2]


def test_fsck_interval_zero_never_checks(tmp_path, loops):
    device = loops()
    d = driver(tmp_path, device, fsck_interval=0, fsck_options="-f -y")
    for _ in range(3):
        asyncio.run(d.start(Why()))
        asyncio.run(d.stop(Why()))
    assert mount_count(device) == 3


def test_fsck_that_cannot_repair_fails_the_start_before_any_mount(tmp_path, loops):
    device = loops(mkfs=False)  # all zeros: no superblock anywhere
    d = driver(tmp_path, device, fsck_interval=1)
    with pytest.raises(ResourceError, match=f"fsck of {device} .*exit 8"):
        asyncio.run(d.start(Why()))
    assert mounts_at(str(tmp_path / "data dir")) == []
    unchecked = driver(tmp_path, device, fsck_interval=0, mount_retry=0)
    with pytest.raises(ResourceError, match="cannot mount"):  # mount's error: fsck was skipped
        asyncio.run(unchecked.start(Why()))


def test_fsck_that_repaired_errors_lets_the_start_go_on(tmp_path, loops):
    device = loops()
    with open(device, "r+b") as f:  # the primary superblock and root folder gone: exit 1
        f.write(bytes(2 * 1024 * 1024))
    d = driver(tmp_path, device, fsck_interval=1)
    asyncio.run(d.start(Why()))
    assert asyncio.run(d.active())
    asyncio.run(d.stop(Why()))


def test_standby_keeps_the_disk_read_only_until_the_owner_starts_it(tmp_path, loops):
    device = loops()
    d = driver(tmp_path, device, fsck_interval=1)  # fsck needs the device writable
    asyncio.run(d.standby())
    assert read_only(device)
    denied = sh("dd", "if=/dev/zero", f"of={device}", "bs=4096", "count=1", check=False)
    assert denied.returncode != 0
    asyncio.run(d.start(Why()))
    assert not read_only(device)
    (tmp_path / "data dir" / "f").write_text("written")
    asyncio.run(d.stop(Why()))


def test_standby_on_a_server_where_the_disk_is_mounted_says_so(tmp_path, loops):
    device = loops()
    other = tmp_path / "stray"
    other.mkdir()
    sh("mount", device, str(other))
    d = driver(tmp_path, device)
    with pytest.raises(ResourceError, match=f"mounted on {other} on this server"):
        asyncio.run(d.standby())
    assert read_only(device)


def holds_file(pid: int, path) -> bool:
    fds = f"/proc/{pid}/fd"
    return any(os.readlink(f"{fds}/{fd}") == str(path) for fd in os.listdir(fds))


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
