"""Node-level actions (SPEC §7's family) taken when the node itself must give up or fence.

Each action has a production form and a lab form. In the lab (tests, the demo, failure drills)
the OS is never shut down and the kernel never panicked: the node service stops, or — for the
fencing actions — the whole node is killed at once, as if the machine had died.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from enum import StrEnum


class NodeAction(StrEnum):
    STOP_SERVICE = "stop_service"  # orderly stop of the node service
    SHUTDOWN = "shutdown"  # stop the service, then power the OS off
    REBOOT = "reboot"  # stop the service, then reboot the OS
    PANIC = "panic"  # immediate: sysrq crash (a fencing tool; nothing is released)


ORDERLY = {NodeAction.STOP_SERVICE, NodeAction.SHUTDOWN, NodeAction.REBOOT}

# Exit status of `haven node run` after an escalation, so systemd and the lab can tell why it ended.
EXIT_ESCALATED = 3
EXIT_PANIC = 101


RECORD_FILE = "node-action.json"


def record(state_dir: str, action: NodeAction, reason: str, lab: bool) -> None:
    """Leave word of the action in the state directory (written before acting: a panic or a
    power-off leaves no other trace), for the operator and for the lab."""
    entry = {
        "action": str(action),
        "reason": reason,
        "lab": lab,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = os.path.join(state_dir, RECORD_FILE)
    try:
        with open(f"{path}.tmp", "w") as f:
            json.dump(entry, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(f"{path}.tmp", path)
    except OSError:
        pass  # the action matters more than its record


def after_stop(action: NodeAction, lab: bool) -> str:
    """What to do once the orderly stop is complete; returns a line describing it."""
    if action is NodeAction.STOP_SERVICE:
        return "node service stopped"
    verb = "poweroff" if action is NodeAction.SHUTDOWN else "reboot"
    if lab:
        return f"lab: the OS would {verb} now (not done in the lab)"
    try:
        subprocess.run(["systemctl", verb], check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not request the OS {verb}: {exc}"
    return f"OS {verb} requested"


def panic_now(children: Iterable[int], lab: bool) -> None:
    """Self-fence without releasing anything. Never returns."""
    if not lab:
        try:
            with open("/proc/sysrq-trigger", "w") as f:
                f.write("c")
        except OSError:
            pass  # fall through: at least take the node down hard
    else:
        _lab_power_off()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(EXIT_PANIC)


def _lab_power_off() -> None:
    """The lab form of a crash also silences the machine's NICs: a crashed server answers no
    ARP for a floating IP it held. Only inside a lab server's own network namespace, never in
    the host's (tests run lab-mode nodes there too)."""
    try:
        if os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino:
            return
        names = os.listdir("/sys/class/net")
    except OSError:
        return
    for name in names:
        if name != "lo":
            subprocess.run(["ip", "link", "set", name, "down"], capture_output=True, timeout=5)
