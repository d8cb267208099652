"""Taking a lab down: every process, device, cgroup and namespace it made, then its directory.

Works from the lab state when there is one and, in any case, also by the names the lab id
implies (`hv<id>-*` namespaces and cgroups), so a lab whose `up` was killed half-way, or whose
state file is gone, still goes entirely. Nothing to remove is fine.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from lab import cgroups, devices, naming, netns, procs
from lab import state as lab_state
from lab import witness as lab_witness
from lab.errors import LabError
from lab.state import LabState

NAMESPACE_DRAIN = 5.0  # seconds to empty a namespace of processes before deleting it


def sweep(
    directory: str, st: LabState | None, lab: str, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Remove everything of lab `lab` in `directory`; a report of what went."""
    prefix = naming.namespace_prefix(lab)
    report: dict[str, Any] = {"dir": directory, "id": lab, "namespaces": [], "processes": 0}
    servers = st.servers if st else []
    for s in servers:
        tree = procs.Tree(s.pid, s.start_time, s.cgroup)
        pids = procs.tree_pids(tree)
        if pids:
            procs.kill(tree)
            report["processes"] += len(pids)
            progress(f"server {s.name!r}: node killed ({len(pids)} processes)")
    if st is not None and (killed := lab_witness.stop(st)):
        report["processes"] += killed
        progress(f"witness stopped ({killed} processes)")
    for device in st.devices if st else []:
        devices.remove(device)
        progress(f"device {device['name']!r} ({device['kind']}) removed")
    roots = cgroups.existing_roots()
    groups = {g for root in roots for g in cgroups.children(root, prefix)}
    groups |= {s.cgroup for s in servers if s.cgroup}
    for group in sorted(groups):
        if os.path.isdir(group):
            tree = procs.Tree(None, None, group)
            report["processes"] += len(procs.tree_pids(tree))
            procs.kill(tree)
            if not cgroups.remove(group):
                raise LabError(f"could not remove cgroup {group}")
    names = set(netns.list_namespaces(prefix)) | set(st.namespaces if st else [])
    for name in sorted(names):
        deadline = time.monotonic() + NAMESPACE_DRAIN
        while (killed := netns.kill_namespace_processes(name)) and time.monotonic() < deadline:
            report["processes"] += killed
            time.sleep(0.01)
        if netns.delete_namespace(name):
            report["namespaces"].append(name)
    if report["namespaces"]:
        progress(f"namespaces removed: {', '.join(report['namespaces'])}")
    for root in roots:
        cgroups.remove_parent(root)
    report["dir_removed"] = remove_dir(directory, progress)
    if report["dir_removed"]:
        progress(f"lab directory {directory} removed")
    if not (st or report["namespaces"] or report["processes"] or report["dir_removed"]):
        progress(f"no lab in {directory}: nothing to remove")
    return report


def remove_dir(directory: str, progress: Callable[[str], None]) -> bool:
    """Remove the lab directory when it is a lab's: it has the state file, or holds nothing but
    what a lab makes there. A directory holding anything else is left alone."""
    if not os.path.isdir(directory):
        return False
    entries = set(os.listdir(directory))
    ours = all(lab_made(directory, e) for e in entries)
    if lab_state.STATE_FILE not in entries and not ours:
        progress(f"left {directory} in place: it holds no lab state")
        return False
    shutil.rmtree(directory)
    return True


def lab_made(directory: str, entry: str) -> bool:
    """Is `entry` of the lab directory something a lab makes?"""
    path = os.path.join(directory, entry)
    if entry in (
        lab_state.LOCK_FILE,
        "cluster.toml",
        "com",
        "disk",
        "scripts",  # the copy of the configuration's scripts folder
        lab_witness.DIRECTORY,
    ):
        return True
    if entry.startswith(lab_state.STATE_FILE) or entry.endswith(".key"):
        return True  # a state file being written; the cluster key made for the lab
    return os.path.isdir(path) and set(os.listdir(path)) <= {"state", "node.log"}
