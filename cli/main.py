"""Entry point of the `haven` command.

Each command group lives in its own module that exposes `register(subparsers)`; the table below
is the whole list, so adding a command is one import and one line (no registration by import
side effect). A command's handler returns the process exit code. A `UserError` raised anywhere in a
handler is printed as one line on stderr with exit code 2 — never a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import os
import sys

from cli import alerts, bus_tap, cluster, config_cmd, group, lab, logs, node, status, witness
from cli.errors import UserError

COMMAND_MODULES = (node, status, alerts, cluster, group, config_cmd, bus_tap, lab, witness, logs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="haven", description="Haven high-availability cluster manager"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"haven: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `haven status | head`: the reader left; so do we, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
