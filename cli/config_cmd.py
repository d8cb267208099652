"""`haven config check FILE [--json]`: validate a configuration file without a running node.

Prints every error and warning on its own line with its place, then a summary line. Exit code 0
when the file is valid (warnings allowed), 1 when it has errors, 2 when it cannot be read.
`--json` prints `{"ok", "file", "errors": [{"path", "place", "message"}], "warnings": [...]}`.
Actor kinds are checked against `actors.registry.ACTOR_KINDS`.
"""

from __future__ import annotations

import argparse
import json
import os

from cli import config_sync
from cli.errors import UserError
from config import check_config
from config.clusterkey import ClusterKeyError, generate_cluster_key
from config.issues import ERROR, WARNING, Issue


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config", help="check and manage the cluster configuration", description=__doc__
    )
    sub = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    sub.required = True
    check = sub.add_parser(
        "check",
        help="validate a configuration file and list every problem",
        description="Validate FILE and list every error and warning with its place.",
    )
    check.add_argument("file", metavar="FILE", help="the configuration file (TOML)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=run_check)
    keygen = sub.add_parser(
        "keygen",
        help="create a new cluster key file (mode 0600; never overwrites)",
        description="Create FILE with a new random cluster key. Copy it to every server.",
    )
    keygen.add_argument("file", metavar="FILE")
    keygen.set_defaults(func=run_keygen)
    config_sync.register_subcommands(sub)


def run_check(args: argparse.Namespace) -> int:
    path = args.file
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory, not a configuration file")
    try:
        _, issues = check_config(path)
    except FileNotFoundError as exc:
        raise UserError(f"no such file: {path}") from exc
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    errors = [i for i in issues if i.level == ERROR]
    warnings = [i for i in issues if i.level == WARNING]
    if args.json:
        print(json.dumps(_as_json(path, errors, warnings), indent=2, ensure_ascii=False))
    else:
        for issue in issues:
            print(issue)
        print(_summary(path, errors, warnings))
    return 1 if errors else 0


def run_keygen(args: argparse.Namespace) -> int:
    try:
        generate_cluster_key(args.file)
    except ClusterKeyError as exc:
        raise UserError(str(exc)) from None
    print(f"{args.file}: new cluster key written (mode 0600); copy it to every server")
    return 0


def _as_json(path: str, errors: list[Issue], warnings: list[Issue]) -> dict:
    return {
        "ok": not errors,
        "file": path,
        "errors": [i.as_dict() for i in errors],
        "warnings": [i.as_dict() for i in warnings],
    }


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(path: str, errors: list[Issue], warnings: list[Issue]) -> str:
    if errors:
        return (
            f"{path}: invalid, {_count(len(errors), 'error')}, {_count(len(warnings), 'warning')}"
        )
    if warnings:
        return f"{path}: valid, {_count(len(warnings), 'warning')}"
    return f"{path}: valid"
