"""`[[heartbeat]]`, `[[np]]` and `[[alert]]`: typed items with a name, a type, its parameters.

Heartbeats are listed in priority order. Every server a LAN heartbeat runs on needs an address on
the heartbeat's network; a COM heartbeat (a serial line) runs on exactly two servers; a disk
heartbeat's area starts at a multiple of 4096 bytes. A cluster of several servers needs a LAN
heartbeat (SPEC §3): an error once a LAN heartbeat type is implemented, a warning until then.
"""

from __future__ import annotations

from actors.alerts import mail, snmp, syslog
from actors.alerts.catalogue import BY_ID, EVENTS
from config import defaults as d
from config.model import AlertDestination, Heartbeat, NpResource
from config.reader import Reader, quoted, unique_names
from config.references import Known, read_servers
from config.typespec import TypeTables, read_params, read_type
from config.witness import WitnessUrlError, parse_url

LAN_HEARTBEATS = ("lanhb", "lankhb")
DISK_BLOCK = 4096  # the slot size and alignment of actors/diskio.py (diskhb, disknp)


def read_heartbeats(top: Reader, known: Known, types: TypeTables) -> tuple[Heartbeat, ...]:
    heartbeats = []
    for r, name in unique_names(top.elements("heartbeat", "heartbeat"), "heartbeat"):
        spec = read_type(r, "heartbeat", types.heartbeat)
        servers = read_servers(r, known)
        params, per_server = read_params(r, spec, known, servers)
        if spec is not None:
            network = params.get("network")
            missing = [s for s in servers if network and network not in known.addresses.get(s, {})]
            if network in known.networks and missing:
                r.error("network", f'no address on network "{network}" for server "{missing[0]}"')
            _check_path(r, spec.name, servers, params)
        r.finish()
        if name is not None and spec is not None:
            position = r.where.path[-1]
            heartbeats.append(Heartbeat(name, spec.name, position, servers, params, per_server))
    _check_lan_heartbeat(top, known, types, heartbeats)
    return tuple(heartbeats)


def _check_path(r: Reader, kind: str, servers: tuple[str, ...], params: dict) -> None:
    """What a serial line and a disk area can be."""
    if kind == "comhb" and len(servers) != 2:
        r.error(
            "servers",
            f"a serial line joins exactly two servers; this one would join {len(servers)} "
            f"({quoted(servers)}): name the two with servers = [...]",
        )
    offset = params.get("offset")
    if kind == "diskhb" and isinstance(offset, int) and offset % DISK_BLOCK:
        r.error("offset", f"must be a multiple of {DISK_BLOCK} (the disk heartbeat's block)")


def _check_lan_heartbeat(top: Reader, known: Known, types: TypeTables, heartbeats) -> None:
    if len(known.servers) < 2 or any(hb.type in LAN_HEARTBEATS for hb in heartbeats):
        return
    if top.has("heartbeat") and not heartbeats:
        return  # the heartbeats written were refused; that is reported already
    message = "no LAN heartbeat (lanhb or lankhb): the servers cannot tell when another one fails"
    if any(types.heartbeat[t].implemented for t in LAN_HEARTBEATS if t in types.heartbeat):
        top.error("heartbeat", message)
    else:
        top.warning("heartbeat", message + " (heartbeats arrive in a later version)")


def read_np(top: Reader, known: Known, types: TypeTables) -> tuple[NpResource, ...]:
    resources = []
    for r, name in unique_names(top.elements("np", "NP resource"), "NP resource"):
        spec = read_type(r, "np", types.np)
        servers = read_servers(r, known)
        params, per_server = read_params(r, spec, known, servers)
        if spec is not None:
            _check_np(r, spec.name, params)
        r.finish()
        if name is not None and spec is not None:
            resources.append(NpResource(name, spec.name, servers, params, per_server))
    return tuple(resources)


def _check_np(r: Reader, kind: str, params: dict) -> None:
    """What a disk lease's timing and area, and a witness's URL, can be."""
    if kind == "disknp":
        offset, lease, io_timeout = (params.get(k) for k in ("offset", "lease", "io_timeout"))
        if isinstance(offset, int) and offset % DISK_BLOCK:
            r.error("offset", f"must be a multiple of {DISK_BLOCK} (the disk lease's block)")
        if isinstance(lease, float) and isinstance(io_timeout, float) and 4 * io_timeout > lease:
            r.error(
                "io_timeout",
                f"at most a quarter of the lease ({lease:g}s): a lease renewal must fit several "
                "slow I/Os (actors/np/disklease.py)",
            )
    url = params.get("url")
    if kind == "witness" and isinstance(url, str):
        try:
            parse_url(url)
        except WitnessUrlError as exc:
            r.error("url", str(exc))


# what the schema cannot say about a destination type's parameters (addresses, URLs...): each
# sender module's own check, so that the configuration and the sender agree
ALERT_CHECKS = {
    "mail": mail.config_problems,
    "snmp": snmp.config_problems,
    "syslog": syslog.config_problems,
}


def read_alerts(top: Reader, known: Known, types: TypeTables) -> tuple[AlertDestination, ...]:
    alerts = []
    for r, name in unique_names(top.elements("alert", "alert"), "alert"):
        spec = read_type(r, "alert", types.alert)
        min_level = r.choice("min_level", d.ALERT_LEVELS, d.ALERT_MIN_LEVEL)
        events = r.strings("events", check=_event_problem)
        params, _ = read_params(r, spec, known, tuple(known.servers))
        check = ALERT_CHECKS.get(spec.name) if spec is not None else None
        for key, problem in check(params) if check else ():
            r.error(key, problem)
        r.finish()
        if name is not None and spec is not None:
            events = tuple(events) if events is not None else None
            alerts.append(AlertDestination(name, spec.name, min_level, params, events))
    return tuple(alerts)


def _event_problem(text: str) -> str | None:
    """An `events` entry names a catalogue event (`server_down`), a module (`groups`), a module's
    event by ID (`groups.32`), or `default` / `all`."""
    modules = {module for module, _ in BY_ID}
    if text in EVENTS or text in modules or text in ("default", "all"):
        return None
    module, _, number = text.partition(".")
    if module in modules and number.isdigit() and (module, int(number)) in BY_ID:
        return None
    return (
        f'unknown event "{text}": an event name (e.g. server_down), a module '
        f"({', '.join(sorted(modules))}), module.ID (e.g. groups.32), default or all "
        "(haven alerts events lists them)"
    )
