"""What a configuration change is, and what applying it needs (`haven config diff|push`).

Two parts. `field_changes` lists every changed setting by its place, in the words of the file
(`heartbeat "lanhb1" → port: 29002 → 29012`). `server_needs` says, per server, what applying the
change takes — and says it truthfully (SPEC §12-52) because it does not guess from the section's
name: the caller passes `runs(cluster, server)`, what that server's node runs under a
configuration (its supervisor settings and every actor's spec, arguments included). A server
whose node would run exactly the same needs nothing; one whose node would run anything else
needs its node service restarted, since actors take their configuration when they start. A
change no running part uses (today: groups, monitors, alerts) therefore needs nothing now, and
starts needing a restart the day an actor depends on it — unless that actor learns to take it
live at a suspend/resume, which is what `SUSPEND_RESUME` is for. Nothing in Haven needs a reboot
for a configuration change; `REBOOT` exists so the scale is complete.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

from config.catalog import DEFAULT_TYPES
from config.model import Cluster
from config.typespec import is_secret_key, mask_secrets


class Need(enum.IntEnum):
    NOTHING = 0
    SUSPEND_RESUME = 1
    RESTART = 2
    REBOOT = 3

    @property
    def words(self) -> str:
        return _WORDS[self]

    @property
    def key(self) -> str:  # for --json
        return self.name.lower()


_WORDS = {
    Need.NOTHING: "nothing",
    Need.SUSPEND_RESUME: "a suspend and resume of the cluster",
    Need.RESTART: "a restart of the node service",
    Need.REBOOT: "a reboot",
}

_SKIP = {"source", "text", "warnings", "priority"}  # not settings (priority = list order)
_ITEM = {
    "networks": "network",
    "servers": "server",
    "heartbeats": "heartbeat",
    "np": "np",
    "groups": "group",
    "resources": "resource",
    "monitors": "monitor",
    "alerts": "alert",
    "actors": "actor",
}


@dataclasses.dataclass(frozen=True)
class FieldChange:
    place: str
    old: Any  # None when added
    new: Any  # None when removed

    def __str__(self) -> str:
        if self.old is None:
            return f"{self.place}: added"
        if self.new is None:
            return f"{self.place}: removed"
        return f"{self.place}: {_show(self.old)} → {_show(self.new)}"


@dataclasses.dataclass(frozen=True)
class ServerNeed:
    server: str
    need: Need
    why: tuple[str, ...]


def field_changes(old: Cluster, new: Cluster) -> list[FieldChange]:
    out: list[FieldChange] = []
    _compare(old, new, "", out)
    order_old = [s.name for s in old.servers if s.name in {t.name for t in new.servers}]
    order_new = [s.name for s in new.servers if s.name in {t.name for t in old.servers}]
    if order_old != order_new:
        out.append(FieldChange("server order (priority)", order_old, order_new))
    return out


def _compare(a: Any, b: Any, place: str, out: list[FieldChange]) -> None:
    if a == b:
        return
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        for f in dataclasses.fields(a):
            if f.name not in _SKIP:
                _compare(getattr(a, f.name), getattr(b, f.name), _join(place, f.name), out)
    elif _named_items(a) and _named_items(b):
        _compare_named(a, b, place, out)
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b:
                out.append(FieldChange(_join(place, str(key)), _hide(key, a[key]), None))
            elif key not in a:
                out.append(FieldChange(_join(place, str(key)), None, _hide(key, b[key])))
            elif is_secret_key(str(key), _secrets()):  # never shown: set, changed or removed
                old = None if a[key] is None else "(secret)"
                new = None if b[key] is None else "(another secret)" if old else "(secret)"
                out.append(FieldChange(_join(place, str(key)), old, new))
            else:
                _compare(a[key], b[key], _join(place, str(key)), out)
    else:
        names = _secrets()
        out.append(
            FieldChange(place or "(whole file)", mask_secrets(a, names), mask_secrets(b, names))
        )


def _secrets() -> frozenset[str]:
    return DEFAULT_TYPES.secret_names()


def _hide(key: Any, value: Any) -> Any:
    if is_secret_key(str(key), _secrets()):
        return "(secret)"
    return mask_secrets(value, _secrets())


def _named_items(value: Any) -> bool:
    return isinstance(value, tuple) and all(
        dataclasses.is_dataclass(v) and hasattr(v, "name") for v in value
    )


def _compare_named(a: tuple, b: tuple, place: str, out: list[FieldChange]) -> None:
    """Items matched by name: a renamed item is one removed and one added."""
    field = place.rsplit(" → ", 1)[-1]
    label = _ITEM.get(field, field)
    parent = place.rsplit(" → ", 1)[0] if " → " in place else ""
    old, new = {x.name: x for x in a}, {x.name: x for x in b}
    for name in list(old) + [n for n in new if n not in old]:
        item_place = _join(parent, f'{label} "{name}"')
        if name not in new:
            out.append(FieldChange(item_place, "present", None))
        elif name not in old:
            out.append(FieldChange(item_place, None, "present"))
        else:
            _compare(old[name], new[name], item_place, out)


def _join(place: str, part: str) -> str:
    return f"{place} → {part}" if place else part


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def server_needs(
    old: Cluster, new: Cluster, runs: Callable[[Cluster, str], dict[str, Any]]
) -> list[ServerNeed]:
    """Per server (the old configuration's order, then new servers): what applying `new` takes."""
    old_names = [s.name for s in old.servers]
    new_names = [s.name for s in new.servers]
    out = []
    for server in old_names + [s for s in new_names if s not in old_names]:
        if server not in new_names:
            why = ("removed from the configuration: stop its node service",)
            out.append(ServerNeed(server, Need.RESTART, why))
            continue
        if server not in old_names:
            why = ("a new server: start its node service with this configuration",)
            out.append(ServerNeed(server, Need.RESTART, why))
            continue
        before, after = runs(old, server), runs(new, server)
        why = tuple(
            _what_changes(part, before.get(part), after.get(part))
            for part in list(before) + [p for p in after if p not in before]
            if before.get(part) != after.get(part)
        )
        out.append(ServerNeed(server, Need.RESTART if why else Need.NOTHING, why))
    return out


def _what_changes(part: str, before: Any, after: Any) -> str:
    if before is None:
        return f"{part} added"
    if after is None:
        return f"{part} removed"
    return f"{part} changed"


def overall(needs: list[ServerNeed]) -> Need:
    return max((n.need for n in needs), default=Need.NOTHING)
