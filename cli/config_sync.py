"""`haven config diff|push|pull|show`: the configuration of the running cluster.

- `diff FILE [--against FILE2]` lists every changed setting, then what applying FILE needs on each
  server: nothing, a suspend/resume, a restart of the node service, or a reboot (see
  `config/changes.py` for why that answer is truthful). Without `--against` it compares with the
  configuration the local node runs.
- `push FILE [--yes]` refuses a file that does not validate, shows the diff, asks, then sends the
  file over the link to every server, which validates it again and stores it in place of its
  configuration file (the old one kept as `.prev`). It does not apply it: the diff said what that
  takes. A server that cannot be reached is named, and the exit status is 1.
- `pull [-o FILE]` prints (or writes) the configuration a server runs; `--server` asks another
  server over the link. `show` is `pull` to the terminal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Any

from cli.errors import UserError
from cli.nodeclient import request
from cli.statedir import add_state_dir_argument, resolve_state_dir
from config import Cluster, check_text
from config.changes import Need, field_changes, overall, server_needs
from config.issues import ERROR
from config.store import store_config

PUSH_TIMEOUT = 10.0  # seconds each server has to validate and store the file


def register_subcommands(sub: argparse._SubParsersAction) -> None:
    diff = sub.add_parser(
        "diff",
        help="what changes, and what applying FILE to the running cluster needs",
        description="List every changed setting and what applying FILE needs on each server.",
    )
    diff.add_argument("file", metavar="FILE")
    diff.add_argument(
        "--against", metavar="FILE2", help="compare with FILE2 instead of the running configuration"
    )
    _common(diff)
    diff.set_defaults(func=run_diff)

    push = sub.add_parser(
        "push",
        help="distribute a configuration file to every server (validated first)",
        description="Validate FILE, show what it changes, then store it on every server.",
    )
    push.add_argument("file", metavar="FILE")
    push.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    _common(push)
    push.set_defaults(func=run_push)

    for name, helptext in (
        ("pull", "fetch the configuration a server runs"),
        ("show", "print the configuration this node runs"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        if name == "pull":
            p.add_argument("-o", "--output", metavar="FILE", help="write it here (default: print)")
            p.add_argument("--server", help="ask this server over the link (default: this one)")
        _common(p)
        p.set_defaults(func=run_pull)


def _common(p: argparse.ArgumentParser) -> None:
    add_state_dir_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


# reading ------------------------------------------------------------------------------------------
def _read(path: str) -> bytes:
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory, not a configuration file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def _valid(data: bytes | str, source: str, what: str) -> Cluster:
    """The cluster in `data`, or a UserError listing every error with its place."""
    from actors.registry import ACTOR_KINDS

    cluster, issues = check_text(data, source, actor_kinds=ACTOR_KINDS)
    errors = [str(i) for i in issues if i.level == ERROR]
    if cluster is None or errors:
        raise UserError(f"{what} is not valid ({len(errors)} errors):\n  " + "\n  ".join(errors))
    return cluster


def _running(state_dir: str) -> dict[str, Any]:
    return request(state_dir, "config")


# diff ---------------------------------------------------------------------------------------------
def _analyse(old: Cluster, new: Cluster) -> dict[str, Any]:
    from supervisor.children import what_runs

    changes = field_changes(old, new)
    needs = server_needs(old, new, what_runs)
    return {
        "changes": [
            {"place": c.place, "old": _plain(c.old), "new": _plain(c.new)} for c in changes
        ],
        "change_lines": [str(c) for c in changes],
        "servers": {n.server: {"needs": n.need.key, "why": list(n.why)} for n in needs},
        "needs": overall(needs).key,
        "_needs": needs,
    }


def _plain(value: Any) -> Any:
    plain = (str, int, float, bool, list, dict, type(None))
    return value if isinstance(value, plain) else str(value)


def _print_analysis(report: dict[str, Any], old_name: str, new_name: str) -> None:
    if not report["change_lines"]:
        print(f"{new_name} and {old_name} configure the same cluster: applying it needs nothing.")
        return
    print(f"Changes from {old_name} to {new_name}:")
    for line in report["change_lines"]:
        print(f"  {line}")
    print("What applying it needs:")
    for n in report["_needs"]:
        reason = f" ({'; '.join(n.why)})" if n.why else ""
        print(f"  {n.server}: {n.need.words}{reason}")
    need = Need[report["needs"].upper()]
    servers = [n.server for n in report["_needs"] if n.need == need]
    where = f" on {', '.join(servers)}" if need is not Need.NOTHING else ""
    print(f"In all: {need.words}{where}.")


def _json(report: dict[str, Any], **extra: Any) -> str:
    out = {k: v for k, v in report.items() if not k.startswith("_") and k != "change_lines"}
    return json.dumps({**out, **extra}, indent=2, ensure_ascii=False)


def run_diff(args: argparse.Namespace) -> int:
    data = _read(args.file)
    if args.against:
        old_source, old_name = args.against, args.against
        old = _valid(_read(args.against), old_source, args.against)
    else:
        running = _running(resolve_state_dir(args.state_dir))
        old_source, old_name = running["path"], f"the running configuration ({running['path']})"
        old = _valid(running["text"], old_source, "the running configuration")
    # Read as if it were already in place, so that relative paths mean what they will mean there.
    new = _valid(data, old_source, args.file)
    report = _analyse(old, new)
    if args.json:
        print(_json(report, file=args.file, against=old_source))
    else:
        _print_analysis(report, old_name, args.file)
    return 0


# push ---------------------------------------------------------------------------------------------
def run_push(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    data = _read(args.file)
    _valid(data, args.file, args.file)  # the file's own errors, with its own name
    running = _running(state_dir)
    old = _valid(running["text"], running["path"], "the running configuration")
    new = _valid(data, running["path"], args.file)
    report = _analyse(old, new)
    if not args.json:
        _print_analysis(report, f"the running configuration ({running['path']})", args.file)
    targets = list(report["servers"])
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("not asking without a terminal: add --yes to push without a question")
        answer = input(f"Store {args.file} on {', '.join(targets)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing pushed.")
            return 1
    text = data.decode()
    body = {"text": text, "sha256": hashlib.sha256(data).hexdigest()}
    results: dict[str, dict[str, Any]] = {}
    for server in targets:
        if len(old.servers) == 1 and server == old.servers[0].name:  # no link: it is here
            try:
                changed = store_config(running["path"], text)
                results[server] = {"ok": True, "changed": changed, "path": running["path"]}
            except OSError as exc:
                results[server] = {"ok": False, "error": f"cannot write: {exc}"}
            continue
        if server not in {s.name for s in old.servers}:
            results[server] = {
                "ok": False,
                "error": "not in the running configuration: copy the file there yourself",
            }
            continue
        try:
            stored = request(
                state_dir,
                "call",
                {
                    "server": server,
                    "service": "link",
                    "method": "config_store",
                    "body": body,
                    "timeout": PUSH_TIMEOUT,
                },
                timeout=PUSH_TIMEOUT + 3,
                service="link",
            )
            results[server] = {"ok": True, "changed": stored["changed"], "path": stored["path"]}
        except UserError as exc:
            results[server] = {"ok": False, "error": str(exc)}
    failed = [s for s, r in results.items() if not r["ok"]]
    if args.json:
        print(_json(report, file=args.file, pushed=results, ok=not failed))
    else:
        for server, r in results.items():
            if r["ok"]:
                print(f"  {server}: stored{'' if r['changed'] else ' (it already had this file)'}")
            else:
                print(f"  {server}: NOT stored: {r['error']}", file=sys.stderr)
        if failed:
            print(f"Push incomplete: {', '.join(failed)} did not get the file.", file=sys.stderr)
        else:
            print(f"Pushed to every server. To apply it: {Need[report['needs'].upper()].words}.")
    return 1 if failed else 0


# pull / show --------------------------------------------------------------------------------------
def run_pull(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    server = getattr(args, "server", None)
    if server:
        body = {"server": server, "service": "node", "method": "config", "timeout": 5.0}
        running = request(state_dir, "call", body, timeout=8.0, service="link")
    else:
        running = _running(state_dir)
    output = getattr(args, "output", None)
    if args.json:
        print(json.dumps({**running, **({"written": output} if output else {})}, indent=2))
        if not output:
            return 0
    if output:
        try:
            with open(output, "x", encoding="utf-8") as f:
                f.write(running["text"])
        except FileExistsError:
            raise UserError(f"{output} exists already; not overwriting it") from None
        except OSError as exc:
            raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
        if not args.json:
            print(f"{output}: the configuration {server or 'this server'} runs")
    elif not args.json:
        sys.stdout.write(running["text"])
    return 0
