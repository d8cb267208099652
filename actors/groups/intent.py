"""What the cluster wants of its groups, replicated to every live server before anyone acts on it.

The coordinator (the first live server in priority order) is the only writer. Every change gets
a new `version` and is written to every live server *before* the coordinator acts on it, so a
coordinator that dies halfway leaves its successor the full story: which group is wanted, where
an operator asked it to go, where it ran last (a server that vanished with a group still owns it
until it has fenced itself), where it failed to start.

The intent lives as long as the cluster runs: memory on every live server, and a file per server
that survives an actor restart within the same node run. A server that starts a new node run
forgets it and is brought up to date by the coordinator; when no live server holds one, the
cluster is starting and the coordinator makes the first (auto-startup groups wanted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class GroupIntent:
    wanted: bool = False
    target: str | None = None  # where an operator asked it to start or move
    last_owner: str | None = None  # the server it was last started on
    failed_on: tuple[str, ...] = ()  # activation failed there past the failover threshold
    failovers: int = 0  # activation failovers since it last came online
    origin: str = ""  # who set `target`/`wanted` last: an operator's request id, "startup", ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GroupIntent:
        return cls(
            wanted=bool(raw.get("wanted")),
            target=raw.get("target") if isinstance(raw.get("target"), str) else None,
            last_owner=raw.get("last_owner") if isinstance(raw.get("last_owner"), str) else None,
            failed_on=tuple(str(s) for s in raw.get("failed_on") or ()),
            failovers=int(raw.get("failovers") or 0),
            origin=str(raw.get("origin") or ""),
        )


@dataclass(frozen=True)
class Intent:
    version: int = 0  # 0: none yet (the cluster has not started its groups)
    writer: str = ""  # the coordinator that wrote this version
    groups: dict[str, GroupIntent] = field(default_factory=dict)
    suspended: bool = False  # `haven cluster suspend`: no decisions; groups keep running

    def group(self, name: str) -> GroupIntent:
        return self.groups.get(name, GroupIntent())

    def with_group(self, writer: str, name: str, **changes: Any) -> Intent:
        """A new version with one group changed."""
        groups = dict(self.groups)
        groups[name] = replace(self.group(name), **changes)
        return Intent(self.version + 1, writer, groups, self.suspended)

    def with_suspended(self, writer: str, suspended: bool) -> Intent:
        return Intent(self.version + 1, writer, dict(self.groups), suspended)

    def newer_than(self, other: Intent) -> bool:
        return (self.version, self.writer) > (other.version, other.writer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "writer": self.writer,
            "groups": {name: g.to_dict() for name, g in self.groups.items()},
            "suspended": self.suspended,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Intent:
        if not isinstance(raw, dict):
            return cls()
        groups = raw.get("groups") if isinstance(raw.get("groups"), dict) else {}
        return cls(
            version=int(raw.get("version") or 0),
            writer=str(raw.get("writer") or ""),
            groups={
                str(n): GroupIntent.from_dict(g) for n, g in groups.items() if isinstance(g, dict)
            },
            suspended=bool(raw.get("suspended")),
        )
