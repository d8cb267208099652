"""The clock of every lease decision (`disknp`, `witness`): CLOCK_BOOTTIME.

Monotonic, so a change of the wall clock changes nothing (SPEC §12-40), and unlike
CLOCK_MONOTONIC it keeps counting while the machine is suspended: a lease holder whose machine
slept through its renewals must see that time as gone, as everyone else did. Clocks of different
servers are never compared; only lengths of time, each measured on one machine.
"""

from __future__ import annotations

import time

DRIFT = 0.01  # allowed rate difference between two servers' clocks (NTP keeps it below 0.05 %)


def now() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def boot_id() -> bytes:
    """16 bytes naming this boot of the machine (a lease time noted in one boot means nothing in
    the next)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return bytes.fromhex(f.read().strip().replace("-", ""))[:16].ljust(16, b"\0")
    except (OSError, ValueError):
        return b"\0" * 16
