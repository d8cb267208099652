"""The event catalogue: every operator-relevant event Haven raises, in one table.

Each event has a module (the part of Haven that raises it), an event ID unique within the module
(numbered after the original's where one exists: membership ~ nm, groups ~ rc, monitor ~ rm), a
level (info / warning / error), a message template whose `{placeholders}` are the event's
details, and its default destinations — the alert log always; `syslog` and `exec` for nearly
everything; `mail` and `snmp` only for the events an operator must hear about at once (as the
original: a server went down, a resource failed to start or stop, a group active twice, ...).
A destination's `events` setting overrides the defaults (config/typed.py, README "Alerts").

Nothing else builds an alert: an actor calls `Actor.alert(event, **details)`, the supervisor
`alert_event(...)`, so every alert on the bus has a catalogue entry, a rendered message and the
same body shape (module, event, id, message, details...). The monitor rows are reserved for the
monitor issue: they are listed (IDs, levels, templates, routes) so destinations can be configured
for them now; nothing raises them yet.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from bus import topics

LEVELS = ("info", "warning", "error")
DESTINATIONS = ("syslog", "mail", "snmp", "exec")
SENDER_PREFIX = "alert."  # a destination's sender actor is alert.<name>, of kind alert.<type>
_USUAL = frozenset({"syslog", "exec"})
_URGENT = frozenset(DESTINATIONS)
_QUIET = frozenset({"exec"})  # frequent details: the alert log and an exec hook only


@dataclass(frozen=True, slots=True)
class EventSpec:
    module: str
    id: int
    name: str
    level: str
    template: str
    routes: frozenset[str] = _USUAL
    reserved: bool = False  # listed for a later issue; nothing raises it yet

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.template) if f)


def _e(module: str, id: int, name: str, level: str, template: str, **kw: Any) -> EventSpec:
    return EventSpec(module, id, name, level, template, **kw)


_TABLE = (
    # node: the supervisor of one server (the original's pm)
    _e("node", 1, "node_started", "info", "cluster service started on {server} ({actors} actors)"),
    _e("node", 2, "node_stopping", "info", "cluster service stopping on {server} ({reason})"),
    _e(
        "node",
        10,
        "auto_start_held",
        "warning",
        "automatic start of groups is held: the cluster service was not stopped in order last time",
    ),
    _e(
        "node",
        20,
        "actor_restarted",
        "warning",
        "actor {actor} exited ({exit}); restarting it (restart {restarts})",
    ),
    _e(
        "node",
        21,
        "actor_failed",
        "error",
        "actor {actor} failed: {reason}",
        routes=_URGENT,
    ),
    _e("node", 22, "node_action", "error", "node action {action}: {reason}", routes=_URGENT),
    # membership: servers, heartbeat paths, network-partition resolution, cluster start (nm)
    _e("membership", 1, "server_up", "info", "server {server} is up"),
    _e(
        "membership",
        2,
        "server_down",
        "error",
        "server {server} is down: every heartbeat path to it is silent",
        routes=_URGENT,
    ),
    _e(
        "membership",
        3,
        "path_restored",
        "info",
        "heartbeat {heartbeat} to server {server} restored",
    ),
    _e("membership", 4, "path_lost", "warning", "heartbeat {heartbeat} to server {server} lost"),
    _e(
        "membership",
        5,
        "one_path_left",
        "warning",
        "only one heartbeat path to server {server} is left ({heartbeat})",
    ),
    _e(
        "membership",
        6,
        "delay_warning",
        "warning",
        "heartbeat {heartbeat} from server {server} is late",
        routes=_QUIET,
    ),
    _e(
        "membership",
        10,
        "startup_wait",
        "info",
        "waiting up to {wait}s for the other servers to start: {missing}",
    ),
    _e("membership", 11, "startup_complete", "info", "every server is up: cluster start complete"),
    _e(
        "membership",
        12,
        "startup_timeout",
        "warning",
        "cluster start: stopped waiting; going on without {missing}",
        routes=_URGENT,
    ),
    _e(
        "membership",
        20,
        "np_survive",
        "info",
        "network partition check: this server goes on ({verdicts}); lost: {lost_servers}",
    ),
    _e(
        "membership",
        21,
        "np_isolated",
        "error",
        "{reason}; node action: {action}",
        routes=_URGENT,
    ),
    _e(
        "membership",
        22,
        "server_fenced",
        "info",
        "server {server} is down and has surely fenced itself",
    ),
    # np: network-partition resolution resources
    _e("np", 1, "np_error", "warning", "NP resource {np}: {problem}"),
    _e("np", 2, "np_recovered", "info", "NP resource {np}: {recovered}"),
    _e("np", 3, "np_lease_lost", "error", "{reason}; node action: {action}", routes=_URGENT),
    # groups: failover groups and their resources (rc)
    _e("groups", 1, "groups_startup", "info", "cluster start: starting groups {names}"),
    _e("groups", 2, "cluster_started", "info", "cluster start: every automatic group wanted"),
    _e("groups", 3, "cluster_suspended", "info", "cluster suspended: no more decisions"),
    _e("groups", 4, "cluster_resumed", "info", "cluster resumed"),
    _e("groups", 10, "group_start_started", "info", "group {group}: starting on {server}"),
    _e("groups", 11, "group_start_completed", "info", "group {group}: started on {server}"),
    _e(
        "groups",
        12,
        "group_start_failed",
        "error",
        "group {group}: failed to start on {server}: {error}",
    ),
    _e(
        "groups", 20, "group_stop_started", "info", "group {group}: stopping on {server} ({reason})"
    ),
    _e("groups", 21, "group_stop_completed", "info", "group {group}: stopped on {server}"),
    _e(
        "groups",
        22,
        "group_stop_failed",
        "error",
        "group {group}: failed to stop on {server} ({error}); final action {final_action}",
        routes=_URGENT,
    ),
    _e("groups", 50, "group_move_started", "info", "group {group}: moving to {server}"),
    _e("groups", 51, "group_move_completed", "info", "group {group}: moved to {server}"),
    _e(
        "groups",
        52,
        "group_move_failed",
        "error",
        "group {group}: failed to move to {server}: {error}",
    ),
    _e(
        "groups", 60, "group_failover_started", "warning", "group {group}: failing over to {server}"
    ),
    _e("groups", 61, "group_failover_completed", "info", "group {group}: failed over to {server}"),
    _e(
        "groups",
        62,
        "group_failover_failed",
        "error",
        "group {group}: failover to {server} failed: {error}",
        routes=_URGENT,
    ),
    _e("groups", 74, "group_failback_started", "info", "group {group}: failing back to {server}"),
    _e("groups", 75, "group_failback_completed", "info", "group {group}: failed back to {server}"),
    _e(
        "groups",
        76,
        "group_failback_failed",
        "error",
        "group {group}: failback to {server} failed: {error}",
    ),
    _e(
        "groups",
        32,
        "resource_start_failed",
        "error",
        "resource {resource} of group {group} failed to start on {server}: {error}",
        routes=_URGENT,
    ),
    _e(
        "groups",
        42,
        "resource_stop_failed",
        "error",
        "resource {resource} of group {group} failed to stop on {server}: {error}",
        routes=_URGENT,
    ),
    _e(
        "groups",
        80,
        "group_activation_failover",
        "warning",
        "group {group} failed to start on {server} ({error}): failing over ({attempt} of "
        "{threshold})",
    ),
    _e(
        "groups",
        81,
        "group_activation_failed",
        "error",
        "group {group} failed to start on {server} ({error}); failover threshold reached: final "
        "action {final_action}",
        routes=_URGENT,
    ),
    _e(
        "groups",
        92,
        "double_activation",
        "error",
        "group {group} is active on {servers} at once: {what}",
        routes=_URGENT,
    ),
    # monitor: monitor resources and their recovery steps (rm) — raised by the monitor issue
    _e("monitor", 1, "monitor_warning", "warning", "monitor {monitor}: {detail}", reserved=True),
    _e(
        "monitor",
        9,
        "monitor_error",
        "error",
        "monitor {monitor} detected an error: {detail}",
        routes=_URGENT,
        reserved=True,
    ),
    _e("monitor", 10, "monitor_recovered", "info", "monitor {monitor}: recovered", reserved=True),
    _e(
        "monitor",
        12,
        "monitor_reactivation",
        "warning",
        "monitor {monitor}: restarting {target} ({attempt} of {threshold})",
        reserved=True,
    ),
    _e(
        "monitor",
        13,
        "monitor_failover",
        "warning",
        "monitor {monitor}: failing group {target} over ({attempt} of {threshold})",
        reserved=True,
    ),
    _e(
        "monitor",
        14,
        "monitor_final_action",
        "error",
        "monitor {monitor}: final action {final_action}",
        routes=_URGENT,
        reserved=True,
    ),
    _e("monitor", 20, "monitor_suspended", "info", "monitor {monitor} suspended", reserved=True),
    _e("monitor", 21, "monitor_resumed", "info", "monitor {monitor} resumed", reserved=True),
    # config: the cluster configuration
    _e(
        "config",
        1,
        "config_changed",
        "info",
        "configuration changed on {server} (by {origin}): {summary}",
    ),
    # alert: the alert service itself
    _e("alert", 1, "alert_test", "info", "test alert to {destination}: {text}"),
    _e(
        "alert",
        2,
        "alert_delivery_failing",
        "warning",
        "alert destination {destination} ({type}) is failing: {error}; retrying",
        routes=frozenset({"syslog"}),
    ),
    _e(
        "alert",
        3,
        "alert_delivery_restored",
        "info",
        "alert destination {destination} ({type}) delivers again ({pending} alerts caught up)",
        routes=frozenset({"syslog"}),
    ),
    _e(
        "alert",
        4,
        "alerts_dropped",
        "warning",
        "alert destination {destination}: {count} alerts dropped (its queue was full)",
        routes=frozenset({"syslog"}),
    ),
)

EVENTS: dict[str, EventSpec] = {e.name: e for e in _TABLE}
BY_ID: dict[tuple[str, int], EventSpec] = {(e.module, e.id): e for e in _TABLE}
assert len(EVENTS) == len(_TABLE) and len(BY_ID) == len(_TABLE), "duplicate catalogue entry"


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _text(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "(none)"
    return value


def render(spec: EventSpec, details: dict[str, Any]) -> str:
    """The message: the template with the details filled in (lists joined; a missing detail is
    `?`, never an exception — an alert must not fail the actor that raises it)."""
    return string.Formatter().vformat(
        spec.template, (), _Missing({k: _text(v) for k, v in details.items()})
    )


def alert_event(name: str, **details: Any) -> tuple[str, dict[str, Any]]:
    """The (topic, body) of one alert. Unknown names are a programming error (KeyError)."""
    spec = EVENTS[name]
    body = {**details, "module": spec.module, "event": spec.name, "id": spec.id}
    body["message"] = render(spec, details)
    return topics.alert(spec.level), body


def routed_to(spec: EventSpec | None, kind: str, events: tuple[str, ...] | None) -> bool:
    """Whether a destination of type `kind` takes this event: its own `events` list when it has
    one (`default` in the list stands for the catalogue's routes, `all` for everything), else
    the catalogue's routes. An event the catalogue does not know goes where `all` is asked."""
    if events is None:
        events = ("default",)
    if "all" in events:
        return True
    if spec is None:
        return False
    if spec.name in events or f"{spec.module}.{spec.id}" in events or spec.module in events:
        return True
    return "default" in events and kind in spec.routes
