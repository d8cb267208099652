"""The `raw` resource: a block device of the shared disk that an application (a database) uses
directly, without a filesystem.

Linux no longer binds raw devices (`raw(8)` is gone), so what is left of the original's resource
is its disk lock: the server that owns the group has the device read-write, every other server
keeps it read-only, so a stray write from a server that lost the group cannot corrupt what the
new owner writes. The kernel enforces `blockdev --setro` even on descriptors opened before it:
their writes fail with EPERM from then on.

Start refuses a device that is mounted here: a filesystem on a raw resource's device is a
configuration mistake, and writing under a mounted filesystem would corrupt it. Stop does not end
the processes that still have the device open (there is no unmount for them to block, and the
read-only flag already stops their writes); it names them, so the operator knows the application
did not close it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from typing import Any

from actors.resources import holders, mountinfo
from actors.resources.base import Driver, ResourceError, Why
from actors.resources.command import Completed, run
from actors.resources.disk import BLOCKDEV_TIMEOUT, command_env, describe


class RawDriver(Driver):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.device = ctx.path(self.params["device"])
        self.env = command_env(ctx.env)

    def details(self) -> dict[str, Any]:
        return {"device": self.device}

    async def start(self, why: Why) -> None:
        rdev = self._rdev()
        mounted = mountinfo.of_device(await asyncio.to_thread(mountinfo.read), rdev)
        if mounted:
            raise ResourceError(
                f"{self.device} is mounted on {mounted[0].mount_point} ({mounted[0].fs_type}): "
                "a raw resource's device must carry no mounted filesystem; unmount it and check "
                "that the configuration names the right device"
            )
        await self._blockdev("--setrw")
        if await self._read_only():
            raise ResourceError(
                f"{self.device} is still read-only after blockdev --setrw: the disk itself "
                "refuses writes here (a write-protected LUN, or its whole disk is read-only)"
            )

    async def stop(self, why: Why) -> None:
        rdev = self._rdev()
        await self._blockdev("--setro")
        users = await asyncio.to_thread(find_users, rdev)
        if users:
            self._log(
                "warning",
                "processes still have the raw device open; their writes now fail",
                device=self.device,
                users=holders.describe(users),
            )

    async def standby(self) -> None:
        self._rdev()
        await self._blockdev("--setro")

    async def active(self) -> bool:
        try:
            self._rdev()
            return not await self._read_only()
        except ResourceError:
            return False

    def _rdev(self) -> int:
        """The device's number, or a ResourceError an operator can act on: blockdev's own
        message for a missing device is only an errno."""
        try:
            st = os.stat(self.device)
        except FileNotFoundError:
            raise ResourceError(
                f"{self.device} does not exist on {self.ctx.server}: check the device name "
                "configured for this server and that the shared disk is attached"
            ) from None
        except OSError as exc:
            raise ResourceError(f"cannot read {self.device}: {exc}") from exc
        if not stat.S_ISBLK(st.st_mode):
            raise ResourceError(f"{self.device} is not a block device")
        return st.st_rdev

    async def _read_only(self) -> bool:
        done = await self._run(["blockdev", "--getro", self.device])
        flag = done.output.strip()
        if not done.ok or flag not in ("0", "1"):
            raise ResourceError(
                f"cannot tell whether {self.device} is read-only: "
                f"{describe(done, 'blockdev --getro')}"
            )
        return flag == "1"

    async def _blockdev(self, flag: str) -> None:
        done = await self._run(["blockdev", flag, self.device])
        if not done.ok:
            state = "read-write" if flag == "--setrw" else "read-only"
            raise ResourceError(
                f"cannot make {self.device} {state}: {describe(done, 'blockdev ' + flag)}"
            )

    async def _run(self, argv: list[str]) -> Completed:
        try:
            return await run(argv, timeout=BLOCKDEV_TIMEOUT, env=self.env)
        except OSError as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc}") from exc

    def _log(self, level: str, event: str, **kw: Any) -> None:
        if self.ctx.log is not None:
            getattr(self.ctx.log, level)(event, **kw)


def find_users(rdev: int) -> list[holders.Holder]:
    """Every process (but this one) with a descriptor open on the block device `rdev`.

    Only descriptors whose path is under /dev are stat'ed: stat through /proc/PID/fd reaches the
    open file's own filesystem, which blocks while an NFS server is unreachable, and /dev is in
    memory. A device node made elsewhere (mknod in an application's folder) is not seen."""
    users = []
    for pid in holders._pids():
        base = f"{holders.PROC}/{pid}/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(base):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"{base}/{fd}")
                    if not target.startswith("/dev/"):
                        continue
                    st = os.stat(f"{base}/{fd}")
                    if stat.S_ISBLK(st.st_mode) and st.st_rdev == rdev:
                        users.append(holders.Holder(pid, holders._name(pid), f"open {target}"))
                        break
    return users
