"""`haven lab ...`: a local cluster of real nodes in network namespaces, and the faults to break it
with (root only). All the work is `lab.Lab`'s; this module parses, prints and turns LabError into
one-line errors. The lab directory is `--dir`, else $HAVEN_LAB_DIR, else /run/haven-lab.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from cli.args import seconds
from cli.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lab",
        help="a local cluster in network namespaces, and faults to break it (root)",
        description="Build a cluster of real nodes in network namespaces from a configuration, "
        "break it (kill, pause, partition, loss) and repair it. The lab's state lives in --dir "
        "(default $HAVEN_LAB_DIR or /run/haven-lab), so every command finds it from any shell.",
    )
    lab_sub = p.add_subparsers(dest="lab_command", metavar="SUBCOMMAND")
    lab_sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir", default=None, help="the lab directory (default: $HAVEN_LAB_DIR or /run/haven-lab)"
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output")
    both = [common, as_json]

    def add(name: str, help: str, func, parents=both) -> argparse.ArgumentParser:
        cmd = lab_sub.add_parser(name, help=help, parents=parents)
        cmd.set_defaults(func=lambda args: _run(func, args))
        return cmd

    up = add("up", "create the lab from a configuration and start every server's node", cmd_up)
    up.add_argument("--config", required=True, help="the cluster configuration (TOML)")
    up.add_argument(
        "--timeout", type=seconds, default=30.0, help="how long to wait for each node (seconds)"
    )
    up.add_argument("--no-wait", action="store_true", help="do not wait for the nodes to run")
    add("down", "remove everything the lab made (also after a crash)", cmd_down)
    add("status", "servers, namespaces, node pids and states, addresses, faults", cmd_status)
    for name, what in (
        ("kill", "SIGKILL the server's whole process tree at once (the machine died)"),
        ("start", "start the server's node again"),
        ("pause", "SIGSTOP the server's whole process tree (hung but alive)"),
        ("resume", "SIGCONT the server's whole process tree"),
    ):
        cmd = add(name, what, cmd_server)
        cmd.add_argument("server", help="a server's name (or its short name in the lab)")
    part = add(
        "partition", "drop all traffic between the named servers and the others", cmd_partition
    )
    part.add_argument("servers", nargs="+", metavar="SERVER", help='servers (and/or "router")')
    part.add_argument("--network", help="only on this network (default: every network)")
    part.add_argument(
        "--one-way",
        action="store_true",
        help="drop only what the named servers send to the others (they still hear everyone)",
    )
    part.add_argument(
        "--against",
        nargs="+",
        metavar="SERVER",
        help='cut them off only from these (servers and/or "router"; default: everyone else)',
    )
    loss = add("loss", "drop a share of a server's packets on one network at random", cmd_loss)
    loss.add_argument("server", help='a server (or "router")')
    loss.add_argument("--network", required=True)
    loss.add_argument("--percent", type=float, required=True, help="0-100 (0 removes the loss)")
    add("heal", "remove every partition and loss", cmd_heal)
    ex = add("exec", "run a command in a server's (or the router's) namespace", cmd_exec, [common])
    ex.add_argument("target", metavar="SERVER|router")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")


def _run(func, args: argparse.Namespace) -> int:
    from lab import Lab, LabError

    out = sys.stderr if getattr(args, "json", False) else sys.stdout

    def progress(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        return func(Lab(args.dir, progress=progress), args)
    except LabError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:  # e.g. a lab directory we may not write to
        where = f" ({exc.filename})" if exc.filename else ""
        raise UserError(f"{exc.strerror or exc}{where}") from None


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def cmd_up(lab, args: argparse.Namespace) -> int:
    status = lab.up(args.config, wait=not args.no_wait, timeout=args.timeout)
    if args.json:
        _print_json(status)
    else:
        flag = _dir_flag(args)
        print(f"lab up: `haven lab status{flag}` shows it, `haven lab down{flag}` removes it")
    return 0


def _done(args: argparse.Namespace, result: object) -> int:
    """Commands that change the lab print nothing unless --json (progress lines said it)."""
    if args.json:
        _print_json(result)
    return 0


def cmd_down(lab, args: argparse.Namespace) -> int:
    return _done(args, lab.down())


def cmd_status(lab, args: argparse.Namespace) -> int:
    status = lab.status()
    if args.json:
        _print_json(status)
    else:
        print(render(status))
    return 0


def cmd_server(lab, args: argparse.Namespace) -> int:
    return _done(args, getattr(lab, args.lab_command)(args.server))


def cmd_partition(lab, args: argparse.Namespace) -> int:
    return _done(
        args,
        lab.partition(
            args.servers, network=args.network, one_way=args.one_way, against=args.against
        ),
    )


def cmd_loss(lab, args: argparse.Namespace) -> int:
    return _done(args, lab.loss(args.server, args.network, args.percent))


def cmd_heal(lab, args: argparse.Namespace) -> int:
    return _done(args, lab.heal())


def cmd_exec(lab, args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    argv, env = lab.command(args.target, cmd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)  # the command's exit status is ours
    return 127  # not reached


def _dir_flag(args: argparse.Namespace) -> str:
    return f" --dir {args.dir}" if args.dir else ""


def render(status: dict[str, Any]) -> str:
    lines = [
        f"Lab      {status['id']}  cluster {status['cluster']}  in {status['dir']}"
        + ("" if status["phase"] == "up" else "  (INCOMPLETE: `up` did not finish; run down)"),
        f"Router   {status['router']['namespace']}  {status['router']['address']}"
        f" on {status['router']['network']}",
        f"Switch   {status['switch']}  "
        + ", ".join(f"{n['name']} {n['subnet']} ({n['bridge']})" for n in status["networks"]),
        "",
    ]
    rows = [("SERVER", "NAMESPACE", "STATE", "PID", "ADDRESSES")]
    for s in status["servers"]:
        addresses = ", ".join(
            f"{net} {a} ({s['interfaces'][net]})" for net, a in s["addresses"].items()
        )
        rows.append((s["name"], s["namespace"], s["state"], str(s["pid"] or "-"), addresses))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4])
    lines.append("")
    if status["faults"]:
        lines.append("Faults")
        lines += [f"  {f['text']}" for f in status["faults"]]
    else:
        lines.append("Faults   none")
    for d in status["devices"]:
        where = " <-> ".join(d["ends"]) if d["kind"] == "pty" else d["path"]
        lines.append(f"Device   {d['name']} ({d['kind']}): {where}")
    return "\n".join(line.rstrip() for line in lines)
