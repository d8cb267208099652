"""Network partition resolution: the pure rules.

When a server goes silent on every heartbeat path, each side asks its NP methods whether it may
go on. Data protection wins over service continuity (SPEC §4): a side survives only if every
configured method says so, and a method that cannot answer (its actor down, a timeout) counts as
"isolated".

- majority: more than half of all configured servers are online here (counting this one); an
  exact half survives only if it holds the master server (the first in the server list).
- ping: at least one target answers (asked of the `pingnp` actor).

The fencing wait (the timing rule, enforced by `fence_wait`): the surviving side must not treat
a lost peer as stopped until the peer has surely fenced itself. The peer watches the same
silence we do, so it notices the loss at most one heartbeat interval after us (each side checks
its paths at least once per interval); it then needs at most the longest NP check to learn that
it is isolated, and at most `fence_time` (its node stop deadline) to release everything and stop.
Only after `interval + longest NP check + fence_time` from our own detection is the peer
reported `fenced`.
"""

from __future__ import annotations

from collections.abc import Iterable


def majority_survives(online: Iterable[str], me: str, servers: list[str], master: str) -> bool:
    alive = set(online) | {me}
    if 2 * len(alive) > len(servers):
        return True
    return 2 * len(alive) == len(servers) and master in alive


def fence_wait(interval: float, np_check_times: Iterable[float], fence_time: float) -> float:
    return interval + max(np_check_times, default=0.0) + fence_time
