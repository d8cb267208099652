"""`haven alerts [-n N] [--level L] [--follow] [--json]`: this server's alert log — the alerts of
every server that reached it (see actors/alertlog.py), oldest first; `--follow` then prints new
ones as they come (Ctrl-C, or `--for S`, ends it)."""

from __future__ import annotations

import argparse
import json
import time

import zmq

from bus import envelope, topics
from bus.envelope import EnvelopeError
from cli.args import count, seconds
from cli.nodeclient import node_paths, request, subscriber
from cli.statedir import add_state_dir_argument, resolve_state_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="the cluster's alerts as this server recorded them")
    add_state_dir_argument(p)
    p.add_argument("-n", "--count", type=count, default=50, help="how many (default 50)")
    p.add_argument("--level", choices=("info", "warning", "error"), help="this level and above")
    p.add_argument("--follow", action="store_true", help="then print new alerts as they come")
    p.add_argument("--for", dest="follow_for", type=seconds, default=0.0, help="follow S seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_alerts)


def cmd_alerts(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    body = {"count": args.count, **({"level": args.level} if args.level else {})}
    answer = request(state_dir, "tail", body, timeout=10, service="alertlog")
    for record in answer["records"]:
        print(format_record(record, args.json), flush=True)
    if args.follow:
        follow(state_dir, args)
    return 0


def format_record(record: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(record, sort_keys=True)
    try:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record["time"])))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        stamp = "?"
    return (
        f"{stamp}  {record.get('level', '?'):<7}  {record.get('server', '?'):<10}  "
        f"{record.get('module', '?')}/{record.get('event', '?')}: {record.get('message', '')}"
    )


def follow(state_dir: str, args: argparse.Namespace) -> None:
    levels = ("info", "warning", "error")
    wanted = set(levels[levels.index(args.level) :]) if args.level else set(levels)
    with subscriber(node_paths(state_dir), topics.ALERT) as sock:
        _follow(sock, wanted, args)


def _follow(sock: zmq.Socket, wanted: set[str], args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.follow_for if args.follow_for > 0 else None
    try:
        while deadline is None or time.monotonic() < deadline:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            if not sock.poll(int(wait * 1000)):
                continue
            try:
                env = envelope.decode_multipart(sock.recv_multipart())
            except EnvelopeError:
                continue
            level = env.topic.removeprefix(topics.ALERT)
            if level not in wanted:
                continue
            body = env.body if isinstance(env.body, dict) else {}
            record = {
                "time": env.time,
                "server": env.server,
                "level": level,
                "module": body.get("module", env.actor),
                "event": body.get("event", ""),
                "message": body.get("message", ""),
            }
            print(format_record(record, args.json), flush=True)
    except KeyboardInterrupt:
        pass
