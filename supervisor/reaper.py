"""Keep every descendant reapable: the supervisor is a child subreaper, so actors forked by the
template (and anything an actor leaves behind) are re-parented to it rather than to init."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def reap_strays(known: set[int]) -> list[tuple[int, int]]:
    """Reap exited children that are not ours to watch (orphans re-parented to us)."""
    reaped = []
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return reaped
        if info is None or info.si_pid in known:
            return reaped
        _, status = os.waitpid(info.si_pid, 0)
        reaped.append((info.si_pid, status))


def descendants(root: int) -> list[int]:
    """Every live process below `root` in the process tree (read from /proc, no ordering)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue  # gone meanwhile
        ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def kill_descendants(exclude: set[int]) -> list[int]:
    """SIGKILL whatever still runs below this process but `exclude` (and what runs below
    those): what an actor started in a session of its own — an application an exec resource
    left running — must not outlive the node when its actor could not stop it."""
    spared = set(exclude)
    for pid in exclude:
        spared.update(descendants(pid))
    killed = [pid for pid in descendants(os.getpid()) if pid not in spared]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return killed
