"""What is mounted where, read from /proc/self/mountinfo rather than from `mount`'s output.

The kernel's own table is exact where `mount` and /etc/mtab are not: the device numbers of a
block filesystem (so `/dev/disk/by-id/...` and `/dev/sdb1` are recognised as the same disk), and
which of several mounts stacked on one directory is the visible one. Reading it never touches the
mounted filesystems, so it cannot hang on an NFS server that went away.

Each line is `id parent major:minor root mount_point options [optional...] - fstype source
super_options`; the kernel writes space, tab, newline and backslash in paths as octal escapes
(`/mnt/my\\040data`), which `unescape` undoes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"

_ESCAPE = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str  # the part of the filesystem mounted here ("/" unless a bind mount)
    mount_point: str
    options: str  # per-mount options (rw, nosuid, ...)
    fs_type: str
    source: str  # "/dev/sdb1", "nas1:/export", "tmpfs", ...
    super_options: str

    @property
    def read_only(self) -> bool:
        return "ro" in self.options.split(",")


def unescape(field: bytes) -> str:
    return os.fsdecode(_ESCAPE.sub(lambda m: bytes([int(m[1], 8)]), field))


def parse(text: str | bytes) -> list[Mount]:
    """The mounts of a mountinfo text, in the kernel's order. Malformed lines are skipped: a
    half-understood line must not make a mounted disk look unmounted in a way that raises."""
    data = os.fsencode(text) if isinstance(text, str) else text
    mounts = []
    for line in data.splitlines():
        fields = line.split(b" ")
        try:
            dash = fields.index(b"-", 6)
            major, minor = fields[2].split(b":")
            mounts.append(
                Mount(
                    mount_id=int(fields[0]),
                    parent_id=int(fields[1]),
                    major=int(major),
                    minor=int(minor),
                    root=unescape(fields[3]),
                    mount_point=unescape(fields[4]),
                    options=fields[5].decode(errors="replace"),
                    fs_type=unescape(fields[dash + 1]),
                    source=unescape(fields[dash + 2]),
                    super_options=unescape(fields[dash + 3]) if len(fields) > dash + 3 else "",
                )
            )
        except (ValueError, IndexError):
            continue
    return mounts


def read(path: str = MOUNTINFO) -> list[Mount]:
    with open(path, "rb") as f:
        return parse(f.read())


def canonical(path: str) -> str:
    """`path` as the kernel writes it in mountinfo: absolute, without symlinks or `..`.

    Only the parent folder is resolved: resolving the mount point itself would stat the mounted
    filesystem's root, which blocks while an NFS server is unreachable."""
    path = os.path.normpath(os.path.abspath(path))
    parent, name = os.path.split(path)
    return os.path.join(os.path.realpath(parent), name) if name else parent


def at(mounts: Iterable[Mount], mount_point: str) -> Mount | None:
    """The visible mount at `mount_point` (already canonical): of mounts stacked on one folder,
    the one that no other mount there is mounted on top of."""
    here = [m for m in mounts if m.mount_point == mount_point]
    covered = {m.parent_id for m in here}
    top = [m for m in here if m.mount_id not in covered]
    return (top or here or [None])[-1]


def of_device(mounts: Iterable[Mount], rdev: int) -> list[Mount]:
    """The mounts of the block device whose `st_rdev` is `rdev` (by number, not by name)."""
    major, minor = os.major(rdev), os.minor(rdev)
    return [m for m in mounts if (m.major, m.minor) == (major, minor)]


def under(mounts: Iterable[Mount], path: str) -> list[Mount]:
    """The mounts at `path` or anywhere below it: all of them keep an unmount of `path` busy."""
    return [m for m in mounts if is_under(m.mount_point, path)]


def is_under(candidate: str, path: str) -> bool:
    return candidate == path or candidate.startswith(path.rstrip("/") + "/")
