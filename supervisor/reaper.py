"""Keep every descendant reapable: the supervisor is a child subreaper, so actors forked by the
template (and anything an actor leaves behind) are re-parented to it rather than to init."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

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
