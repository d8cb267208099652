"""Type tables: for each kind of typed object, which types exist and what parameters each takes.

Five kinds have types: heartbeat, np, resource, monitor, alert. A `TypeSpec` says a type's
parameters and whether this version implements it. The validator refuses a known type that is not
implemented (`resource type "fip" is not available in this version`) as firmly as an unknown one:
a configuration is never accepted for something that would then silently do nothing.
The real tables are in `config/catalog.py`; tests pass their own through `TypeTables`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from config.durations import parse_duration
from config.reader import MISSING, Reader, describe, ip_problem, quoted, suggest
from config.references import Known

KINDS: dict[str, str] = {
    # kind -> how its types are named in messages
    "heartbeat": "heartbeat",
    "np": "NP resolution",
    "resource": "resource",
    "monitor": "monitor",
    "alert": "alert destination",
}

PARAM_KINDS = (
    "str",  # a non-empty string
    "secret",  # a string never shown in logs or status (passwords)
    "path",  # a file or device path
    "int",
    "bool",
    "duration",  # written "3s", stored as float seconds
    "choice",  # one of `choices`
    "ip",
    "ip_list",
    "str_list",
    "port",  # a port of something else (a server we check)
    "listen_port",  # a port Haven binds: checked for overlaps
    "network",  # the name of a [[network]]
    "network_list",
    "monitor_list",  # names of [[monitor]]s
    "table",  # free-form table
)


@dataclass(frozen=True)
class Param:
    """One parameter of a type."""

    name: str
    kind: str
    default: Any = None
    required: bool = False
    bounds: tuple | None = None  # int / duration / port range, inclusive
    choices: tuple[str, ...] = ()
    per_server: bool = False  # may differ per server (under `per_server."<server>"`)
    protocol: str = ""  # listen_port: "tcp" or "udp"
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class TypeSpec:
    """One type of heartbeat, NP resolution, resource, monitor or alert destination."""

    name: str
    description: str
    params: tuple[Param, ...] = ()
    implemented: bool = False
    # monitors only: whether `target` is required, and which resource types it may name
    needs_target: bool = False
    target_types: tuple[str, ...] = ()

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# Words that make a configuration key secret wherever it appears (OCF parameters, exec
# environments, actor arguments), on top of the type tables' parameters of kind "secret".
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential", "community")


def is_secret_key(key: str, names: frozenset[str]) -> bool:
    """Whether a configuration key holds a secret: a parameter of kind "secret" (`names`,
    from `TypeTables.secret_names`) or a key named like one."""
    low = key.lower()
    return key in names or any(word in low for word in SECRET_WORDS)


def mask_secrets(value: Any, names: frozenset[str]) -> Any:
    """`value` with whatever sits under a secret key, at any depth, replaced by "(secret)"."""
    if isinstance(value, Mapping):
        return {
            k: "(secret)" if is_secret_key(str(k), names) else mask_secrets(v, names)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, names) for v in value]
    return value


@dataclass(frozen=True)
class TypeTables:
    """The type table of every kind; the validator takes one of these."""

    heartbeat: Mapping[str, TypeSpec]
    np: Mapping[str, TypeSpec]
    resource: Mapping[str, TypeSpec]
    monitor: Mapping[str, TypeSpec]
    alert: Mapping[str, TypeSpec]

    def of(self, kind: str) -> Mapping[str, TypeSpec]:
        return getattr(self, kind)

    def secret_names(self) -> frozenset[str]:
        """The names of every secret parameter (passwords, communities, keys): what `config
        diff` and log collection must never show."""
        return frozenset(
            p.name
            for kind in KINDS
            for spec in self.of(kind).values()
            for p in spec.params
            if p.kind == "secret"
        )

    def with_implemented(self, **names: Iterable[str]) -> TypeTables:
        """A copy where the named types are marked implemented, e.g. `resource=["fip"]`."""
        changes = {}
        for kind, wanted in names.items():
            table = dict(self.of(kind))
            for name in wanted:
                table[name] = replace(table[name], implemented=True)
            changes[kind] = table
        return replace(self, **changes)


# --- constructors used by the catalog ------------------------------------------------------


def _seconds(value: str | None) -> float | None:
    return None if value is None else parse_duration(value)


def text(name: str, default: str | None = None, **kw: Any) -> Param:
    return Param(name, "str", default, **kw)


def secret(name: str, **kw: Any) -> Param:
    return Param(name, "secret", None, **kw)


def path(name: str, default: str | None = None, **kw: Any) -> Param:
    return Param(name, "path", default, **kw)


def number(name: str, default: int | None, lo: int, hi: int, **kw: Any) -> Param:
    return Param(name, "int", default, bounds=(lo, hi), **kw)


def flag(name: str, default: bool, **kw: Any) -> Param:
    return Param(name, "bool", default, **kw)


def dur(name: str, default: str | None, lo: str, hi: str, **kw: Any) -> Param:
    return Param(name, "duration", _seconds(default), bounds=(_seconds(lo), _seconds(hi)), **kw)


def one_of(name: str, default: str | None, *choices: str, **kw: Any) -> Param:
    return Param(name, "choice", default, choices=choices, **kw)


def port(name: str, default: int | None, **kw: Any) -> Param:
    return Param(name, "port", default, bounds=(1, 65535), **kw)


def listen_port(name: str, default: int | None, protocol: str, **kw: Any) -> Param:
    return Param(name, "listen_port", default, bounds=(1, 65535), protocol=protocol, **kw)


def of_kind(name: str, kind: str, **kw: Any) -> Param:
    """A parameter of any kind: references (`network`, ...), lists, `ip`, `table`."""
    return Param(name, kind, **kw)


# --- reading a type and its parameters -------------------------------------------------------


def read_type(reader: Reader, kind: str, table: Mapping[str, TypeSpec]) -> TypeSpec | None:
    """The `type` key of an item, refused unless known and implemented."""
    label = KINDS[kind]
    value = reader.raw("type", MISSING, required=True)
    if value is MISSING:
        return None
    if not isinstance(value, str):
        reader.error("type", f"expected the name of a {label} type, got {describe(value)}")
        return None
    spec = table.get(value)
    available = [name for name, s in table.items() if s.implemented]
    if spec is None:
        hint = suggest(value, list(table)) or f" (available in this version: {quoted(available)})"
        reader.error("type", f'unknown {label} type "{value}"{hint}')
        return None
    if not spec.implemented:
        reader.error("type", f'{label} type "{value}" is not available in this version')
        return None
    return spec


def read_params(
    reader: Reader, spec: TypeSpec | None, known: Known, servers: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(params, per_server) of an item of type `spec`; `servers` are the servers it runs on.
    Without a (valid) type the parameters cannot be checked: they are skipped, ({}, {})."""
    if spec is None:
        reader.skip()
        return {}, {}
    params = {
        p.name: read_value(reader, p, known, required=p.required and not p.per_server)
        for p in spec.params
    }
    per_server: dict[str, dict[str, Any]] = {}
    overrides = reader.sub("per_server")
    if overrides is not None:
        for server in overrides.written_keys():
            values = _read_overrides(overrides, server, spec, known, servers)
            if values is not None:
                per_server[server] = values
        overrides.skip()
    for p in spec.params:
        if p.required and p.per_server and params[p.name] is None:
            missing = [s for s in servers if p.name not in per_server.get(s, {})]
            if missing:
                reader.error(
                    p.name,
                    "required key is missing (set it here, or under per_server for every "
                    f"server; missing for {quoted(missing)})",
                )
    scope = params.get("network")
    scoped = spec.param("network") is not None
    for p in spec.params:
        if p.kind == "listen_port" and (scope is not None or not scoped):
            for server in (None, *per_server):
                value = per_server[server].get(p.name) if server else params[p.name]
                if value is not None:
                    where = reader.at("per_server").child(server) if server else reader.where
                    known.claim_port(where.child(p.name), p.protocol, value, scope)
    return params, per_server


def _read_overrides(
    overrides: Reader, server: str, spec: TypeSpec, known: Known, servers: tuple[str, ...]
) -> dict[str, Any] | None:
    where = overrides.at(server)
    if not known.server(where, server):
        return None
    if server not in servers:
        overrides.error(server, f'server "{server}" does not run this {spec.name}')
        return None
    table = overrides.sub(server)
    if table is None:
        return None
    allowed = [p.name for p in spec.params if p.per_server]
    values = {}
    for key in table.written_keys():
        p = spec.param(key)
        if p is None:
            hint = suggest(key, allowed) or f" (per-server keys of {spec.name}: {quoted(allowed)})"
            table.error(key, f"unknown key{hint}")
        elif not p.per_server:
            table.error(key, f"cannot differ per server (only {quoted(allowed)} can)")
        else:
            values[key] = read_value(table, p, known, required=False)
    table.skip()
    return values


def read_value(reader: Reader, p: Param, known: Known, *, required: bool) -> Any:
    """One parameter's value from `reader`, checked by its kind."""
    key, kind = p.name, p.kind
    if kind in ("str", "secret", "path"):
        return reader.string(key, p.default, required=required)
    if kind in ("int", "port", "listen_port"):
        return reader.integer(key, p.default, p.bounds, required=required)
    if kind == "bool":
        return reader.boolean(key, p.default)
    if kind == "duration":
        return reader.duration(key, p.default, p.bounds, required=required)
    if kind == "choice":
        return reader.choice(key, p.choices, p.default, required=required)
    if kind == "ip":
        return reader.ip(key, p.default, required=required)
    if kind == "table":
        return reader.table(key, p.default)
    if kind == "network":
        value = reader.string(key, p.default, required=required)
        if value is not None and not known.network(reader.at(key), value):
            return None
        return value
    check = ip_problem if kind == "ip_list" else None
    if p.choices:

        def check(text: str) -> str | None:
            return None if text in p.choices else f'"{text}" is not one of {quoted(p.choices)}'

    values = reader.strings(key, p.default, required=required, check=check)
    if values is not None and required and not values:
        reader.error(key, "must not be empty")
    if values and kind in ("network_list", "monitor_list"):
        lookup = known.network if kind == "network_list" else known.monitor
        for index, name in enumerate(values):
            lookup(reader.at(key).index(index), name)
    return values
