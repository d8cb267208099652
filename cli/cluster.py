"""`haven cluster start|stop|suspend|resume|shutdown` and `haven server shutdown`.

- suspend: the coordinator stops deciding (no failover, no failback); groups keep running where
  they are — for configuration changes. resume: decisions again.
- start: on a running cluster, resume and want every group with automatic startup again (after
  a `group stop` of them, or a suspend). A node that is not running is started by the service
  manager (`systemctl start haven`), or in the lab by `haven lab start`.
- stop / shutdown: suspend first (so that no server takes over what another one releases), then
  every server's node stops in an orderly way, releasing its groups; `shutdown` then powers the
  OS off (`--reboot`: reboots it). In the lab the OS is never touched.
- server shutdown: one server stops (and shuts down its OS); its groups are released first and
  fail over at once, without waiting for it to fence itself.

Every command answers when done, prints what it is waiting for, and is safe to run twice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cli.args import seconds
from cli.errors import UserError
from cli.nodeclient import request
from cli.statedir import add_state_dir_argument, resolve_state_dir

STOP_WAIT = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    cluster = sub.add_parser("cluster", help="start, stop, suspend or resume the whole cluster")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND")
    cluster_sub.required = True
    for op, help_text in (
        ("start", "resume, and start every group with automatic startup"),
        ("stop", "stop the node service on every server (groups are released)"),
        ("suspend", "stop deciding: no failover or failback; groups keep running"),
        ("resume", "decide again after a suspend"),
        ("shutdown", "stop every server and shut its OS down (--reboot: reboot it)"),
    ):
        p = cluster_sub.add_parser(op, help=help_text)
        if op == "shutdown":
            p.add_argument("--reboot", action="store_true", help="reboot instead of power-off")
        _common(p)
        p.set_defaults(func=cmd_cluster, op=op)
    server = sub.add_parser("server", help="operations on one server")
    server_sub = server.add_subparsers(dest="server_command", metavar="SUBCOMMAND")
    server_sub.required = True
    p = server_sub.add_parser(
        "shutdown", help="stop one server (its groups fail over first) and shut its OS down"
    )
    p.add_argument("server", nargs="?", default=None, help="the server (default: this one)")
    p.add_argument("--reboot", action="store_true", help="reboot instead of power-off")
    p.add_argument(
        "--service-only", action="store_true", help="stop the node service, leave the OS up"
    )
    _common(p)
    p.set_defaults(func=cmd_server_shutdown)


def _common(p: argparse.ArgumentParser) -> None:
    add_state_dir_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.add_argument(
        "--timeout", type=seconds, default=STOP_WAIT, help="seconds to wait for the result"
    )


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, file=sys.stderr, flush=True)


def _groups(state_dir: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    return request(state_dir, "operate", body, timeout + 5, service="groups")


def cmd_cluster(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    if args.op in ("suspend", "resume", "start"):
        op = "cluster_start" if args.op == "start" else args.op
        result = _groups(state_dir, {"op": op, "timeout": args.timeout}, args.timeout)
        if args.json:
            print(json.dumps({"ok": True, **result}, indent=2, sort_keys=True))
        else:
            done = {"suspend": "suspended", "resume": "resumed", "start": "started"}[args.op]
            print(f"cluster {done}" + ("" if result["changed"] else " already: nothing to do"))
        return 0
    then = "stop_service"
    if args.op == "shutdown":
        then = "reboot" if args.reboot else "shutdown"
    status = request(state_dir, "status", timeout=5)
    me = status["server"]
    _say(args, "suspending the cluster: no server takes over what another one releases")
    try:
        _groups(state_dir, {"op": "suspend", "timeout": 10}, 10)
    except UserError as exc:
        _say(args, f"  (not suspended: {exc}; going on)")
    results: dict[str, Any] = {}
    for s in status["servers"]:
        name = s["name"]
        if name == me:
            continue
        _say(args, f"stopping server {name} ...")
        results[name] = _remote_shutdown(state_dir, name, then)
    _say(args, f"stopping server {me} (this one) ...")
    results[me] = _local_shutdown(state_dir, then, args.timeout)
    failed = {s: r["error"] for s, r in results.items() if not r.get("ok")}
    if args.json:
        print(json.dumps({"ok": not failed, "servers": results}, indent=2, sort_keys=True))
    else:
        for s, r in results.items():
            print(f"{s}: {'stopped' if r.get('ok') else 'NOT stopped: ' + r['error']}")
    if failed:
        raise UserError(
            "cluster stop incomplete: " + "; ".join(f"{s}: {e}" for s, e in failed.items()),
            exit_code=1,
        )
    return 0


def cmd_server_shutdown(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    status = request(state_dir, "status", timeout=5)
    me = status["server"]
    target = args.server or me
    names = [s["name"] for s in status["servers"]]
    if target not in names:
        raise UserError(f"no server {target!r} (servers: {', '.join(names)})")
    then = "stop_service" if args.service_only else ("reboot" if args.reboot else "shutdown")
    if target == me:
        _say(args, f"stopping server {me} (this one): its groups are released first ...")
        result = _local_shutdown(state_dir, then, args.timeout)
    else:
        _say(args, f"stopping server {target}: its groups are released first ...")
        result = _remote_shutdown(state_dir, target, then)
        if result.get("ok"):
            result = _wait_offline(state_dir, target, args)
    if args.json:
        print(json.dumps({"server": target, **result}, indent=2, sort_keys=True))
    elif result.get("ok"):
        print(f"server {target}: stopped ({then})")
    if not result.get("ok"):
        raise UserError(f"server {target} did not stop: {result.get('error')}", exit_code=1)
    return 0


def _remote_shutdown(state_dir: str, server: str, then: str) -> dict[str, Any]:
    body = {
        "server": server,
        "service": "node",
        "method": "shutdown",
        "body": {"then": then},
        "timeout": 5.0,
    }
    try:
        request(state_dir, "call", body, 10, service="link")
    except UserError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True}


def _local_shutdown(state_dir: str, then: str, timeout: float) -> dict[str, Any]:
    from bus.paths import NodePaths

    try:
        request(state_dir, "shutdown", {"then": then}, 10)
    except UserError as exc:
        return {"ok": False, "error": str(exc)}
    paths = NodePaths(state_dir)
    deadline = time.monotonic() + timeout
    while paths.node_running():
        if time.monotonic() > deadline:
            return {"ok": False, "error": f"still stopping after {timeout:g}s"}
        time.sleep(0.2)
    return {"ok": True}


def _wait_offline(state_dir: str, server: str, args: argparse.Namespace) -> dict[str, Any]:
    """Until membership here sees the server down (its groups then start elsewhere)."""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = request(state_dir, "status", timeout=5)
        state = next(s["state"] for s in status["servers"] if s["name"] == server)
        if state != "online":
            return {"ok": True}
        time.sleep(0.2)
    return {"ok": False, "error": f"still online after {args.timeout:g}s"}
