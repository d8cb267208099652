"""Heartbeat devices of the lab, for the COM and disk heartbeats (and disk NP): a pty pair joined
by socat, its two ends symlinked into the lab directory, and a shared file of N bytes that the
servers' nodes open as their shared disk. `haven lab up` makes those the configuration needs
(`device_plan.py`). `Lab.add_pty_pair` and
`Lab.add_shared_file` record them in the lab state so that `down` removes them.

    com/<name>.a, com/<name>.b   the pty pair's ends (symlinks to /dev/pts/N); socat's log in
                                 com/<name>.log
    disk/<name>.img              the shared file
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from lab import procs
from lab.commands import have
from lab.errors import LabError


def safe(name: str) -> str:
    """`name` as a file name (configured names may contain spaces or slashes)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"


def pty_pair(
    directory: str, name: str, *, cgroup: str | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """Start socat joining two new ptys; the device record (ends, socat's pid)."""
    if not have("socat"):
        raise LabError("socat is not installed (Debian package socat): the lab's ptys need it")
    com = os.path.join(directory, "com")
    os.makedirs(com, exist_ok=True)
    ends = [os.path.join(com, f"{safe(name)}.{side}") for side in ("a", "b")]
    for end in ends:
        if os.path.lexists(end):
            raise LabError(f"a pty pair named {name!r} already exists ({end})")
    log = os.path.join(com, f"{safe(name)}.log")
    argv = ["socat", "-d", *(f"PTY,link={end},raw,echo=0" for end in ends)]
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    pid, started = procs.spawn(argv, log=log, cwd=directory, env=env, cgroup=cgroup)
    record = {"kind": "pty", "name": name, "ends": ends, "pid": pid, "start_time": started}
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(end) for end in ends):
        if not procs.is_alive(pid, started) or time.monotonic() > deadline:
            remove(record)
            with open(log, errors="replace") as f:
                why = f.read().strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"socat did not make the pty pair {name!r}: {why[0]}")
        time.sleep(0.01)
    return record


def shared_file(directory: str, name: str, size: int) -> dict[str, Any]:
    """A file of `size` bytes (zeros, allocated) shared by the servers; its device record."""
    if size <= 0:
        raise LabError(f"a shared file needs a size above 0 bytes, got {size}")
    disk = os.path.join(directory, "disk")
    os.makedirs(disk, exist_ok=True)
    path = os.path.join(disk, f"{safe(name)}.img")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            pass  # a file system without fallocate: a sparse file reads as zeros all the same
    finally:
        os.close(fd)
    return {"kind": "file", "name": name, "path": path, "size": size}


def remove(record: dict[str, Any], timeout: float = 5.0) -> None:
    """Undo one device: stop its socat and remove its files. Safe to call again."""
    if record["kind"] == "pty":
        pid, started = record["pid"], record["start_time"]
        if procs.is_alive(pid, started):
            tree = procs.Tree(pid, started, None)
            procs.kill(tree, timeout)
        for end in record["ends"]:
            try:
                os.unlink(end)
            except FileNotFoundError:
                pass
    elif record["kind"] == "file":
        try:
            os.unlink(record["path"])
        except FileNotFoundError:
            pass
