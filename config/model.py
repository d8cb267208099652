"""The validated configuration: immutable data, durations in float seconds.

Only `config.loader` builds these, and only from a configuration without errors, so every
reference in them (server, network, resource, group, monitor names) is known to exist. Type
parameters (`params`) hold every parameter of the type's schema, `None` where it is optional and
unset; `per_server` maps a server name to the parameters that differ on that server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from config.issues import Issue


@dataclass(frozen=True)
class Network:
    name: str
    subnet: str  # CIDR, e.g. "198.18.0.0/24"


@dataclass(frozen=True)
class Server:
    name: str
    priority: int  # 0 = the master server (first in the list)
    addresses: dict[str, str]  # network name -> IP address


@dataclass(frozen=True)
class Timing:
    profile: str
    heartbeat_interval: float
    heartbeat_timeout: float
    startup_wait: float  # how long a starting server waits for the others
    heartbeat_delay_warning: int = 50  # % of the timeout: a later beat is a delay warning


@dataclass(frozen=True)
class Ports:
    link: int
    transfer: int
    alert_sync: int
    web: int
    mirror_agent: int


@dataclass(frozen=True)
class NodeActor:
    """An extra built-in actor run on every server (`[[node.actor]]`)."""

    name: str
    kind: str  # a key of actors.registry.ACTOR_KINDS
    critical: bool
    restart: str  # permanent | transient | temporary
    stop_timeout: float
    args: dict[str, Any]  # free-form, passed to the actor as written (durations stay strings)


@dataclass(frozen=True)
class NodeSettings:
    """Supervision of this server's own actor processes (`[node]`)."""

    max_restarts: int  # at most max_restarts restarts ...
    restart_window: float  # ... within restart_window seconds, else escalate
    beat_interval: float
    beat_timeout: float
    stop_timeout: float
    on_critical_failure: str  # stop_service | shutdown | reboot | panic
    on_isolation: str = "shutdown"  # what NP resolution does to a server found isolated
    hold_after_unclean_stop: bool = True  # hold automatic group start after a crash
    actors: tuple[NodeActor, ...] = ()


class _Typed:
    """Shared by everything that has a type, parameters and per-server overrides."""

    params: dict[str, Any]
    per_server: dict[str, dict[str, Any]]

    def params_for(self, server: str) -> dict[str, Any]:
        """The parameters as they apply on `server` (overrides merged in)."""
        return {**self.params, **self.per_server.get(server, {})}


@dataclass(frozen=True)
class Heartbeat(_Typed):
    name: str
    type: str
    priority: int  # order in the file, 0 first
    servers: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    per_server: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class NpResource(_Typed):
    name: str
    type: str
    servers: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    per_server: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FailurePolicy:
    """What to do when a resource fails to start (activation) or to stop (deactivation)."""

    retry: int
    failover_threshold: int  # always 0 for deactivation
    final_action: str  # a key of config.defaults.FINAL_ACTIONS


@dataclass(frozen=True)
class GroupResource(_Typed):
    name: str
    type: str
    group: str
    depends_on: tuple[str, ...]  # resources of the same group started before this one
    activation: FailurePolicy
    deactivation: FailurePolicy
    params: dict[str, Any] = field(default_factory=dict)
    per_server: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    name: str
    servers: tuple[str, ...]  # the failover policy: first = preferred
    startup: str  # auto | manual
    failover: str  # auto | manual
    failback: str  # auto | manual
    exclusive: str  # none | normal | complete
    resources: tuple[GroupResource, ...]
    start_order: tuple[str, ...]  # resource names in dependency order; stop in reverse
    on_double_activation: str = "stop_others"  # stop_others | stop_all | do_nothing

    def resource(self, name: str) -> GroupResource | None:
        return next((r for r in self.resources if r.name == name), None)


@dataclass(frozen=True)
class MonitorRecovery:
    target_type: str  # resource | group | local_server
    target: str | None  # resource or group name; None for local_server
    reactivation_threshold: int
    failover_threshold: int
    final_action: str


@dataclass(frozen=True)
class Monitor(_Typed):
    name: str
    type: str
    interval: float
    timeout: float
    retry: int
    start_wait: float
    monitoring: str  # always | while_active
    target: str | None  # the watched resource (required for while_active and some types)
    servers: tuple[str, ...]
    delay_warning: int  # percent of the timeout; 0 = warn on every check, 100 = never
    recovery: MonitorRecovery
    params: dict[str, Any] = field(default_factory=dict)
    per_server: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertDestination:
    name: str
    type: str
    min_level: str  # info | warning | error
    params: dict[str, Any] = field(default_factory=dict)
    # which events it takes: None = the catalogue's default routes for its type; else event
    # names, `module`, `module.id`, `default` (the defaults too) or `all`
    events: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Cluster:
    """The whole validated configuration of one cluster."""

    name: str
    networks: tuple[Network, ...]
    servers: tuple[Server, ...]
    timing: Timing
    ports: Ports
    node: NodeSettings
    heartbeats: tuple[Heartbeat, ...] = ()
    np: tuple[NpResource, ...] = ()
    groups: tuple[Group, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    alerts: tuple[AlertDestination, ...] = ()
    key_file: str | None = None  # the cluster key (heartbeat HMAC), as written in [cluster]
    source: str = "<string>"  # file path, or what the caller named the text
    text: str = ""  # the configuration text as read, for `config diff`
    warnings: tuple[Issue, ...] = ()

    def key_path(self) -> str | None:
        """The cluster key file; a relative path is relative to the configuration file."""
        if self.key_file is None:
            return None
        return self.resolve_path(self.key_file)

    def resolve_path(self, path: str) -> str:
        """A file or device path as written in the configuration: a relative one is relative to
        the configuration file (the key file, heartbeat and disk devices)."""
        base = os.path.dirname(os.path.abspath(self.source)) if self.source != "<string>" else ""
        return os.path.join(base, os.path.expanduser(path))

    @property
    def master(self) -> Server:
        return self.servers[0]

    def server(self, name: str) -> Server | None:
        """The server called `name`, or None."""
        return next((s for s in self.servers if s.name == name), None)

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def resource(self, name: str) -> GroupResource | None:
        """A group resource by name (names are unique across the cluster)."""
        return next((r for g in self.groups for r in g.resources if r.name == name), None)

    def monitor(self, name: str) -> Monitor | None:
        return next((m for m in self.monitors if m.name == name), None)

    def heartbeat(self, name: str) -> Heartbeat | None:
        return next((h for h in self.heartbeats if h.name == name), None)
