"""A lab server's processes: started detached (see `lab.spawn`), found, killed, stopped, resumed.

A server's process tree is its cgroup when the lab has one (`lab.cgroups`), else the session that
its node leads. Killing a tree is a SIGKILL of all of it at once (`cgroup.kill`; without a
cgroup, every process of the session is stopped until no new one appears, then all are killed):
the machine died. Pausing stops every process with SIGSTOP (with a cgroup, frozen while the
signals are sent, so that nothing forks in between): the machine hangs but is alive.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lab import cgroups
from lab.commands import python_env, run
from lab.errors import LabError


@dataclass(frozen=True)
class Tree:
    pid: int | None  # the leader: the node process, whose pid is the session id
    start_time: int | None
    cgroup: str | None


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def state_of(pid: int) -> str | None:
    """The process's state letter (R, S, D, T, Z, ...), None if there is no such process."""
    fields = _stat(pid)
    return fields[0] if fields else None


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def is_alive(pid: int | None, started: int | None = None) -> bool:
    """True while `pid` is a live process (not a zombie) and, if `started` is given, the same
    process that started then (not a reused pid)."""
    if pid is None:
        return False
    fields = _stat(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def session_pids(sid: int) -> list[int]:
    """Every live process of session `sid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def tree_pids(tree: Tree) -> list[int]:
    """The live processes of the tree."""
    if tree.cgroup and os.path.isdir(tree.cgroup):
        return [p for p in cgroups.pids(tree.cgroup) if state_of(p) not in (None, "Z", "X")]
    if tree.pid and is_alive(tree.pid, tree.start_time):
        return session_pids(tree.pid)
    return []  # (a leader that is gone: what is left of its session is swept by namespace)


def spawn(
    argv: Sequence[str],
    *,
    log: str,
    cwd: str,
    env: dict[str, str],
    cgroup: str | None,
    timeout: float = 10.0,
) -> tuple[int, int]:
    """Start `argv` detached; its (pid, start time)."""
    helper = [sys.executable, "-m", "lab.spawn", "--log", log, "--cwd", cwd]
    if cgroup:
        helper += ["--cgroup", cgroup]
    proc = run([*helper, "--", *argv], timeout=timeout, env=python_env(env), check=False)
    if proc.returncode != 0:
        raise LabError(proc.stderr.strip() or f"lab.spawn failed with {proc.returncode}")
    pid, started = proc.stdout.split()
    return int(pid), int(started)


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _stop_until_stable(tree: Tree, timeout: float) -> list[int]:
    """SIGSTOP every process of the tree until no new one appears (no cgroup: forks race us)."""
    stopped: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [p for p in tree_pids(tree) if p not in stopped]
        if not new:
            break
        _signal_all(new, signal.SIGSTOP)
        stopped.update(new)
    return sorted(stopped)


def wait_gone(tree: Tree, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while tree_pids(tree):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def kill(tree: Tree, timeout: float = 5.0) -> None:
    """SIGKILL the whole tree at once and wait until every process of it is gone."""
    if tree.cgroup and os.path.isdir(tree.cgroup):
        cgroups.kill(tree.cgroup)
    else:
        _signal_all(_stop_until_stable(tree, timeout), signal.SIGKILL)
        _signal_all(tree_pids(tree), signal.SIGKILL)
    if not wait_gone(tree, timeout):
        left = tree_pids(tree)
        raise LabError(f"processes {left} were still there {timeout:g}s after SIGKILL")


def pause(tree: Tree, timeout: float = 5.0) -> list[int]:
    """SIGSTOP every process of the tree; the pids, once all of them show as stopped."""
    if tree.cgroup and os.path.isdir(tree.cgroup):
        if not cgroups.freeze(tree.cgroup, True, timeout):
            cgroups.freeze(tree.cgroup, False, timeout)
            raise LabError(f"cgroup {tree.cgroup} did not freeze within {timeout:g}s")
        try:
            pids = tree_pids(tree)
            _signal_all(pids, signal.SIGSTOP)
        finally:
            cgroups.freeze(tree.cgroup, False, timeout)  # the pending SIGSTOPs take effect now
    else:
        pids = _stop_until_stable(tree, timeout)
    deadline = time.monotonic() + timeout
    while any(state_of(p) not in ("T", "t", "Z", "X", None) for p in pids):
        if time.monotonic() > deadline:
            raise LabError(f"not every process of {pids} stopped within {timeout:g}s")
        time.sleep(0.005)
    return pids


def resume(tree: Tree) -> list[int]:
    """SIGCONT every process of the tree (stopped processes cannot fork: the set is complete)."""
    pids = tree_pids(tree)
    _signal_all(pids, signal.SIGCONT)
    return pids
