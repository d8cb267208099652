"""The `disk` resource: a partition of the shared disk, mounted on the server that owns the group
and read-only everywhere else (the original's "disk lock").

Start: `blockdev --setrw` (before fsck, which cannot open a read-only device), fsck every
`fsck_interval`-th mount, create the mount point, mount (`mount_retry` more attempts). Already
mounted there from this device: nothing to do; the mount point or the device taken otherwise:
refused. Stop: unmount (`umount_retry` more attempts; between two attempts the holders are
SIGKILLed when `umount_failure = "kill"`, so with `umount_retry = 0` nothing is killed), then
`blockdev --setro`. Standby (a server that does not own the group, from cluster start):
`blockdev --setro`, so a stray mount or write here cannot corrupt what the owner writes.

What is mounted is read from /proc/self/mountinfo and the device is compared by device number,
so `/dev/disk/by-id/...` and `/dev/sdb1` are the same disk. A mount point with a space works.

The fsck schedule is kept in the resource's state folder (`mounts_since_fsck`): the number of
mounts done without a check since the last one. The check runs when this mount would be the
`fsck_interval`-th; the count is reset as soon as a check passes, so a check that passed is not
repeated because the mount after it failed. Counts are per server, like the original's.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from dataclasses import replace
from typing import Any

from actors.counter_file import store_counter
from actors.resources import holders, mountinfo
from actors.resources.base import Driver, ResourceError, Why
from actors.resources.command import Completed, run

BLOCKDEV_TIMEOUT = 30.0
FSCK_OK = (0, 1)  # 1: errors were found and corrected
COUNT_FILE = "mounts_since_fsck"


def command_env(extra: dict[str, str]) -> dict[str, str]:
    """The programs' messages in English whatever the server's locale: they end up in errors and
    logs that are read next to each other."""
    return {**os.environ, "LC_ALL": "C", **extra}


def describe(done: Completed, what: str) -> str:
    """`done.describe` with the program's message lines rather than its last line: mount ends
    with a hint to read dmesg, after the line that says what went wrong."""
    lines = [x.strip() for x in done.output.splitlines() if x.strip() and "dmesg(1)" not in x]
    return replace(done, output=" / ".join(lines[-3:])).describe(what)


class DiskDriver(Driver):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.device = ctx.path(self.params["device"])
        self.mount_point = mountinfo.canonical(ctx.path(self.params["mount_point"]))
        self.env = command_env(ctx.env)
        self._checked = False  # this start's fsck passed: its mount does not count

    def details(self) -> dict[str, Any]:
        return {"device": self.device, "mount_point": self.mount_point}

    async def start(self, why: Why) -> None:
        if await self._mounted_here():
            self._log("info", "already mounted")
            return
        await self._blockdev("--setrw")  # first: fsck cannot open a read-only device
        await self._fsck_if_due()
        try:
            await asyncio.to_thread(os.makedirs, self.mount_point, exist_ok=True)
        except OSError as exc:
            raise ResourceError(f"cannot create mount point {self.mount_point}: {exc}") from exc
        p = self.params
        argv = ["mount", "-t", p["fs"], "-o", p["mount_options"], self.device, self.mount_point]
        attempts = 1 + int(p["mount_retry"])
        for attempt in range(1, attempts + 1):
            done = await self._run(argv, p["mount_timeout"])
            if done.ok or await self.active():
                await asyncio.to_thread(self._count_mount)
                return
            self._log("warning", "mount failed", attempt=attempt, error=describe(done, "mount"))
        raise ResourceError(
            f"cannot mount {self.device} on {self.mount_point} ({p['fs']}) after {attempts} "
            f"attempt(s): {describe(done, 'mount')}"
        )

    async def stop(self, why: Why) -> None:
        mounts = await asyncio.to_thread(mountinfo.read)
        mount = mountinfo.at(mounts, self.mount_point)
        if mount is not None and self._is_device(mount):
            await self._unmount()
        elif elsewhere := self._device_mounts(mounts):
            raise ResourceError(
                f"{self.device} is mounted on {elsewhere[0].mount_point}, not on "
                f"{self.mount_point}: unmount it there by hand"
            )
        await self._blockdev("--setro")

    async def standby(self) -> None:
        """Read-only first, whatever else: if the disk is mounted here, writes stop reaching it
        now, and the error tells the operator about the mount."""
        await self._blockdev("--setro")
        here = self._device_mounts(await asyncio.to_thread(mountinfo.read))
        if here:
            raise ResourceError(
                f"{self.device} is mounted on {here[0].mount_point} on this server, which does "
                "not own the group (now read-only): unmount it"
            )

    async def active(self) -> bool:
        try:
            mounts = await asyncio.to_thread(mountinfo.read)
            mount = mountinfo.at(mounts, self.mount_point)
            return mount is not None and self._is_device(mount)
        except OSError:
            return False

    async def _mounted_here(self) -> bool:
        """True when the device is mounted on the mount point; a ResourceError when the mount
        point or the device is taken otherwise (mounting over it would hide or double it)."""
        mounts = await asyncio.to_thread(mountinfo.read)
        mount = mountinfo.at(mounts, self.mount_point)
        if mount is not None:
            if self._is_device(mount):
                return True
            raise ResourceError(
                f"{mount.source} ({mount.fs_type}) is already mounted on {self.mount_point}: "
                f"unmount it or choose another mount point for {self.device}"
            )
        elsewhere = self._device_mounts(mounts)
        if elsewhere:
            raise ResourceError(
                f"{self.device} is already mounted on {elsewhere[0].mount_point}, not on "
                f"{self.mount_point}: unmount it there first"
            )
        return False

    def _device_mounts(self, mounts: list[mountinfo.Mount]) -> list[mountinfo.Mount]:
        rdev = self._rdev()
        return [m for m in mounts if self._is_device(m, rdev)]

    def _is_device(self, mount: mountinfo.Mount, rdev: int | None = None) -> bool:
        """By device number; by name too, for filesystems whose mountinfo numbers are not the
        device's (btrfs gives an anonymous one) and for a device that has disappeared."""
        rdev = self._rdev() if rdev is None else rdev
        if rdev and (mount.major, mount.minor) == (os.major(rdev), os.minor(rdev)):
            return True
        return mount.source.startswith("/") and (
            os.path.realpath(mount.source) == os.path.realpath(self.device)
        )

    def _rdev(self) -> int:
        try:
            return os.stat(self.device).st_rdev
        except OSError:
            return 0

    async def _unmount(self) -> None:
        p = self.params
        attempts = 1 + int(p["umount_retry"])
        for attempt in range(1, attempts + 1):
            done = await self._run(["umount", self.mount_point], p["umount_timeout"])
            if done.ok or not await self.active():
                return
            self._log("warning", "umount failed", attempt=attempt, error=describe(done, "umount"))
            if attempt < attempts and p["umount_failure"] == "kill":
                killed = await asyncio.to_thread(holders.kill, self.mount_point)
                if killed:
                    self._log(
                        "warning",
                        "killed the processes holding the mount point",
                        mount_point=self.mount_point,
                        killed=holders.describe(killed),
                    )
        held = await asyncio.to_thread(holders.find, self.mount_point)
        raise ResourceError(
            f"cannot unmount {self.mount_point} after {attempts} attempt(s): "
            f"{describe(done, 'umount')}; held by {holders.describe(held)}"
        )

    async def _fsck_if_due(self) -> None:
        interval = int(self.params["fsck_interval"])
        if interval == 0 or self._mounts_since_fsck() < interval - 1:
            return
        options = shlex.split(self.params["fsck_options"] or "")
        argv = ["fsck", "-t", self.params["fs"], *options, self.device]
        self._log("info", "fsck", argv=" ".join(argv))
        done = await self._run(argv, self.params["fsck_timeout"])
        if done.returncode not in FSCK_OK:
            raise ResourceError(
                f"fsck of {self.device} found errors it did not correct or could not run "
                f"({describe(done, 'fsck')}): check the filesystem by hand before starting"
            )
        await asyncio.to_thread(store_counter, self._count_path(), 0)
        self._checked = True

    def _count_mount(self) -> None:
        """One more mount without a check, unless this mount follows a check."""
        if self._checked:
            self._checked = False
            return
        store_counter(self._count_path(), self._mounts_since_fsck() + 1)

    def _mounts_since_fsck(self) -> int:
        try:
            with open(self._count_path()) as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _count_path(self) -> str:
        return os.path.join(self.ctx.state_dir, COUNT_FILE)

    async def _blockdev(self, flag: str) -> None:
        done = await self._run(["blockdev", flag, self.device], BLOCKDEV_TIMEOUT)
        if not done.ok:
            state = "read-write" if flag == "--setrw" else "read-only"
            raise ResourceError(
                f"cannot make {self.device} {state}: {describe(done, 'blockdev ' + flag)}"
            )

    async def _run(self, argv: list[str], timeout: float) -> Completed:
        try:
            return await run(argv, timeout=timeout, env=self.env)
        except OSError as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc}") from exc

    def _log(self, level: str, event: str, **kw: Any) -> None:
        if self.ctx.log is not None:
            getattr(self.ctx.log, level)(event, **kw)
