"""Which actors a server runs, as child specs derived from the configuration (order = start order).

Heartbeats first (they are what the rest of the cluster judges this server by), then the NP
resolution actors, then membership (which folds the heartbeats into "server X is up/down" and
resolves partitions) — all critical — then the built-in actors listed under `[[node.actor]]`.
Later issues add the link and groups here.
"""

from __future__ import annotations

from actors.heartbeat.timing import check_period, stall_after
from actors.membership.resolution import fence_wait
from config import Cluster, Heartbeat, NpResource
from supervisor.spec import ChildSpec, Restart

HEARTBEAT_ACTOR_PREFIX = "hb."
NP_ACTOR_PREFIX = "np."
NP_ACTOR_TYPES = {"pingnp"}  # `majority` needs no actor: membership counts its own view
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
            fence_early=True,
        )
        for hb in cfg.heartbeats
        if _runs_on(hb, server)
    ]
    heartbeats = [hb for hb in cfg.heartbeats if _runs_on(hb, server)]
    specs += [
        ChildSpec(
            name=NP_ACTOR_PREFIX + np.name,
            kind=np.type,
            args={"np": np.name, **np.params_for(server)},
            restart=Restart.PERMANENT,
            stop_timeout=cfg.node.stop_timeout,
            critical=True,
            start_timeout=start_timeout,
        )
        for np in cfg.np
        if np.type in NP_ACTOR_TYPES and _runs_on(np, server)
    ]
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


def _runs_on(item: Heartbeat | NpResource, server: str) -> bool:
    return not item.servers or server in item.servers


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
    interval, timeout = cfg.timing.heartbeat_interval, cfg.timing.heartbeat_timeout
    nps = [
        {
            "name": np.name,
            "type": np.type,
            "actor": NP_ACTOR_PREFIX + np.name if np.type in NP_ACTOR_TYPES else None,
            "check_time": _np_check_time(np.params_for(server)),
        }
        for np in cfg.np
        if _runs_on(np, server)
    ]
    return {
        "peers": peers,
        "heartbeat_actors": {hb.name: HEARTBEAT_ACTOR_PREFIX + hb.name for hb in heartbeats},
        "settle": SETTLE_BEATS * cfg.timing.heartbeat_interval,
        "timeout": cfg.timing.heartbeat_timeout,
        "startup_wait": cfg.timing.startup_wait,
        "servers": [s.name for s in cfg.servers],
        "master": cfg.master.name,
        "np": nps,
        "on_isolation": cfg.node.on_isolation,
        # resolution.py states the rule. Every server has the same configuration, so the NP
        # methods the loser runs are all of them (a method limited to some servers included).
        "fence_wait": fence_wait(
            interval,
            check_period(interval, timeout),
            stall_after(interval, timeout),
            (_np_check_time(np.params) for np in cfg.np),
            cfg.node.stop_timeout,
        ),
    }


def _np_check_time(params: dict) -> float:
    """The longest an NP check can take: every round of every retry timing out."""
    if "timeout" in params and "retry" in params:
        return float(params["timeout"]) * (int(params["retry"]) + 1)
    return 0.0
