"""`haven status [--json]`: the cluster as this server sees it — every server with each heartbeat
path's state, whether each server's node runs and its NP resources' states (asked of every server
over the link), and this node's actors.

JSON keys are a contract (DESIGN §6): `cluster{name,state}`, `servers[...]`, `np`, `groups`,
`monitors`, and `actors[{name,pid,state,restarts}]` with state one of
starting|running|restarting|failed|stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import zmq

from bus import topics
from bus.paths import NodePaths
from cli.args import seconds
from cli.errors import UserError
from cli.nodeclient import node_paths, request, subscriber
from cli.statedir import add_state_dir_argument, resolve_state_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show the cluster and this node's actors")
    add_state_dir_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=seconds, default=5.0, help="seconds to wait for the node")
    p.add_argument(
        "--watch",
        action="store_true",
        help="redraw on every change of a server, group or actor (Ctrl-C ends it)",
    )
    p.add_argument(
        "--watch-for", type=seconds, default=0.0, help="with --watch: stop after S seconds"
    )
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    if args.watch:
        return watch(args)
    state_dir = resolve_state_dir(args.state_dir)
    status = request(state_dir, "status", timeout=args.timeout)
    add_cluster_view(state_dir, status, min(REMOTE_TIMEOUT, args.timeout))
    add_groups(state_dir, status, args.timeout)
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(render(status))
    return 0


REMOTE_TIMEOUT = 2.0  # seconds the other servers have to answer, all at once
WATCHED = (topics.MEMBER_VIEW, topics.GROUP, topics.ACTOR)  # what makes --watch redraw
REDRAW_AT_LEAST = 5.0  # seconds: also redraw this often (a peer's node may stop silently)


def _wait_for_change(sock: zmq.Socket, until: float) -> None:
    """Until an event that changes what status shows (not an actor's liveness beat), or
    `until`; a burst of events is one redraw."""
    while (left := until - time.monotonic()) > 0:
        if not sock.poll(int(left * 1000)):
            return
        topic = sock.recv_multipart()[0].decode(errors="replace")
        if topic.startswith(topics.ACTOR) and not topic.endswith(".state"):
            continue
        time.sleep(0.1)
        while sock.poll(0):
            sock.recv_multipart()
        return


def watch(args: argparse.Namespace) -> int:
    """Redraw the status whenever the bus says something changed (not on a timer): a group's
    state anywhere in the cluster, the membership view, an actor's state here."""
    state_dir = resolve_state_dir(args.state_dir)
    paths = node_paths(state_dir)
    with subscriber(paths, *WATCHED) as sock:
        return _watch(sock, paths, state_dir, args)


def _watch(sock: zmq.Socket, paths: NodePaths, state_dir: str, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.watch_for if args.watch_for > 0 else None
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                status = request(state_dir, "status", timeout=args.timeout)
                add_cluster_view(state_dir, status, min(REMOTE_TIMEOUT, args.timeout))
                add_groups(state_dir, status, args.timeout)
                text = json.dumps(status, sort_keys=True) if args.json else render(status)
            except UserError as exc:
                text = f"haven: {exc}"
            if not args.json:
                sys.stdout.write("\x1b[H\x1b[2J")  # home, clear: a fresh screen each time
                text += f"\n\n(watching; {time.strftime('%H:%M:%S')}; Ctrl-C ends it)"
            print(text, flush=True)
            if not paths.node_running():
                return 1
            wait = REDRAW_AT_LEAST
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            _wait_for_change(sock, time.monotonic() + wait)
    except KeyboardInterrupt:
        pass
    return 0


def add_cluster_view(state_dir: str, status: dict, timeout: float) -> None:
    """Ask every server's node for its status over the link (in parallel) and add what only it
    knows: whether its node runs (`servers[].node`) and its NP resources' states
    (`np[].servers`). Without a running link, each other server's node shows as unknown."""
    link = next((a for a in status["actors"] if a["name"] == "link"), None)
    answers: dict = {}
    if link is not None and link["state"] == "running":
        body = {"service": "node", "method": "status", "timeout": timeout}
        try:
            answers = request(state_dir, "gather", body, timeout=timeout + 2, service="link")
        except UserError:
            answers = {}
    answers[status["server"]] = {"ok": True, "result": status}
    for s in status["servers"]:
        answer = answers.get(s["name"])
        if answer is None:
            s["node"] = {"state": "unknown", "reachable": None}
        elif answer["ok"]:
            s["node"] = {"state": answer["result"]["node"]["state"], "reachable": True}
        else:
            s["node"] = {"state": "unreachable", "reachable": False, "error": answer["error"]}
    for np in status["np"]:
        np["servers"] = {
            server: next(
                (x["state"] for x in answer["result"]["np"] if x["name"] == np["name"]), "-"
            )
            for server, answer in answers.items()
            if answer["ok"]
        }


def add_groups(state_dir: str, status: dict, timeout: float) -> None:
    """Every group with its server and resources, as the groups actor gathers them from every
    server (`groups[{name,state,server,servers,resources,...}]`)."""
    actor = next((a for a in status["actors"] if a["name"] == "groups"), None)
    if actor is None or actor["state"] != "running":
        return
    try:
        answer = request(state_dir, "status", {}, timeout=timeout + 2, service="groups")
    except UserError as exc:
        status["groups_error"] = str(exc)
        return
    status["groups"] = [{"name": name, **g} for name, g in answer["groups"].items()]


def _resource_text(name: str, r: dict) -> str:
    extra = " ".join(str(r[k]) for k in ("ip", "mount_point") if r.get(k))
    extra += f" pid {r['pid']}" if r.get("pid") else ""
    return f"{name} {r.get('state', '?')}" + (f" ({extra.strip()})" if extra.strip() else "")


def render(status: dict) -> str:
    node = status["node"]
    lines = [
        f"Cluster  {status['cluster']['name']}  ({status['cluster']['state']})",
        f"Server   {status['server']}  node pid {node['pid']}, {node['state']}, "
        f"up {node['uptime']:.0f}s, launcher {node['launcher']}",
        "",
    ]
    servers = [("SERVER", "STATE", "NODE", "HEARTBEATS")]
    for s in status["servers"]:
        paths = ", ".join(f"{hb} {state}" for hb, state in s.get("heartbeats", {}).items())
        servers.append(
            (
                s["name"],
                s["state"],
                s.get("node", {}).get("state", "-"),
                "(this server)" if s["name"] == status["server"] else paths or "-",
            )
        )
    lines += _table(servers) + [""]
    if status["np"]:
        nps = [("NP", "STATE", "ON EVERY SERVER")]
        for np in status["np"]:
            each = ", ".join(f"{s} {state}" for s, state in np.get("servers", {}).items())
            nps.append((np["name"], np["state"], each or "-"))
        lines += _table(nps) + [""]
    if status.get("groups"):
        groups = [("GROUP", "STATE", "SERVER", "RESOURCES")]
        for g in status["groups"]:
            resources = ", ".join(_resource_text(n, r) for n, r in g["resources"].items())
            groups.append((g["name"], g["state"], g.get("server") or "-", resources or "-"))
            if g.get("waiting"):
                groups.append(("", "", "", f"waiting: {g['waiting']}"))
            if g.get("failure"):
                groups.append(("", "", "", f"failed: {g['failure'].get('error')}"))
        lines += _table(groups) + [""]
    elif status.get("groups_error"):
        lines += [f"groups: {status['groups_error']}", ""]
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
