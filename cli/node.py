"""`haven node run`: run this server's supervisor in the foreground (the systemd service's command).

The server is `--server`, else the configured server whose name is this host's name, else the only
server of a one-server configuration.
"""

from __future__ import annotations

import argparse
import os
import socket

from cli.errors import UserError
from cli.statedir import add_state_dir_argument, resolve_state_dir


def register(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser("node", help="the node service on this server")
    node_sub = node.add_subparsers(dest="node_command", metavar="SUBCOMMAND")
    node_sub.required = True
    run = node_sub.add_parser("run", help="run this server's supervisor in the foreground")
    run.add_argument("--config", required=True, help="the cluster configuration (TOML)")
    run.add_argument("--server", help="which configured server this is (default: by host name)")
    add_state_dir_argument(run)
    run.add_argument(
        "--lab",
        action="store_true",
        default=os.environ.get("HAVEN_LAB") == "1",
        help="lab mode: node-level actions never shut down or panic the OS (also HAVEN_LAB=1)",
    )
    run.add_argument(
        "--launcher",
        choices=("template", "spawn"),
        default="template",
        help="start actors by forking a pre-imported template (default) or fresh interpreters",
    )
    run.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    run.set_defaults(func=cmd_run)


def pick_server(cfg, requested: str | None) -> str:
    names = [s.name for s in cfg.servers]
    if requested is not None:
        if requested not in names:
            raise UserError(
                f"server {requested!r} is not in the configuration (servers: {', '.join(names)})"
            )
        return requested
    host = socket.gethostname()
    if host in names:
        return host
    if len(names) == 1:
        return names[0]
    raise UserError(
        f"this host ({host}) is not a configured server; pass --server (one of: {', '.join(names)})"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from actors import logs
    from config import ConfigError, parse_config
    from config.clusterkey import ClusterKeyError, load_cluster_key
    from supervisor.children import child_specs, node_settings
    from supervisor.node import Node, NodeAlreadyRunning, StateDirUnusable
    from supervisor.spec import SupervisorSettings

    try:  # read once: the node reports exactly the text it runs (`haven config diff`)
        with open(args.config, "rb") as f:
            data = f.read()
        cfg = parse_config(data, args.config)  # refuses text that is not UTF-8
        text = data.decode()
    except OSError as exc:
        raise UserError(f"cannot read the configuration {args.config}: {exc.strerror}") from None
    except ConfigError as exc:
        raise UserError(f"configuration {args.config} is not valid:\n{exc}") from None
    server = pick_server(cfg, args.server)
    if cfg.heartbeats:
        try:  # refuse now, clearly, rather than have every heartbeat actor fail at start
            load_cluster_key(cfg.key_path())
        except ClusterKeyError as exc:
            raise UserError(str(exc)) from None
    logs.configure(args.log_format)
    settings = SupervisorSettings(
        server=server,
        state_dir=resolve_state_dir(args.state_dir),
        **node_settings(cfg),
        lab=args.lab,
        launcher=args.launcher,
        log_format=args.log_format,
        config_path=os.path.abspath(args.config),
        config_text=text,
    )
    try:
        return Node(settings, child_specs(cfg, server)).run()
    except (NodeAlreadyRunning, StateDirUnusable) as exc:
        raise UserError(str(exc)) from None
