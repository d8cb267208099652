"""One supervised actor: its named states and guarded transitions (as supervisord's, with an event
on every transition — see Node._set_state)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum

from supervisor.intensity import RestartIntensity
from supervisor.spec import ChildSpec


class ChildState(StrEnum):
    STARTING = "starting"  # launched, no beat yet
    RUNNING = "running"  # beating
    RESTARTING = "restarting"  # exited or killed; waiting out the back-off
    FAILED = "failed"  # gave up: restart intensity exceeded, or not to be restarted after a failure
    STOPPED = "stopped"  # not running, on purpose


ALLOWED: dict[ChildState, set[ChildState]] = {
    ChildState.STOPPED: {ChildState.STARTING},
    ChildState.STARTING: {
        ChildState.RUNNING,
        ChildState.RESTARTING,
        ChildState.FAILED,
        ChildState.STOPPED,
    },
    ChildState.RUNNING: {ChildState.RESTARTING, ChildState.FAILED, ChildState.STOPPED},
    ChildState.RESTARTING: {ChildState.STARTING, ChildState.FAILED, ChildState.STOPPED},
    ChildState.FAILED: {ChildState.STARTING, ChildState.STOPPED},
}


class BadTransition(RuntimeError):
    pass


@dataclass
class Child:
    spec: ChildSpec
    intensity: RestartIntensity
    state: ChildState = ChildState.STOPPED
    pid: int | None = None
    pidfd: int | None = None
    restarts: int = 0
    launched_at: float = 0.0  # monotonic
    last_beat: float = 0.0  # monotonic
    last_exit: str = ""
    bus_dropped: int = 0  # frames the actor's bus connection dropped, from its last beat
    since: float = 0.0  # wall clock of the last transition, for display only
    reason: str = ""  # why the last transition happened
    stop_requested: bool = False
    kill_reason: str = ""
    killed_at: float = 0.0  # monotonic time of our SIGKILL
    pending_restart: asyncio.TimerHandle | None = field(default=None, repr=False)

    def transition(self, new: ChildState) -> ChildState:
        if new is not self.state and new not in ALLOWED[self.state]:
            raise BadTransition(f"{self.spec.name}: {self.state} → {new} is not allowed")
        old, self.state = self.state, new
        self.since = time.time()
        return old
