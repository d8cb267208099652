"""Network partition resolution: the pure rules.

When a server goes silent on every heartbeat path, each side asks its NP methods whether it may
go on. Data protection wins over service continuity (SPEC §4): a side survives only if every
configured method says so, and a method that cannot answer (its actor down, a timeout) counts as
"isolated".

- majority: more than half of all configured servers are online here (counting this one); an
  exact half survives only if it holds the master server (the first in the server list).
- ping: at least one target answers (asked of the `pingnp` actor).

The fencing wait (the timing rule, enforced by `fence_wait`): the surviving side must not treat
a lost peer as stopped until the peer has surely stood down. From our own detection:

- the peer notices the loss later than we do by at most: one interval (the phase of the last
  frames), one check period (the granularity of its path checks), and the longest stall it may
  have had without reporting one (`stall_after`: its trackers forgive that time);
- it then runs its NP methods one after another: the sum of their worst cases, each with the
  margin its request to the NP actor is allowed (`NP_REQUEST_MARGIN`);
- its supervisor stands it down within `fence_time` (heartbeats first; whatever is left at the
  deadline is killed) plus `KILL_MARGIN` for the kill to land.

Only after all of that is the peer reported `fenced`. (A peer that cannot even run this — hung
in the kernel — is what hardware fencing is for; that comes with the final actions.)
"""

from __future__ import annotations

from collections.abc import Iterable


def majority_survives(online: Iterable[str], me: str, servers: list[str], master: str) -> bool:
    alive = set(online) | {me}
    if 2 * len(alive) > len(servers):
        return True
    return 2 * len(alive) == len(servers) and master in alive


NP_REQUEST_MARGIN = 2.0  # seconds beyond an NP check's worst case that membership waits for it
KILL_MARGIN = 2.0


def fence_wait(
    interval: float,
    check_period: float,
    stall_after: float,
    np_check_times: Iterable[float],
    fence_time: float,
) -> float:
    detection_skew = interval + check_period + stall_after
    np_checks = sum(t + NP_REQUEST_MARGIN for t in np_check_times)
    return detection_skew + np_checks + fence_time + KILL_MARGIN
