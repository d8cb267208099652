"""The `nas` resource: an NFS share mounted on the server that owns the group.

Start: create the mount point, `mount -t fs -o mount_options server:share mount_point`, one
attempt bounded by `mount_timeout` (a hard NFS mount to an unreachable server would otherwise
wait forever). Already mounted from that share: nothing to do. Another filesystem on the mount
point: refused. The same share mounted elsewhere is normal for NFS and left alone.

Stop: `umount`; if that fails, the processes holding the mount are killed (holders.py) and one
more `umount -f` is tried: for NFS `-f` also aborts requests to a server that stopped
answering, and unlike `umount -l` it never reports a mount gone that is still in use. The
unmount has no parameter of its own: `mount_timeout` bounds each attempt.

Mounts are read from /proc/self/mountinfo and compared by source (`server:share`, an IPv6
server written `[addr]:share`, a trailing `/` ignored), never by stat-ing the mount point, so
`active()` answers even while the server is down.

Not testable here (the kernel has no NFS client): a mount that succeeds. The tests run mount.nfs
for the failure and mount a tmpfs whose source reads `server:share` as a stand-in for the NFS
mount, which exercises everything else on real mounts.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from actors.resources import holders, mountinfo
from actors.resources.base import Driver, ResourceError, Why
from actors.resources.command import Completed, run
from actors.resources.disk import command_env, describe


def nfs_source(server: str, share: str) -> str:
    return f"[{server}]:{share}" if ":" in server else f"{server}:{share}"


def same_source(a: str, b: str) -> bool:
    return _trim(a) == _trim(b)


def _trim(source: str) -> str:
    head, sep, path = source.rpartition(":")
    return f"{head}{sep}{path.rstrip('/') or '/'}"


class NasDriver(Driver):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.source = nfs_source(self.params["server"], self.params["share"])
        self.mount_point = mountinfo.canonical(ctx.path(self.params["mount_point"]))
        self.timeout = float(self.params["mount_timeout"])
        self.env = command_env(ctx.env)

    def details(self) -> dict[str, Any]:
        return {"source": self.source, "mount_point": self.mount_point}

    async def start(self, why: Why) -> None:
        mount = await self._mount_here()
        if mount is not None:
            if same_source(mount.source, self.source):
                self._log("info", "already mounted")
                return
            raise ResourceError(
                f"{mount.source} ({mount.fs_type}) is already mounted on {self.mount_point}: "
                f"unmount it or choose another mount point for {self.source}"
            )
        try:
            await asyncio.to_thread(os.makedirs, self.mount_point, exist_ok=True)
        except OSError as exc:
            raise ResourceError(f"cannot create mount point {self.mount_point}: {exc}") from exc
        p = self.params
        argv = ["mount", "-t", p["fs"], "-o", p["mount_options"], self.source, self.mount_point]
        done = await self._run(argv)
        if not done.ok and not await self.active():
            raise ResourceError(
                f"cannot mount {self.source} on {self.mount_point} ({p['fs']}): "
                f"{describe(done, 'mount')}"
            )

    async def stop(self, why: Why) -> None:
        if not await self.active():
            return
        done = await self._run(["umount", self.mount_point])
        if done.ok or not await self.active():
            return
        self._log("warning", "umount failed", error=describe(done, "umount"))
        killed = await asyncio.to_thread(holders.kill, self.mount_point)
        if killed:
            self._log(
                "warning",
                "killed the processes holding the mount point",
                mount_point=self.mount_point,
                killed=holders.describe(killed),
            )
        done = await self._run(["umount", "-f", self.mount_point])
        if done.ok or not await self.active():
            return
        held = await asyncio.to_thread(holders.find, self.mount_point)
        raise ResourceError(
            f"cannot unmount {self.mount_point} ({self.source}): {describe(done, 'umount -f')}; "
            f"held by {holders.describe(held)}"
        )

    async def active(self) -> bool:
        try:
            mount = await self._mount_here()
        except OSError:
            return False
        return mount is not None and same_source(mount.source, self.source)

    async def _mount_here(self) -> mountinfo.Mount | None:
        return mountinfo.at(await asyncio.to_thread(mountinfo.read), self.mount_point)

    async def _run(self, argv: list[str]) -> Completed:
        try:
            return await run(argv, timeout=self.timeout, env=self.env)
        except OSError as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc}") from exc

    def _log(self, level: str, event: str, **kw: Any) -> None:
        if self.ctx.log is not None:
            getattr(self.ctx.log, level)(event, **kw)
