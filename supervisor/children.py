"""Which actors a server runs, as child specs derived from the configuration (order = start order).

Later issues prepend the cluster's own actors here (link, heartbeats, membership, groups, ...);
for now the node runs the built-in actors listed under `[[node.actor]]`.
"""

from __future__ import annotations

from config import Cluster
from supervisor.spec import ChildSpec, Restart


def child_specs(cfg: Cluster, server: str) -> list[ChildSpec]:
    start_timeout = max(10.0, cfg.node.beat_timeout * 2)
    return [
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
