"""Reading a configuration file: bytes → TOML → validated `Cluster`, every problem reported.

`check_text` / `check_config` never raise for a bad configuration: they return
`(cluster or None, issues)`. `parse_config` / `load_config` return the `Cluster` (warnings in
`cluster.warnings`) or raise `ConfigError` carrying every issue. `check_config` lets OSError
through (a missing file is the caller's to report); `load_config` turns it into ConfigError.

`types` is the type tables to validate against (default: `config.catalog.DEFAULT_TYPES`);
`actor_kinds` the allowed `[[node.actor]]` kinds (default: `actors.registry.ACTOR_KINDS`,
imported only when needed).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection

from config.catalog import DEFAULT_TYPES
from config.groups import read_groups
from config.issues import ConfigError, Issue, Report, Where
from config.model import Cluster
from config.monitors import read_monitors
from config.node import read_node
from config.reader import Reader
from config.references import Known
from config.timing import read_timing
from config.topology import read_cluster, read_networks, read_ports, read_servers
from config.typed import read_alerts, read_heartbeats, read_np
from config.typespec import TypeTables

SECTIONS = (
    "cluster", "timing", "ports", "network", "server", "node",
    "heartbeat", "np", "group", "monitor", "alert",
)  # fmt: skip


def validate(
    data: dict,
    *,
    types: TypeTables | None = None,
    actor_kinds: Collection[str] | None = None,
    source: str = "<string>",
    text: str = "",
) -> tuple[Cluster | None, list[Issue]]:
    """Validate parsed TOML; the Cluster is None when there is any error."""
    types = DEFAULT_TYPES if types is None else types
    report = Report()
    known = Known(report)
    top = Reader(data, Where(), report)
    name, key_file = read_cluster(top)
    timing = read_timing(top)
    ports = read_ports(top, known)
    networks = read_networks(top, known)
    servers = read_servers(top, known)
    node = read_node(top, actor_kinds)
    heartbeats = read_heartbeats(top, known, types)
    np = read_np(top, known, types)
    groups = read_groups(top, known, types)
    monitors = read_monitors(top, known, types)
    alerts = read_alerts(top, known, types)
    if heartbeats and key_file is None and top.has("cluster"):
        report.error(
            Where().child("cluster").child("key_file"),
            "heartbeats are authenticated with the cluster key: give its file "
            "(create one with `haven config keygen FILE`)",
        )
    known.check_ports()
    top.skip(*SECTIONS)
    top.finish()
    if report.errors or name is None:
        return None, report.issues
    cluster = Cluster(
        name=name,
        key_file=key_file,
        networks=networks,
        servers=servers,
        timing=timing,
        ports=ports,
        node=node,
        heartbeats=heartbeats,
        np=np,
        groups=groups,
        monitors=monitors,
        alerts=alerts,
        source=source,
        text=text,
        warnings=tuple(report.warnings),
    )
    return cluster, report.issues


_LEADING_ZERO = re.compile(r"=\s*[+-]?0[0-9]")


def _syntax_issue(exc: tomllib.TOMLDecodeError, text: str) -> Issue:
    message = f"TOML syntax error: {exc}"
    match = re.search(r"line (\d+)", str(exc))
    if match:
        lines = text.splitlines()
        number = int(match.group(1))
        if 0 < number <= len(lines) and _LEADING_ZERO.search(lines[number - 1]):
            message += " (numbers must not start with a zero: write 10, not 010)"
    return Issue((), message)


def check_text(
    data: str | bytes,
    source: str = "<string>",
    *,
    types: TypeTables | None = None,
    actor_kinds: Collection[str] | None = None,
) -> tuple[Cluster | None, list[Issue]]:
    """Check configuration text (or raw bytes); never raises for bad input."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Issue((), f"not valid UTF-8 text (byte {exc.start}): not a TOML file")]
    text = data.removeprefix("\ufeff")
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_syntax_issue(exc, text)]
    except RecursionError:
        return None, [Issue((), "TOML syntax error: arrays or tables nested too deeply")]
    return validate(parsed, types=types, actor_kinds=actor_kinds, source=source, text=data)


def check_config(
    path: str | os.PathLike,
    *,
    types: TypeTables | None = None,
    actor_kinds: Collection[str] | None = None,
) -> tuple[Cluster | None, list[Issue]]:
    """Check the file at `path`; raises OSError if it cannot be read."""
    with open(path, "rb") as file:
        data = file.read()
    return check_text(data, os.fspath(path), types=types, actor_kinds=actor_kinds)


def parse_config(
    text: str | bytes,
    source: str = "<string>",
    *,
    types: TypeTables | None = None,
    actor_kinds: Collection[str] | None = None,
) -> Cluster:
    """The Cluster in `text`; raises ConfigError listing every issue if there is any error."""
    cluster, issues = check_text(text, source, types=types, actor_kinds=actor_kinds)
    if cluster is None:
        raise ConfigError(issues, source)
    return cluster


def load_config(
    path: str | os.PathLike,
    *,
    types: TypeTables | None = None,
    actor_kinds: Collection[str] | None = None,
) -> Cluster:
    """The Cluster in the file at `path`; raises ConfigError (also if it cannot be read)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(
            [Issue((), f"cannot read {os.fspath(path)}: {exc.strerror or exc}")], os.fspath(path)
        ) from exc
    return parse_config(data, os.fspath(path), types=types, actor_kinds=actor_kinds)
