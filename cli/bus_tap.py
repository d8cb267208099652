"""`haven bus tap [PREFIX]`: print the node's bus events live (debugging). Ctrl-C ends it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import zmq

from bus import envelope
from bus.envelope import EnvelopeError
from bus.paths import NodePaths
from cli.args import count, seconds
from cli.nodeclient import node_paths, subscriber
from cli.statedir import add_state_dir_argument, resolve_state_dir


def register(sub: argparse._SubParsersAction) -> None:
    bus = sub.add_parser("bus", help="the node's message bus")
    bus_sub = bus.add_subparsers(dest="bus_command", metavar="SUBCOMMAND")
    bus_sub.required = True
    tap = bus_sub.add_parser("tap", help="print bus events live")
    tap.add_argument("prefix", nargs="?", default="", help="topic prefix, e.g. actor. (all)")
    add_state_dir_argument(tap)
    tap.add_argument("--json", action="store_true", help="one JSON object per line")
    tap.add_argument("--count", type=count, default=0, help="stop after N events")
    tap.add_argument("--timeout", type=seconds, default=0.0, help="stop after S seconds")
    tap.set_defaults(func=cmd_tap)


def cmd_tap(args: argparse.Namespace) -> int:
    paths = node_paths(resolve_state_dir(args.state_dir))
    with subscriber(paths, args.prefix) as sock:
        return _tap(sock, paths, args)


def _tap(sock: zmq.Socket, paths: NodePaths, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    seen = dropped = 0
    try:
        while not args.count or seen < args.count:
            wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                break
            if not sock.poll(int(wait * 1000)):
                if not paths.node_running():
                    print("haven: the node has stopped", file=sys.stderr)
                    return 1
                continue
            try:
                env = envelope.decode_multipart(sock.recv_multipart())
            except EnvelopeError:
                dropped += 1
                continue
            seen += 1
            print(format_event(env, args.json), flush=True)
    except KeyboardInterrupt:
        pass
    if dropped:
        print(f"haven: {dropped} malformed frame(s) dropped", file=sys.stderr)
    return 0


def format_event(env: envelope.Envelope, as_json: bool) -> str:
    body = _printable(env.body)
    if as_json:
        return json.dumps(
            {
                "topic": env.topic,
                "sender": env.sender,
                "seq": env.seq,
                "time": env.time,
                "body": body,
            }
        )
    try:
        stamp = time.strftime("%H:%M:%S", time.localtime(env.time))
        stamp += f".{int(env.time % 1 * 1000):03d}"
    except (OverflowError, OSError, ValueError):
        stamp = f"{env.time!r:>12}"
    return f"{stamp}  {env.topic:<28} {env.sender}#{env.seq}  {json.dumps(body)}"


def _printable(value: Any) -> Any:
    """What JSON can show of a body: byte strings and odd keys become text, never an error."""
    if isinstance(value, dict):
        return {
            str(k) if not isinstance(k, bytes) else k.hex(): _printable(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
        return repr(value)
    return value
