"""`[[monitor]]`: monitor resources, their common settings and their recovery.

Common settings: interval, timeout, retry, start_wait, monitoring (`always`, or `while_active`:
only while `target` is active), target (a group resource), servers (default all),
delay_warning (percent of the timeout), per_server, and `[monitor.recovery]`:
target_type (resource | group | local_server), target, reactivation_threshold,
failover_threshold, final_action. Without a recovery target the monitor's own `target` is
restarted; a monitor without either recovers the local server (final action only).
"""

from __future__ import annotations

from config import defaults as d
from config.model import Monitor, MonitorRecovery
from config.policies import read_final_action
from config.reader import Reader, unique_names
from config.references import Known, read_servers
from config.typespec import TypeSpec, TypeTables, read_params, read_type


def read_monitors(top: Reader, known: Known, types: TypeTables) -> tuple[Monitor, ...]:
    named = unique_names(top.elements("monitor", "monitor"), "monitor")
    known.monitors = [name for _, name in named if name is not None]
    monitors = []
    for r, name in named:
        spec = read_type(r, "monitor", types.monitor)
        interval = r.duration("interval", d.MONITOR_INTERVAL, d.MONITOR_INTERVAL_RANGE)
        timeout = r.duration("timeout", d.MONITOR_TIMEOUT, d.MONITOR_TIMEOUT_RANGE)
        retry = r.integer("retry", d.MONITOR_RETRY, d.MONITOR_RETRY_RANGE)
        start_wait = r.duration("start_wait", d.MONITOR_START_WAIT, d.MONITOR_START_WAIT_RANGE)
        monitoring = r.choice("monitoring", d.MONITORING_MODES, d.MONITOR_MONITORING)
        target = _read_target(r, spec, monitoring, known)
        servers = read_servers(r, known)
        delay = r.integer("delay_warning", d.MONITOR_DELAY_WARNING, d.MONITOR_DELAY_WARNING_RANGE)
        recovery = _read_recovery(r, target, known)
        params, per_server = read_params(r, spec, known, servers)
        if spec is not None and spec.param("monitors") and name in (params.get("monitors") or ()):
            r.error("monitors", f'monitor "{name}" cannot include itself')
        r.finish()
        if name is not None:
            monitors.append(
                Monitor(
                    name=name,
                    type=spec.name if spec else "",
                    interval=interval,
                    timeout=timeout,
                    retry=retry,
                    start_wait=start_wait,
                    monitoring=monitoring,
                    target=target,
                    servers=servers,
                    delay_warning=delay,
                    recovery=recovery,
                    params=params,
                    per_server=per_server,
                )
            )
    return tuple(monitors)


def _read_target(r: Reader, spec: TypeSpec | None, monitoring: str, known: Known) -> str | None:
    target = r.string("target")
    if target is None:
        if not r.has("target"):
            if spec is not None and spec.needs_target:
                kinds = " or ".join(spec.target_types)
                r.error(
                    "target",
                    f"required key is missing: a {spec.name} monitor watches a resource "
                    f"of type {kinds}",
                )
            elif monitoring == "while_active":
                r.error("monitoring", '"while_active" needs a target resource (key "target")')
        return None
    info = known.resource(r.at("target"), target)
    if info is None:
        return None
    allowed = spec.target_types if spec is not None else ()
    if allowed and info.type is not None and info.type not in allowed:
        r.error(
            "target",
            f"a {spec.name} monitor watches {' or '.join(allowed)} resources; "
            f'"{target}" is a {info.type} resource',
        )
        return None
    return target


def _read_recovery(monitor: Reader, target: str | None, known: Known) -> MonitorRecovery:
    r = monitor.optional("recovery")
    default_type = "resource" if target is not None else "local_server"
    target_type = r.choice("target_type", d.RECOVERY_TARGET_TYPES, default_type)
    name = r.string("target")
    if target_type == "local_server":
        if name is not None:
            r.error("target", 'a "local_server" recovery has no target (remove it)')
        name = None
    elif name is None and not r.has("target"):
        if target_type == "resource" and target is not None:
            name = target
        elif not (target is None and monitor.has("target")):
            r.error("target", f"required key is missing: the {target_type} to recover")
    elif name is not None:
        lookup = known.resource if target_type == "resource" else known.group
        if not lookup(r.at("target"), name):
            name = None
    reactivation = r.integer(
        "reactivation_threshold", d.MONITOR_REACTIVATION_THRESHOLD, d.THRESHOLD_RANGE
    )
    failover = r.integer("failover_threshold", d.MONITOR_FAILOVER_THRESHOLD, d.THRESHOLD_RANGE)
    action = read_final_action(r, "final_action", "monitor", d.MONITOR_FINAL_ACTION)
    r.finish()
    return MonitorRecovery(target_type, name, reactivation, failover, action)
