"""Which actors a server runs, as child specs derived from the configuration (order = start order).

The alert log and the alert senders first (they record and send what the others say from their
start), then the heartbeats
(they are what the rest of the cluster judges this server by), then the NP
resolution actors, then membership (which folds the heartbeats into "server X is up/down" and
resolves partitions), then the link to the other servers (with more than one server) — all
critical — then the groups actor (the group manager; critical, after the link so it can reach the
other servers, stopped before it so that it can release its groups), then the built-in actors
listed under `[[node.actor]]`.
"""

from __future__ import annotations

import os
from typing import Any

from actors.alerts.catalogue import SENDER_PREFIX
from actors.groups.local import phase_budget
from actors.heartbeat.timing import check_period, stall_after
from actors.membership.resolution import fence_wait
from actors.np.disklease import check_time as disk_check_time
from actors.np.witness import check_time as witness_check_time
from config import Cluster, Heartbeat, NpResource
from config.typed import LAN_HEARTBEATS
from supervisor.spec import ChildSpec, Restart

HEARTBEAT_ACTOR_PREFIX = "hb."
NP_ACTOR_PREFIX = "np."
NP_ACTOR_TYPES = {"pingnp", "disknp", "witness"}  # `majority` needs none: membership counts
MEMBERSHIP = "membership"
LINK = "link"
GROUPS = "groups"
ALERTLOG = "alertlog"
SETTLE_BEATS = 2  # a server that comes back is up after this many heartbeat intervals


def child_specs(cfg: Cluster, server: str) -> list[ChildSpec]:
    start_timeout = max(10.0, cfg.node.beat_timeout * 2)
    # The alert log first: it records what every later actor says while starting.
    specs = [
        ChildSpec(
            name=ALERTLOG,
            kind=ALERTLOG,
            args={"servers": [s.name for s in cfg.servers]},
            restart=Restart.PERMANENT,
            stop_timeout=cfg.node.stop_timeout,
            critical=False,
            start_timeout=start_timeout,
        )
    ]
    # The alert senders next, for the same reason; never critical: a dead mail server is not
    # the node's problem.
    specs += [
        ChildSpec(
            name=SENDER_PREFIX + a.name,
            kind=SENDER_PREFIX + a.type,
            args={
                "destination": a.name,
                "type": a.type,
                "min_level": a.min_level,
                "events": list(a.events) if a.events is not None else None,
                "params": dict(a.params),
                "config_dir": os.path.dirname(os.path.abspath(cfg.source)),
                "cluster": cfg.name,
            },
            restart=Restart.PERMANENT,
            stop_timeout=cfg.node.stop_timeout,
            critical=False,
            start_timeout=start_timeout,
        )
        for a in cfg.alerts
    ]
    specs += [
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
            args=np_args(cfg, np, server),
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
    if len(cfg.servers) > 1 and cfg.key_path() is not None:
        specs.append(
            ChildSpec(
                name=LINK,
                kind=LINK,
                args=link_args(cfg, server),
                restart=Restart.PERMANENT,
                stop_timeout=cfg.node.stop_timeout,
                critical=True,
                start_timeout=start_timeout,
            )
        )
    if cfg.groups:
        specs.append(
            ChildSpec(
                name=GROUPS,
                kind=GROUPS,
                args=groups_args(cfg, server),
                restart=Restart.PERMANENT,
                stop_timeout=groups_stop_budget(cfg, server),
                critical=True,
                start_timeout=start_timeout + groups_stop_budget(cfg, server),
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
    """The actor's arguments: what every heartbeat needs, then what its path needs. `index` and
    the peers' values are positions in the cluster's server list (the same on every server): a
    frame names the peers its sender lost by position, and a disk heartbeat's slot is its server's
    position. Peers: every other server the heartbeat runs on (a serial line joins exactly two,
    see config/typed.py)."""
    params = hb.params_for(server)
    position = {s.name: i for i, s in enumerate(cfg.servers)}
    peers = {name: i for name, i in position.items() if name != server and _runs_on(hb, name)}
    args = {
        "heartbeat": hb.name,
        "index": position[server],
        "peers": peers,
        "interval": cfg.timing.heartbeat_interval,
        "timeout": cfg.timing.heartbeat_timeout,
        "delay_warning": cfg.timing.heartbeat_delay_warning,
        "key_file": cfg.key_path(),
    }
    if hb.type in LAN_HEARTBEATS:
        network = params["network"]
        me = cfg.server(server)
        assert me is not None
        args |= {
            "network": network,
            "address": me.addresses[network],
            "port": params["port"],
            "addresses": {p: cfg.servers[i].addresses[network] for p, i in peers.items()},
        }
    elif hb.type == "comhb":
        args |= {"device": cfg.resolve_path(params["device"]), "baud": int(params["baud"])}
    elif hb.type == "diskhb":
        args |= {
            "device": cfg.resolve_path(params["device"]),
            "offset": params["offset"],
            "slots": len(cfg.servers),
        }
    return args


def node_settings(cfg: Cluster) -> dict[str, Any]:
    """What the configuration decides of the supervisor (SupervisorSettings' keywords)."""
    n = cfg.node
    return {
        "cluster": cfg.name,
        "max_restarts": n.max_restarts,
        "restart_window": n.restart_window,
        "beat_interval": n.beat_interval,
        "beat_timeout": n.beat_timeout,
        "on_critical_failure": n.on_critical_failure,
        "hold_after_unclean_stop": n.hold_after_unclean_stop,
        "fence_time": n.stop_timeout,
    }


def what_runs(cfg: Cluster, server: str) -> dict[str, Any]:
    """What the server's node runs under `cfg`, part by part (`config diff` compares these)."""
    parts: dict[str, Any] = {"supervisor settings": node_settings(cfg)}
    parts.update((f"actor {spec.name}", spec) for spec in child_specs(cfg, server))
    return parts


def link_args(cfg: Cluster, server: str) -> dict:
    """Where the link listens (every address of this server) and, per peer, its routes: the
    heartbeats' networks first, in heartbeat order (the interconnects), then the others."""
    me = cfg.server(server)
    assert me is not None
    port = cfg.ports.link
    order = [hb.params_for(server).get("network") for hb in cfg.heartbeats]
    order += [n.name for n in cfg.networks]
    networks = list(dict.fromkeys(n for n in order if n in me.addresses))
    routes = {
        s.name: [
            {"network": n, "endpoint": _tcp(s.addresses[n], port)}
            for n in networks
            if n in s.addresses
        ]
        for s in cfg.servers
        if s.name != server
    }
    interval, timeout = cfg.timing.heartbeat_interval, cfg.timing.heartbeat_timeout
    return {
        "servers": [s.name for s in cfg.servers],
        "listen": [_tcp(me.addresses[n], port) for n in networks],
        "routes": routes,
        "key_file": cfg.key_path(),
        "config_path": os.path.abspath(cfg.source),
        # ZeroMQ pings an idle connection and drops one whose peer stopped answering: a link
        # route fails over a little after the heartbeats notice (never faster than 100 ms / 1 s).
        "timing": {"heartbeat": max(0.1, interval), "timeout": max(1.0, timeout)},
    }


def _tcp(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"tcp://{host}:{port}"


def membership_args(cfg: Cluster, heartbeats: list[Heartbeat], server: str) -> dict:
    peers: dict[str, list[str]] = {s.name: [] for s in cfg.servers if s.name != server}
    for hb in heartbeats:
        for peer in heartbeat_args(cfg, hb, server)["peers"]:
            peers[peer].append(hb.name)
    nps = [
        {
            "name": np.name,
            "type": np.type,
            "actor": NP_ACTOR_PREFIX + np.name if np.type in NP_ACTOR_TYPES else None,
            "check_time": _np_check_time(np.type, np.params_for(server)),
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
        "fence_wait": cluster_fence_wait(cfg),
    }


def cluster_fence_wait(cfg: Cluster) -> float:
    """resolution.py states the rule. Every server has the same configuration, so the NP
    methods the loser runs are all of them (a method limited to some servers included)."""
    interval, timeout = cfg.timing.heartbeat_interval, cfg.timing.heartbeat_timeout
    return fence_wait(
        interval,
        check_period(interval, timeout),
        stall_after(interval, timeout),
        (_np_check_time(np.type, np.params) for np in cfg.np),
        cfg.node.stop_timeout,
    )


def np_args(cfg: Cluster, np: NpResource, server: str) -> dict:
    """An NP actor's arguments: its parameters on this server, and for the leases (`disknp`,
    `witness`) what they need of the cluster. `hold`: a won lease is held for the fencing wait,
    which covers every check the other side can still make for the same partition (it starts
    after ours by at most the detection skew and the NP checks before it)."""
    params = np.params_for(server)
    args = {"np": np.name, **params}
    if np.type in ("disknp", "witness"):
        args |= {"key_file": cfg.key_path(), "hold": cluster_fence_wait(cfg)}
    if np.type == "disknp":
        args |= {
            "device": cfg.resolve_path(params["device"]),
            "servers": [s.name for s in cfg.servers],  # slot i is server i's, on every server
            "on_isolation": cfg.node.on_isolation,
        }
    return args


def _np_check_time(np_type: str, params: dict) -> float:
    """The longest an NP check can take (its actor answers within it)."""
    if np_type == "disknp":
        return disk_check_time(float(params["lease"]), float(params["io_timeout"]))
    if np_type == "witness":
        return witness_check_time(float(params["timeout"]))
    if "timeout" in params and "retry" in params:  # pingnp: every round of every retry
        return float(params["timeout"]) * (int(params["retry"]) + 1)
    return 0.0


def groups_args(cfg: Cluster, server: str) -> dict:
    """Every group, with each resource's parameters as they apply on this server."""
    return {
        "servers": [s.name for s in cfg.servers],
        "config_dir": os.path.dirname(os.path.abspath(cfg.source)),
        "link": len(cfg.servers) > 1 and cfg.key_path() is not None,
        "groups": [
            {
                "name": g.name,
                "servers": list(g.servers) or [s.name for s in cfg.servers],
                "startup": g.startup,
                "failover": g.failover,
                "failback": g.failback,
                "exclusive": g.exclusive,
                "on_double_activation": g.on_double_activation,
                "start_order": list(g.start_order),
                "resources": [
                    {
                        "name": r.name,
                        "type": r.type,
                        "depends_on": list(r.depends_on),
                        "activation": _policy(r.activation),
                        "deactivation": _policy(r.deactivation),
                        "params": r.params_for(server),
                    }
                    for r in g.resources
                ],
            }
            for g in cfg.groups
        ],
    }


def _policy(p: Any) -> dict:
    return {
        "retry": p.retry,
        "failover_threshold": p.failover_threshold,
        "final_action": p.final_action,
    }


def groups_stop_budget(cfg: Cluster, server: str) -> float:
    """Long enough to stop every group on this server (each resource's own timeouts and
    retries), so that a node stop releases what it owns instead of being cut short."""
    groups = groups_args(cfg, server)["groups"]
    return cfg.node.stop_timeout + sum(phase_budget(g["resources"], "stop") for g in groups)
