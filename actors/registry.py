"""The explicit table of actor kinds: kind name → "module:Class". No registration by import."""

from __future__ import annotations

import importlib

ACTOR_KINDS: dict[str, str] = {
    "alert.exec": "actors.alerts.exec:ExecSender",
    "alert.mail": "actors.alerts.mail:MailSender",
    "alert.snmp": "actors.alerts.snmp:SnmpSender",
    "alert.syslog": "actors.alerts.syslog:SyslogSender",
    "alertlog": "actors.alertlog:AlertLogActor",
    "comhb": "actors.heartbeat.comhb:ComHeartbeat",
    "diskhb": "actors.heartbeat.diskhb:DiskHeartbeat",
    "disknp": "actors.np.disknp:DiskNp",
    "echo": "actors.echo:EchoActor",
    "groups": "actors.groups.actor:GroupsActor",
    "lanhb": "actors.heartbeat.lanhb:LanHeartbeat",
    "lankhb": "actors.heartbeat.lanhb:LanHeartbeat",
    "link": "actors.link:LinkActor",
    "membership": "actors.membership.actor:MembershipActor",
    "pingnp": "actors.np.pingnp:PingNp",
    "witness": "actors.np.witness:WitnessNp",
}


def actor_class(kind: str) -> type:
    try:
        target = ACTOR_KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown actor kind {kind!r}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def preload() -> None:
    """Import every actor module (the template process does this once, before forking children)."""
    for kind in ACTOR_KINDS:
        actor_class(kind)
