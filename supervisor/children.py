"""Which actors a server runs, as child specs derived from the configuration (order = start order).

Heartbeats first (they are what the rest of the cluster judges this server by), then membership
(which folds them into "server X is up/down") — all critical — then the built-in actors listed
under `[[node.actor]]`. Later issues add link, NP resolution and groups here.
"""

from __future__ import annotations

from config import Cluster, Heartbeat
from supervisor.spec import ChildSpec, Restart

HEARTBEAT_ACTOR_PREFIX = "hb."
MEMBERSHIP = "membership"
SETTLE_BEATS = 2  # a server that comes back is up after this many heartbeat intervals


def child_specs(cfg: Cluster, server: str) -> list[ChildSpec]:
    start_timeout = max(10.0, cfg.node.beat_timeout * 2)
    specs = [
        ChildSpec(
            name=HEARTBEAT_ACTOR_PREFIX + hb.name,
            kind=hb.type,
            args=heartbeat_args(cfg, hb, server),
            restart=Restart.PERMANENT,
            stop_timeout=cfg.node.stop_timeout,
            critical=True,
            start_timeout=start_timeout,
        )
        for hb in cfg.heartbeats
        if _runs_on(hb, server)
    ]
    heartbeats = [hb for hb in cfg.heartbeats if _runs_on(hb, server)]
    if heartbeats:
        specs.append(
            ChildSpec(
                name=MEMBERSHIP,
                kind=MEMBERSHIP,
                args=membership_args(cfg, heartbeats, server),
                restart=Restart.PERMANENT,
                stop_timeout=cfg.node.stop_timeout,
                critical=True,
                start_timeout=start_timeout,
            )
        )
    specs += [
        ChildSpec(
            name=a.name,
            kind=a.kind,
            args=dict(a.args),
            restart=Restart(a.restart),
            stop_timeout=a.stop_timeout,
            critical=a.critical,
            start_timeout=start_timeout,
        )
        for a in cfg.node.actors
    ]
    return specs


def _runs_on(hb: Heartbeat, server: str) -> bool:
    return not hb.servers or server in hb.servers


def heartbeat_args(cfg: Cluster, hb: Heartbeat, server: str) -> dict:
    params = hb.params_for(server)
    network = params["network"]
    peers = {
        s.name: s.addresses[network]
        for s in cfg.servers
        if s.name != server and network in s.addresses and _runs_on(hb, s.name)
    }
    me = cfg.server(server)
    assert me is not None
    return {
        "heartbeat": hb.name,
        "network": network,
        "address": me.addresses[network],
        "port": params["port"],
        "peers": peers,
        "interval": cfg.timing.heartbeat_interval,
        "timeout": cfg.timing.heartbeat_timeout,
        "delay_warning": cfg.timing.heartbeat_delay_warning,
        "key_file": cfg.key_path(),
    }


def membership_args(cfg: Cluster, heartbeats: list[Heartbeat], server: str) -> dict:
    peers: dict[str, list[str]] = {s.name: [] for s in cfg.servers if s.name != server}
    for hb in heartbeats:
        for peer in heartbeat_args(cfg, hb, server)["peers"]:
            peers[peer].append(hb.name)
    return {
        "peers": peers,
        "heartbeat_actors": {hb.name: HEARTBEAT_ACTOR_PREFIX + hb.name for hb in heartbeats},
        "settle": SETTLE_BEATS * cfg.timing.heartbeat_interval,
    }
