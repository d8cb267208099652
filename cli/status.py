"""`haven status [--json]`: the node's view — for now the local server and its actors.

JSON keys are a contract (DESIGN §6): `cluster{name,state}`, `servers[...]`, `np`, `groups`,
`monitors`, and `actors[{name,pid,state,restarts}]` with state one of
starting|running|restarting|failed|stopped.
"""

from __future__ import annotations

import argparse
import json

from cli.args import seconds
from cli.nodeclient import request
from cli.statedir import add_state_dir_argument, resolve_state_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show the cluster and this node's actors")
    add_state_dir_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=seconds, default=5.0, help="seconds to wait for the node")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    status = request(resolve_state_dir(args.state_dir), "status", timeout=args.timeout)
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(render(status))
    return 0


def render(status: dict) -> str:
    node = status["node"]
    lines = [
        f"Cluster  {status['cluster']['name']}  ({status['cluster']['state']})",
        f"Server   {status['server']}  node pid {node['pid']}, {node['state']}, "
        f"up {node['uptime']:.0f}s, launcher {node['launcher']}",
        "",
    ]
    servers = [("SERVER", "STATE", "HEARTBEATS")]
    for s in status["servers"]:
        paths = ", ".join(f"{hb} {state}" for hb, state in s.get("heartbeats", {}).items())
        servers.append(
            (
                s["name"],
                s["state"],
                "(this server)" if s["name"] == status["server"] else paths or "-",
            )
        )
    lines += _table(servers) + [""]
    actors = [("ACTOR", "STATE", "PID", "RESTARTS", "WHY / LAST EXIT")]
    for a in status["actors"]:
        why = a.get("reason") if a["state"] in ("failed", "restarting") else a.get("last_exit")
        actors.append(
            (
                a["name"] + (" *" if a.get("critical") else ""),
                a["state"],
                str(a["pid"] or "-"),
                str(a["restarts"]),
                why or "",
            )
        )
    lines += _table(actors)
    if any(a.get("critical") for a in status["actors"]):
        lines.append("(* critical)")
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Aligned columns; the last one is left ragged."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in rows
    ]
