"""The lab: a local cluster of real `haven node run` processes, one network namespace per server,
bridged networks in a switch namespace, a router namespace as the clients' machine and the NP ping
target — and the faults to break it with (kill, pause, partition, loss). Used by `haven lab`, by
the tests' fixtures and by operators' failure drills.

Modules: `lab` (the Lab class), `plan` (configuration -> lab layout), `naming`, `state` (the lab
directory's state file and lock), `netns` (namespaces and links), `faults` (nftables rules),
`procs` + `cgroups` + `spawn` (node processes), `teardown` (down), `devices` (pty pairs, shared
files) + `device_plan` (which of them a configuration needs, and where), `probe` (ICMP
reachability), `commands` (running tools with deadlines).
"""

from lab.errors import LabError
from lab.lab import DEFAULT_DIR, Lab, default_dir, unavailable

__all__ = ["DEFAULT_DIR", "Lab", "LabError", "default_dir", "unavailable"]
