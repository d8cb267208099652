"""What a supervisor hands to a new actor process: plain data, so it crosses a fork or an exec."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LAUNCH_ENV = "HAVEN_ACTOR_LAUNCH"  # how a freshly spawned interpreter receives its launch


@dataclass(frozen=True)
class ActorLaunch:
    name: str
    kind: str
    server: str
    state_dir: str
    beat_interval: float
    stop_timeout: float
    args: dict[str, Any] = field(default_factory=dict)
    log_format: str = "auto"  # auto | json | console
    supervisor_pid: int = 0  # the actor ends itself if this process dies (0: do not watch)
    node_run: str = ""  # random per run of the node: tells a restart within a run from a new run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActorLaunch:
        return cls(**data)
