"""One failover group as it is on this server: its resource drivers, its state, start and stop.

Start runs the resources in dependency order, stop in reverse. A resource that fails to start is
tried again `activation.retry` times; then, unless its final action is `ignore` (go on with the
next), the group stops there in `error` with the failure recorded: the coordinator decides
between a failover (the group is released here and started elsewhere) and the final action.
A resource that fails to stop is tried again `deactivation.retry` times; then its final action
applies on this server at once (`ignore` goes on with the next resource; anything else leaves
the group in `error`, still owned here, so no other server can start it before this one has
fenced itself).

Group states: offline, starting, online, stopping, error. Resource states: offline, starting,
online, stopping, error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.resources.base import Driver, ResourceError, Why

OFFLINE, STARTING, ONLINE, STOPPING, ERROR = "offline", "starting", "online", "stopping", "error"
OWNING = (STARTING, ONLINE, STOPPING, ERROR)  # a server in these states owns the group
RETRY_PAUSE = 0.2  # seconds between two tries of one resource

# Budgets of one start/stop try per resource type, when its own parameters say nothing.
DEFAULT_STEP_BUDGET = 60.0
TIMEOUT_PARAMS = {
    "start": ("start_timeout", "mount_timeout", "fsck_timeout"),
    "stop": ("stop_timeout", "umount_timeout"),
}


@dataclass
class Failure:
    phase: str  # activation | deactivation
    resource: str
    error: str
    final_action: str
    at: float  # wall clock, for display
    serial: int  # tells one failure from the next of the same resource
    handled: bool = False  # the coordinator has dealt with it (a final action that keeps it)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LocalResource:
    def __init__(self, spec: dict[str, Any], driver: Driver) -> None:
        self.name: str = spec["name"]
        self.type: str = spec["type"]
        self.spec = spec
        self.driver = driver
        self.state = OFFLINE
        self.error = ""

    def snapshot(self) -> dict[str, Any]:
        out = {"type": self.type, "state": self.state}
        if self.error:
            out["error"] = self.error
        try:
            out.update(self.driver.details())
        except Exception as exc:  # details are for display: never let them break status
            out["details_error"] = repr(exc)
        return out


class LocalGroup:
    def __init__(
        self,
        spec: dict[str, Any],
        resources: list[LocalResource],
        changed: Callable[[LocalGroup], None],
        log: Any,
        alert: Callable[..., None] | None = None,
    ) -> None:
        self.name: str = spec["name"]
        self.spec = spec
        by_name = {r.name: r for r in resources}
        self.resources = [by_name[n] for n in spec["start_order"] if n in by_name]
        self.state = OFFLINE
        self.failure: Failure | None = None
        self.changed = changed
        self.log = log
        self.alert = alert or (lambda event, **details: None)  # Actor.alert of the owner
        self.task: asyncio.Task[None] | None = None  # the start or stop under way
        self.serial = 0

    # state -----------------------------------------------------------------------------------
    def set_state(self, state: str) -> None:
        self.state = state
        self.changed(self)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "resources": {r.name: r.snapshot() for r in self.resources},
        }
        if self.failure is not None:
            out["failure"] = self.failure.to_dict()
        return out

    def saved(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "resources": {
                r.name: {"state": r.state, "saved": r.driver.saved()} for r in self.resources
            },
        }

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def resource(self, name: str) -> LocalResource | None:
        return next((r for r in self.resources if r.name == name), None)

    # start / stop ------------------------------------------------------------------------------
    async def activate(self, why: Why) -> bool:
        """Start every resource in order; False when the group ends in error here."""
        self.failure = None
        self.set_state(STARTING)
        for r in self.resources:
            if r.state == ONLINE and await _active(r):
                continue
            error = await self._try(r, "start", why)
            if error is None:
                continue
            policy = r.spec["activation"]
            if policy["final_action"] == "ignore":
                self.log.warning("resource failed to start; ignored", resource=r.name, error=error)
                continue
            self._fail("activation", r, error, policy["final_action"])
            self.set_state(ERROR)
            return False
        self.set_state(ONLINE)
        return True

    async def deactivate(self, why: Why) -> Failure | None:
        """Stop every resource in reverse order; the failure whose final action must apply."""
        self.set_state(STOPPING)
        for r in reversed(self.resources):
            if r.state == OFFLINE and not await _active(r):
                continue
            error = await self._try(r, "stop", why)
            if error is None:
                continue
            policy = r.spec["deactivation"]
            if policy["final_action"] == "ignore":
                self.log.warning("resource failed to stop; ignored", resource=r.name, error=error)
                continue
            failure = self._fail("deactivation", r, error, policy["final_action"])
            self.set_state(ERROR)
            return failure
        self.failure = None
        self.set_state(OFFLINE)
        return None

    async def start_resource(self, name: str, why: Why) -> str | None:
        """One resource (an operator's `haven resource start`): None, or the error."""
        r = self.resource(name)
        assert r is not None
        return await self._try(r, "start", why)

    async def stop_resource(self, name: str, why: Why) -> str | None:
        r = self.resource(name)
        assert r is not None
        return await self._try(r, "stop", why)

    async def _try(self, r: LocalResource, verb: str, why: Why) -> str | None:
        """Start or stop one resource with its retries; None on success, else the last error."""
        policy = r.spec["activation" if verb == "start" else "deactivation"]
        tries = 1 + int(policy["retry"])
        r.state = STARTING if verb == "start" else STOPPING
        self.changed(self)
        error = ""
        for attempt in range(1, tries + 1):
            try:
                async with asyncio.timeout(step_budget(r.spec, verb)):
                    await (r.driver.start(why) if verb == "start" else r.driver.stop(why))
            except ResourceError as exc:
                error = str(exc)
            except TimeoutError:
                error = f"{verb} of resource {r.name} did not finish in time"
            except Exception as exc:  # a driver bug must not leave the group undefined
                self.log.error("driver failed", resource=r.name, verb=verb, error=repr(exc))
                error = f"{verb} of resource {r.name} failed: {exc!r}"
            else:
                r.state = ONLINE if verb == "start" else OFFLINE
                r.error = ""
                self.changed(self)
                return None
            self.log.warning(
                f"resource failed to {verb}", resource=r.name, attempt=attempt, error=error
            )
            if attempt < tries:
                await asyncio.sleep(RETRY_PAUSE)
        r.state = ERROR
        r.error = error
        self.changed(self)
        self.alert(
            "resource_start_failed" if verb == "start" else "resource_stop_failed",
            group=self.name,
            resource=r.name,
            error=error,
            attempts=tries,
        )
        return error

    def _fail(self, phase: str, r: LocalResource, error: str, action: str) -> Failure:
        self.serial += 1
        self.failure = Failure(phase, r.name, error, action, time.time(), self.serial)
        return self.failure

    # restart of the actor ------------------------------------------------------------------------
    def restore(self, saved: dict[str, Any]) -> None:
        for r in self.resources:
            entry = (saved.get("resources") or {}).get(r.name) or {}
            r.state = entry.get("state") or OFFLINE
            try:
                r.driver.restore(entry.get("saved") or {})
            except Exception as exc:
                self.log.warning("driver state not restored", resource=r.name, error=repr(exc))
        self.state = saved.get("state") or OFFLINE

    async def recheck(self) -> None:
        """After an actor restart: believe the real resources, not the file."""
        if self.state == OFFLINE and not any(r.state != OFFLINE for r in self.resources):
            return
        for r in self.resources:
            r.state = ONLINE if await _active(r) else OFFLINE
        states = {r.state for r in self.resources}
        if states == {ONLINE}:
            self.state = ONLINE
        elif states <= {OFFLINE}:
            self.state = OFFLINE
        else:  # half started: not offline, so no other server may start it
            self.state = ERROR
            self.failure = Failure(
                "activation",
                "",
                "found half started after a restart",
                "do_nothing",
                time.time(),
                0,
                True,
            )
        self.changed(self)


async def _active(r: LocalResource) -> bool:
    try:
        async with asyncio.timeout(step_budget(r.spec, "start")):
            return await r.driver.active()
    except Exception:
        return False


def step_budget(spec: dict[str, Any], verb: str) -> float:
    """The longest one start or stop of a resource may take: its own timeouts added up (a
    disk's fsck and mount), else a default. The driver keeps to them; this is the backstop."""
    params = spec.get("params") or {}
    total = sum(float(params[p]) for p in TIMEOUT_PARAMS[verb] if params.get(p) is not None)
    if spec.get("type") == "disk" and verb == "stop":
        total *= 1 + int(params.get("umount_retry") or 0)
    if spec.get("type") == "disk" and verb == "start":
        total += float(params.get("mount_timeout") or 0) * int(params.get("mount_retry") or 0)
    return (total or DEFAULT_STEP_BUDGET) + 5.0


def phase_budget(resources: list[dict[str, Any]], verb: str) -> float:
    """The longest a whole start or stop of a group may take on one server."""
    key = "activation" if verb == "start" else "deactivation"
    return sum(
        step_budget(r, verb) * (1 + int(r[key]["retry"])) + RETRY_PAUSE * int(r[key]["retry"])
        for r in resources
    )
