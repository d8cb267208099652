"""`haven alerts [-n N] [--level L] [--follow] [--json]`: this server's alert log — the alerts of
every server that reached it (see actors/alertlog.py), oldest first; `--follow` then prints new
ones as they come (Ctrl-C, or `--for S`, ends it).

`haven alerts events` lists the event catalogue (what can be raised, its ID, level and default
destinations); `haven alerts destinations` the configured senders and how they fare; `haven
alerts test [--destination D] [--count N]` sends test alerts through them."""

from __future__ import annotations

import argparse
import json
import time

import zmq

from actors.alertlog import normalised
from actors.alerts.catalogue import EVENTS
from actors.alerts.catalogue import SENDER_PREFIX as SENDER
from bus import envelope, topics
from bus.envelope import EnvelopeError
from cli.args import count, seconds
from cli.errors import UserError
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
    sub2 = p.add_subparsers(dest="alerts_command", metavar="[events|destinations|test]")
    e = sub2.add_parser("events", help="the event catalogue")
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.add_argument("--markdown", action="store_true", help="a Markdown table (docs/alerts.md)")
    e.set_defaults(func=cmd_events)
    d = sub2.add_parser("destinations", help="the alert senders of this server and their counts")
    add_state_dir_argument(d)
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=cmd_destinations)
    t = sub2.add_parser("test", help="send test alerts through the alert destinations")
    add_state_dir_argument(t)
    t.add_argument("--destination", action="append", help="this destination only (repeatable)")
    t.add_argument("--count", type=count, default=1, help="how many test alerts (default 1)")
    t.add_argument("--text", default="this is a test", help="the test alert's text")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=cmd_test)


def cmd_alerts(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    records: list[dict] = []
    before = None
    while len(records) < args.count:  # pages: an answer is cut to fit a frame
        body = {
            "count": args.count - len(records),
            **({"level": args.level} if args.level else {}),
            **({"before": before} if before else {}),
        }
        answer = request(state_dir, "tail", body, timeout=30, service="alertlog")
        records = answer["records"] + records
        if not answer.get("truncated") or not answer["records"]:
            break
        first = answer["records"][0]
        before = [first["time"], first["server"], first["n"]]
    for record in records:
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
        f"{record.get('module', '?')}.{record.get('id', '?')} {record.get('event', '?')}: "
        f"{record.get('message', '')}"
    )


def events_markdown() -> str:
    """The catalogue as docs/alerts.md shows it (a test keeps the two the same)."""
    lines = [
        "| module.ID | event | level | default destinations | message |",
        "|---|---|---|---|---|",
    ]
    for spec in EVENTS.values():
        routes = ", ".join(["log", *sorted(spec.routes)])
        note = " *(raised by the monitor issue)*" if spec.reserved else ""
        template = spec.template.replace("|", "\\|")
        lines.append(
            f"| {spec.module}.{spec.id} | `{spec.name}` | {spec.level} | {routes} | "
            f"{template}{note} |"
        )
    return "\n".join(lines) + "\n"


def cmd_events(args: argparse.Namespace) -> int:
    if args.markdown:
        print(events_markdown(), end="")
        return 0
    for spec in EVENTS.values():
        routes = sorted(spec.routes)
        if args.json:
            print(
                json.dumps(
                    {
                        "module": spec.module,
                        "id": spec.id,
                        "event": spec.name,
                        "level": spec.level,
                        "template": spec.template,
                        "routes": routes,
                        "reserved": spec.reserved,
                    }
                )
            )
        else:
            mark = "  (not raised yet)" if spec.reserved else ""
            print(
                f"{spec.module + '.' + str(spec.id):<14} {spec.name:<26} {spec.level:<7} "
                f"{','.join(routes):<22} {spec.template}{mark}"
            )
    return 0


def _senders(state_dir: str, names: list[str] | None) -> list[str]:
    status = request(state_dir, "status", timeout=10)
    actors = [a["name"] for a in status.get("actors", []) if a["name"].startswith(SENDER)]
    known = [a.removeprefix(SENDER) for a in actors]
    for name in names or []:
        if name not in known:
            raise UserError(
                f"no alert destination {name!r} on this server (configured: "
                f"{', '.join(known) or 'none'})"
            )
    return [n for n in known if not names or n in names]


def cmd_destinations(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    rows = []
    for name in _senders(state_dir, None):
        try:
            rows.append(request(state_dir, "state", timeout=5, service=SENDER + name))
        except UserError as exc:
            rows.append({"destination": name, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    if not rows:
        print("no alert destinations configured ([[alert]] in the configuration)")
    for r in rows:
        if "error" in r:
            print(f"{r['destination']:<16} not answering: {r['error']}")
            continue
        health = f"FAILING: {r['last_error']}" if r["failing_since"] else "ok"
        print(
            f"{r['destination']:<16} {r['type']:<7} sent {r['sent']}, queued {r['queued']}, "
            f"failures {r['failures']}, dropped {r['dropped']}  {health}"
        )
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    names = _senders(state_dir, args.destination)
    if not names:
        raise UserError("no alert destinations configured ([[alert]] in the configuration)")
    answers = {}
    for name in names:
        body = {"count": args.count, "text": args.text}
        answers[name] = request(state_dir, "test", body, timeout=10, service=SENDER + name)
    if args.json:
        print(json.dumps(answers, sort_keys=True))
    else:
        for name, a in answers.items():
            print(
                f"{name}: {a['published']} test alert(s) queued (see `haven alerts destinations`)"
            )
    return 0


def follow(state_dir: str, args: argparse.Namespace) -> None:
    levels = ("info", "warning", "error")
    wanted = set(levels[levels.index(args.level) :]) if args.level else set(levels)
    with subscriber(node_paths(state_dir), topics.ALERT_RECORD) as sock:
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
            record = normalised(env.body)  # every server's, numbered by its alert log
            if record is not None and record["level"] in wanted:
                print(format_record(record, args.json), flush=True)
    except KeyboardInterrupt:
        pass
