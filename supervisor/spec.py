"""Child specifications as data (OTP style): what to run, how to restart it, how long to stop it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Restart(StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted unless it exited 0
    TEMPORARY = "temporary"  # never restarted


@dataclass(frozen=True)
class ChildSpec:
    name: str
    kind: str  # a key of actors.registry.ACTOR_KINDS
    args: dict[str, Any] = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT
    stop_timeout: float = 10.0  # SIGTERM, then SIGKILL after this long
    critical: bool = False  # escalation past the restart intensity triggers the node-level action
    start_timeout: float = 10.0  # launched → first beat
    fence_early: bool = False  # stopped first when the node stands down (heartbeats)


@dataclass(frozen=True)
class SupervisorSettings:
    server: str
    cluster: str
    state_dir: str
    max_restarts: int = 5  # restart intensity: at most this many restarts ...
    restart_window: float = 30.0  # ... within this many seconds
    beat_interval: float = 0.5
    beat_timeout: float = 3.0
    on_critical_failure: str = "stop_service"
    hold_after_unclean_stop: bool = True
    fence_time: float = 10.0  # a standing-down node is stopped within this, then killed
    lab: bool = False  # node-level actions take their lab form (no OS shutdown, no sysrq)
    launcher: str = "template"  # template | spawn
    log_format: str = "auto"
    config_path: str = ""  # the configuration this node runs, as loaded at start
    config_text: str = ""
