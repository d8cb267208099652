"""One cgroup (cgroup2) per lab server, so that a server's whole process tree can be killed at
once (`cgroup.kill`) and frozen while it is being stopped (`cgroup.freeze`), whatever its
processes do with sessions and process groups. Lab cgroups live in `<cgroup2 mount>/haven-lab/`
and are named like the lab's namespaces (`hv<id>-<short>`).

Where no usable cgroup2 hierarchy exists (not mounted, read-only, a kernel without
`cgroup.kill`), `available_root()` is None and the lab falls back to the node's session.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time

PARENT = "haven-lab"
CANDIDATES = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def _cgroup2_mounts() -> list[str]:
    try:
        with open("/proc/self/mounts") as f:
            return [line.split()[1] for line in f if line.split()[2:3] == ["cgroup2"]]
    except OSError:
        return []


def available_root() -> str | None:
    """The directory under which lab cgroups are made, None if cgroups cannot be used here."""
    mounts = _cgroup2_mounts()
    for mount in [*(c for c in CANDIDATES if c in mounts), *mounts]:
        root = os.path.join(mount, PARENT)
        try:
            os.makedirs(root, exist_ok=True)
        except OSError:
            continue
        has = all(os.path.exists(os.path.join(root, f)) for f in ("cgroup.kill", "cgroup.freeze"))
        if has and _can_move_into(root):
            return root
    return None


def _can_move_into(root: str) -> bool:
    """Can a process be moved into a cgroup under `root` here (delegation, cgroup type)?"""
    probe = os.path.join(root, f"probe-{os.getpid()}")
    try:
        os.makedirs(probe, exist_ok=True)
    except OSError:
        return False
    child = subprocess.Popen(["sleep", "10"], stdin=subprocess.DEVNULL)
    try:
        with open(os.path.join(probe, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
        return True
    except OSError:
        return False
    finally:
        child.kill()
        child.wait()
        remove(probe, timeout=2.0)


def existing_roots() -> list[str]:
    """Every `haven-lab/` directory there is (for cleaning up; creates nothing)."""
    roots = [os.path.join(m, PARENT) for m in _cgroup2_mounts()]
    return [r for r in roots if os.path.isdir(r)]


def create(path: str) -> None:
    for _ in range(3):  # the parent may be removed by another lab's `down` in between
        try:
            os.makedirs(path, exist_ok=True)
            return
        except FileNotFoundError:
            continue


def pids(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def kill(path: str) -> None:
    """SIGKILL every process in the cgroup, at once (the kernel does it in one step)."""
    _write(path, "cgroup.kill", "1")


def freeze(path: str, frozen: bool, timeout: float = 5.0) -> bool:
    """Freeze or thaw the cgroup; True once the kernel says it is done."""
    _write(path, "cgroup.freeze", "1" if frozen else "0")
    deadline = time.monotonic() + timeout
    want = f"frozen {int(frozen)}"
    while time.monotonic() < deadline:
        if want in _events(path):
            return True
        time.sleep(0.005)
    return False


def remove(path: str, timeout: float = 5.0) -> bool:
    """Remove an emptied cgroup (waits for its processes to be gone); False if it never was."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return False
        time.sleep(0.02)


def remove_parent(root: str) -> None:
    """Remove `haven-lab/` itself once no lab uses it."""
    try:
        os.rmdir(root)
    except OSError:
        pass


def children(root: str, prefix: str) -> list[str]:
    try:
        return sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith(prefix))
    except OSError:
        return []


def _events(path: str) -> str:
    try:
        with open(os.path.join(path, "cgroup.events")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _write(path: str, name: str, value: str) -> None:
    with open(os.path.join(path, name), "w") as f:
        f.write(value)
