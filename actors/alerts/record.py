"""One alert as the alert service handles it: what the alert log stores and the senders send.

Built from the bus envelope the event came in: its server is the envelope's origin (set by the
server that raised it and checked by the link against the authenticated peer — SPEC §12-49),
never a name carried in the body.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from actors.alerts.catalogue import EVENTS, LEVELS
from bus import topics
from bus.envelope import Envelope

_HEAD = ("module", "event", "id", "message")


@dataclass(frozen=True, slots=True)
class Alert:
    server: str  # the server it happened on
    module: str
    event: str
    id: int
    level: str
    message: str
    time: float  # the origin's wall clock: for display only
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(cls, env: Envelope) -> Alert:
        level = env.topic.removeprefix(topics.ALERT)
        body = env.body if isinstance(env.body, dict) else {}
        event = str(body.get("event", ""))
        spec = EVENTS.get(event)
        try:
            event_id = int(body.get("id", spec.id if spec else 0))
        except (TypeError, ValueError):
            event_id = 0
        return cls(
            server=env.server,
            module=str(body.get("module") or env.actor),
            event=event,
            id=event_id,
            level=level if level in LEVELS else "info",
            message=str(body.get("message", "")),
            time=env.time,
            details={k: v for k, v in body.items() if k not in _HEAD},
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(
            server=str(d.get("server", "")),
            module=str(d.get("module", "")),
            event=str(d.get("event", "")),
            id=int(d.get("id") or 0),
            level=str(d.get("level", "info")),
            message=str(d.get("message", "")),
            time=float(d.get("time") or 0.0),
            details=dict(d.get("details") or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
