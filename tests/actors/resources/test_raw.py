"""The raw resource on a real loop device: blockdev for real, and writes that the kernel lets
through or refuses.

Every test gets its own loop device over a file in tmp_path; the fixture unmounts what is still
mounted from it and detaches it, whatever the test did.
"""

from __future__ import annotations

import asyncio
import errno
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
from actors.resources.raw import RawDriver

TOOLS = ("losetup", "blockdev", "mkfs.ext4", "mount", "umount")
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = [
    pytest.mark.skipif(bool(missing), reason=f"missing tools: {missing} (apt-get install ...)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and blockdev need root"),
    pytest.mark.skipif(not os.path.exists("/dev/loop-control"), reason="no loop device support"),
]

REFUSED = (errno.EPERM, errno.EROFS, errno.EACCES)  # EACCES: kernels that refuse the open


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


@pytest.fixture
def loop(tmp_path) -> Iterator[str]:
    """A fresh, blank loop device (read-write, as the kernel makes it)."""
    image = tmp_path / "raw.img"
    with open(image, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    device = sh("losetup", "--find", "--show", str(image)).stdout.strip()
    try:
        yield device
    finally:
        rdev = os.stat(device).st_rdev
        for mount in reversed(mountinfo.of_device(mountinfo.read(), rdev)):
            sh("umount", "-l", mount.mount_point, check=False)
        sh("blockdev", "--setrw", device, check=False)
        sh("losetup", "-d", device, check=False)


def driver(tmp_path, device: str) -> RawDriver:
    ctx = ResourceContext(
        server="s1",
        group="g1",
        resource="raw1",
        params={"device": device},
        priority=1,
        state_dir=str(tmp_path),
        config_dir=str(tmp_path),
        log=structlog.get_logger().bind(resource="raw1"),
    )
    return RawDriver(ctx)


def read_only(device: str) -> bool:
    return sh("blockdev", "--getro", device).stdout.strip() == "1"


def write_block(device: str, data: bytes) -> None:
    """One block at the start of the device, flushed so it really reaches the device."""
    fd = os.open(device, os.O_WRONLY)
    try:
        os.write(fd, data.ljust(4096, b"\0"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_block(device: str) -> bytes:
    with open(device, "rb", buffering=0) as f:
        return f.read(4096)


def assert_write_refused(device: str) -> None:
    with pytest.raises(OSError) as refused:
        write_block(device, b"must not land")
    assert refused.value.errno in REFUSED
    assert not read_block(device).startswith(b"must not land")


def test_start_makes_the_device_writable_and_stop_read_only(tmp_path, loop):
    d = driver(tmp_path, loop)
    assert d.details() == {"device": loop}
    sh("blockdev", "--setro", loop)  # as standby or a previous stop leaves it

    asyncio.run(d.start(Why()))
    assert not read_only(loop) and asyncio.run(d.active())
    write_block(loop, b"owner's data")
    assert read_block(loop).startswith(b"owner's data")

    asyncio.run(d.stop(Why()))
    assert read_only(loop) and not asyncio.run(d.active())
    assert_write_refused(loop)
    assert read_block(loop).startswith(b"owner's data")


def test_start_and_stop_twice_are_safe(tmp_path, loop):
    d = driver(tmp_path, loop)
    asyncio.run(d.start(Why()))
    asyncio.run(d.start(Why()))
    write_block(loop, b"still writable")
    asyncio.run(d.stop(Why()))
    asyncio.run(d.stop(Why()))
    assert read_only(loop)
    assert_write_refused(loop)


def test_standby_keeps_the_device_read_only_until_the_owner_starts_it(tmp_path, loop):
    d = driver(tmp_path, loop)
    asyncio.run(d.standby())
    assert read_only(loop) and not asyncio.run(d.active())
    assert_write_refused(loop)
    asyncio.run(d.start(Why()))
    write_block(loop, b"owner")


def test_stop_names_the_processes_still_using_it_and_their_writes_fail(tmp_path, loop, processes):
    """Not killed: the read-only flag alone stops their writes, even through a descriptor they
    opened while the device was writable."""
    d = driver(tmp_path, loop)
    asyncio.run(d.start(Why()))
    user = subprocess.Popen(["sh", "-c", 'exec 3<>"$1"; exec sleep 60', "sh", loop])
    processes.append(user)
    wait_until(lambda: holds(user.pid, loop))
    opened_before = os.open(loop, os.O_WRONLY)
    try:
        with capture_logs() as logs:
            asyncio.run(d.stop(Why()))
        with pytest.raises(OSError) as refused:
            os.write(opened_before, b"late".ljust(4096, b"\0"))
        assert refused.value.errno in REFUSED
    finally:
        os.close(opened_before)
    (event,) = [e for e in logs if e["log_level"] == "warning"]
    assert f"{user.pid} (sleep: open {loop})" in event["users"]
    assert user.poll() is None


def test_stop_without_users_warns_nothing(tmp_path, loop):
    d = driver(tmp_path, loop)
    asyncio.run(d.start(Why()))
    with capture_logs() as logs:
        asyncio.run(d.stop(Why()))
    assert [e for e in logs if e["log_level"] == "warning"] == []


def test_start_refuses_a_device_with_a_mounted_filesystem(tmp_path, loop):
    """Named through a symlink, as /dev/disk/by-id does: recognised by device number."""
    sh("mkfs.ext4", "-q", loop)
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    sh("mount", loop, str(mount_point))
    alias = tmp_path / "by-id-link"
    alias.symlink_to(loop)
    sh("blockdev", "--setro", loop)  # the refusal must come before any --setrw
    d = driver(tmp_path, str(alias))
    with pytest.raises(ResourceError, match=f"is mounted on {mount_point} \\(ext4\\)"):
        asyncio.run(d.start(Why()))
    assert read_only(loop) and not asyncio.run(d.active())


def test_a_missing_device_is_a_clear_error(tmp_path):
    d = driver(tmp_path, "/dev/haven-no-such-disk")
    for action in (lambda: d.start(Why()), lambda: d.stop(Why()), d.standby):
        with pytest.raises(ResourceError, match="/dev/haven-no-such-disk does not exist on s1"):
            asyncio.run(action())
    assert not asyncio.run(d.active())


def test_a_regular_file_is_not_taken_for_the_device(tmp_path):
    (tmp_path / "disk.img").write_bytes(bytes(4096))
    d = driver(tmp_path, "disk.img")  # relative: from the configuration's folder
    with pytest.raises(ResourceError, match=f"{tmp_path / 'disk.img'} is not a block device"):
        asyncio.run(d.start(Why()))
    assert not asyncio.run(d.active())


def holds(pid: int, device: str) -> bool:
    fds = f"/proc/{pid}/fd"
    return any(os.readlink(f"{fds}/{fd}") == device for fd in os.listdir(fds))


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
