"""What every group resource driver is: the contract between the groups actor and one resource.

A driver is created once per resource on every server of the group's policy, inside the groups
actor's process, and lives as long as the actor. The actor calls one method at a time per
resource. Every method is bounded by the driver's own timeouts (the configuration's
`start_timeout`, `mount_timeout`, ...): a driver never waits forever, and a failed start or stop
raises `ResourceError` with a message an operator can act on. Blocking work goes to a thread or
to a subprocess (`actors.resources.command`), never onto the actor's loop.

- `start(why)` / `stop(why)`: bring the resource up / down on this server. Must be safe to call
  again after a failure halfway (the retry policy calls it again).
- `active()`: does the resource really run here now? Asked after an actor restart, to re-check
  what the state file claims.
- `standby()`: at node start on a server that does not own the group (a disk goes read-only).
- `on_others(verb, why)`: the group has just started (`verb` "start") or stopped ("stop") on
  another server (an exec with `start_on_others` / `stop_on_others` runs its script here).
- `details()`: what `haven status` shows (an exec's `pid`, a fip's `ip`); small and JSON-safe.
- `saved()` / `restore(saved)`: what must survive an actor restart (an async exec's PID, with
  what proves it is still the same process).
- `close()`: the actor is stopping: let go of handles (never of the resource itself).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

# CLP_EVENT: why a start happens
EVENT_START = "START"  # a cluster start or an operator's start
EVENT_FAILOVER = "FAILOVER"  # the group came here because its server failed (or a move)
EVENT_RECOVER = "RECOVER"  # a monitor's recovery restarts it

# CLP_FACTOR: why a stop happens
FACTOR_GROUPSTOP = "GROUPSTOP"
FACTOR_GROUPMOVE = "GROUPMOVE"
FACTOR_GROUPFAILOVER = "GROUPFAILOVER"
FACTOR_RESOURCERESTART = "RESOURCERESTART"
FACTOR_CLUSTERSHUTDOWN = "CLUSTERSHUTDOWN"
FACTOR_SERVERSHUTDOWN = "SERVERSHUTDOWN"


class ResourceError(Exception):
    """A start or stop failed; the message says what and, where known, what to do."""


@dataclass(frozen=True)
class Why:
    """The circumstances of one start or stop (the exec driver's CLP_* variables)."""

    event: str = EVENT_START
    factor: str = ""  # for a stop: one of FACTOR_*
    home: bool = True  # this server is the first of the group's failover policy (CLP_SERVER)
    disk_ok: bool = True  # the group's disks started cleanly (CLP_DISK)


@dataclass
class ResourceContext:
    """Everything a driver knows of its place in the cluster."""

    server: str  # this server's name
    group: str
    resource: str
    params: dict[str, Any]  # the type's parameters as they apply on this server
    priority: int  # this server's place in the group's failover policy, 1 = first (CLP_PRIORITY)
    state_dir: str  # a folder of this resource's own (created by the actor)
    config_dir: str  # the configuration file's folder: relative script paths start here
    lab: bool = False  # running in the lab (tests, the demo): see supervisor/node_actions.py
    env: dict[str, str] = field(default_factory=dict)  # extra environment for what it runs
    log: Any = None  # a structlog logger bound to the resource

    def path(self, value: str) -> str:
        """A path parameter as written: absolute, or relative to the configuration's folder."""
        return os.path.join(self.config_dir, os.path.expanduser(value))


class Driver:
    """Base class of the drivers: `start` and `stop` are required, the rest has defaults."""

    def __init__(self, ctx: ResourceContext) -> None:
        self.ctx = ctx
        self.params = ctx.params

    async def start(self, why: Why) -> None:
        raise NotImplementedError

    async def stop(self, why: Why) -> None:
        raise NotImplementedError

    async def active(self) -> bool:
        raise NotImplementedError

    async def standby(self) -> None:
        return None

    async def on_others(self, verb: str, why: Why) -> None:
        return None

    def details(self) -> dict[str, Any]:
        return {}

    def saved(self) -> dict[str, Any]:
        return {}

    def restore(self, saved: dict[str, Any]) -> None:
        return None

    async def close(self) -> None:
        return None
