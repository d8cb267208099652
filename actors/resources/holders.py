"""The processes that keep a mount point busy, and killing them (the original's umount failure
action "kill", its `fuser -km`).

A process holds a mount when its current or root folder, its executable, an open file or a
mapped file is on it or on a mount below it. Only /proc is read: open files are matched by the
mount ID the kernel gives in /proc/PID/fdinfo and folders by the paths in /proc's links, neither
of which touches the mounted filesystem, so the scan cannot block on an unreachable NFS server
the way `fuser` (which stats every open file) can.

Killing goes through a pidfd: the process is opened first, checked again through that handle,
and only then signalled, so a PID reused by an unrelated process in between is never killed.
This is blocking work for a thread (`asyncio.to_thread`), bounded by its `wait` deadline.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from dataclasses import dataclass

from actors.resources import mountinfo

PROC = "/proc"
_LINKS = ("cwd", "root", "exe")


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str  # the command name (/proc/PID/comm)
    how: str  # "cwd /mnt/data/logs", "open /mnt/data/db.lock", ...

    def __str__(self) -> str:
        return f"{self.pid} ({self.name}: {self.how})"


def describe(holders: list[Holder]) -> str:
    return ", ".join(str(h) for h in holders) or "no process"


def find(mount_point: str) -> list[Holder]:
    """Every process (but this one) holding `mount_point` (canonical, as in mountinfo)."""
    mount_ids = {m.mount_id for m in mountinfo.under(mountinfo.read(), mount_point)}
    holders = []
    for pid in _pids():
        how = _holds(pid, mount_point, mount_ids)
        if how:
            holders.append(Holder(pid, _name(pid), how))
    return holders


def kill(mount_point: str, wait: float = 5.0) -> list[Holder]:
    """SIGKILL every holder of `mount_point` and wait up to `wait` seconds for them to end.
    Returns those signalled; one that outlives the wait (stuck in the kernel) still holds the
    mount, which the caller's next unmount attempt will report."""
    mount_ids = {m.mount_id for m in mountinfo.under(mountinfo.read(), mount_point)}
    killed: list[Holder] = []
    handles: list[int] = []
    try:
        for holder in find(mount_point):
            if holder.pid in (1, os.getpid()):
                continue
            try:
                handle = os.pidfd_open(holder.pid)
            except OSError:
                continue  # ended meanwhile
            handles.append(handle)
            if _holds(holder.pid, mount_point, mount_ids):  # still that process, still holding
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(handle, signal.SIGKILL)
                    killed.append(holder)
        _wait_all(handles, time.monotonic() + wait)
    finally:
        for handle in handles:
            os.close(handle)
    return killed


def _wait_all(handles: list[int], deadline: float) -> None:
    """A pidfd becomes readable when its process has ended (exited, even if not yet reaped)."""
    poller = select.poll()
    for handle in handles:
        poller.register(handle, select.POLLIN)
    pending = set(handles)
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        for handle, _ in poller.poll(left * 1000):
            poller.unregister(handle)
            pending.discard(handle)


def _pids() -> list[int]:
    return [int(name) for name in os.listdir(PROC) if name.isdigit() and int(name) != os.getpid()]


def _name(pid: int) -> str:
    try:
        with open(f"{PROC}/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _holds(pid: int, mount_point: str, mount_ids: set[int]) -> str:
    """How `pid` holds the mount, "" if it does not (or has ended, or hides from us)."""
    base = f"{PROC}/{pid}"
    for link in _LINKS:
        with contextlib.suppress(OSError):
            target = _strip_deleted(os.readlink(f"{base}/{link}"))
            if mountinfo.is_under(target, mount_point):
                return f"{link} {target}"
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"{base}/fd"):
            with contextlib.suppress(OSError):
                if _fd_mount_id(base, fd) in mount_ids:
                    return f"open {os.readlink(f'{base}/fd/{fd}')}"
    with contextlib.suppress(OSError), open(f"{base}/maps", "rb") as f:
        for line in f:
            fields = line.rstrip(b"\n").split(maxsplit=5)
            if len(fields) == 6:
                path = _strip_deleted(os.fsdecode(fields[5]))
                if mountinfo.is_under(path, mount_point):
                    return f"mapped {path}"
    return ""


def _fd_mount_id(base: str, fd: str) -> int | None:
    with open(f"{base}/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    return None


def _strip_deleted(path: str) -> str:
    return path.removesuffix(" (deleted)")
