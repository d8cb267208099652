"""`haven group start|stop|move` and `haven resource start|stop`: operations on failover groups.

A group operation goes to the coordinator (through this server's groups actor) and answers when
the group has reached the goal, with a clear error, or when `--timeout` runs out (the operation
then goes on in the background). While it waits, each change of the group on any server is
printed as it happens. Running the same command twice is safe: a group already where it is asked
to be is left alone ("nothing to do"), and a command for a group busy with the same goal joins
it. A command for a group busy with another goal is refused with what it is busy with.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from typing import Any

import zmq

from bus import envelope, topics
from bus.envelope import EnvelopeError
from cli.args import seconds
from cli.errors import UserError
from cli.nodeclient import node_paths, request, subscriber
from cli.statedir import add_state_dir_argument, resolve_state_dir

DEFAULT_TIMEOUT = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("group", help="start, stop or move a failover group")
    group_sub = group.add_subparsers(dest="group_command", metavar="SUBCOMMAND")
    group_sub.required = True
    for op, help_text in (
        ("start", "start a group (on its best server, or on --server)"),
        ("stop", "stop a group"),
        ("move", "move an online group to another server (the next in its policy by default)"),
    ):
        p = group_sub.add_parser(op, help=help_text)
        p.add_argument("group", help="the group's name")
        if op != "stop":
            p.add_argument(
                "--server", "--to", dest="server", default=None, help="the server to run it on"
            )
        _common(p)
        p.set_defaults(func=cmd_group, op=op)
    resource = sub.add_parser("resource", help="start or stop one resource of an online group")
    resource_sub = resource.add_subparsers(dest="resource_command", metavar="SUBCOMMAND")
    resource_sub.required = True
    for op in ("start", "stop"):
        p = resource_sub.add_parser(op, help=f"{op} one resource where its group is online")
        p.add_argument("resource", help="the resource's name")
        _common(p)
        p.set_defaults(func=cmd_resource, op=op)


def _common(p: argparse.ArgumentParser) -> None:
    add_state_dir_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the result (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def cmd_group(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    body = {
        "op": args.op,
        "group": args.group,
        "server": getattr(args, "server", None),
        "timeout": args.timeout,
    }
    show = not (args.json or args.quiet)
    result = _with_progress(
        state_dir,
        args.group if show else None,
        lambda: request(state_dir, "operate", body, args.timeout + 5, service="groups"),
    )
    if args.json:
        print(json.dumps({"ok": True, **result}, indent=2, sort_keys=True))
    elif result.get("changed") is False:
        where = f" on {result['server']}" if result.get("server") else ""
        print(f"group {args.group}: already {result['state']}{where}: nothing to do")
    else:
        where = f" on {result['server']}" if result.get("server") else ""
        print(f"group {args.group}: {result['state']}{where}")
    return 0


def cmd_resource(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    status = request(state_dir, "status", {}, args.timeout, service="groups")
    found = [
        (name, g)
        for name, g in status["groups"].items()
        if args.resource in (g.get("resources") or {})
    ]
    if not found:
        raise UserError(f"no resource {args.resource!r} in any group")
    name, group = found[0]
    if group["state"] != "online" or not group.get("server"):
        raise UserError(
            f"group {name} of resource {args.resource} is {group['state']}: start the group first"
        )
    op = {"group": name, "resource": args.resource, "op": args.op}
    if group["server"] == status["server"]:
        result = request(state_dir, "resource_op", op, args.timeout + 5, service="groups")
    else:
        body = {
            "server": group["server"],
            "service": "groups",
            "method": "resource_op",
            "body": op,
            "timeout": args.timeout,
        }
        result = request(state_dir, "call", body, args.timeout + 5, service="link")
    if args.json:
        print(json.dumps({"ok": True, **result}, indent=2, sort_keys=True))
    else:
        print(f"resource {args.resource}: {result['state']} on {result['server']}")
    return 0


def _with_progress(state_dir: str, group: str | None, call: Any) -> dict[str, Any]:
    """Run `call` in a thread; meanwhile print the group's changes from the bus."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    with contextlib.ExitStack() as stack:
        sock = None
        if group is not None:
            paths = node_paths(state_dir)
            sock = stack.enter_context(subscriber(paths, topics.group_state(group)))
            time.sleep(0.05)  # the subscription reaches the node before the command does
        worker.start()
        _show_progress(worker, sock)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _show_progress(worker: threading.Thread, sock: zmq.Socket | None) -> None:
    seen: dict[str, str] = {}
    try:
        while worker.is_alive():
            if sock is None or not sock.poll(100):
                worker.join(0.05 if sock is not None else 0.1)
                continue
            try:
                env = envelope.decode_multipart(sock.recv_multipart())
            except EnvelopeError:
                continue
            _progress_line(env.body, seen)
    finally:
        worker.join()


def _progress_line(body: dict[str, Any], seen: dict[str, str]) -> None:
    server = str(body.get("server"))
    resources = body.get("resources") or {}
    summary = (
        body.get("state", "?")
        + " "
        + " ".join(f"{n}:{r.get('state')}" for n, r in resources.items() if isinstance(r, dict))
    )
    if seen.get(server) == summary:
        return
    seen[server] = summary
    busy = [n for n, r in resources.items() if r.get("state") in ("starting", "stopping")]
    steps = ", ".join(f"{n} {resources[n]['state']}" for n in busy)
    doing = f" ({steps})" if busy else ""
    failure = body.get("failure") or {}
    error = f": {failure.get('error')}" if failure.get("error") else ""
    print(
        f"  {time.strftime('%H:%M:%S')}  {server}: {body.get('state')}{doing}{error}",
        file=sys.stderr,
        flush=True,
    )
