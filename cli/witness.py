"""`haven witness serve|token`: the witness service for `witness` NP resources, on a third host.

    haven witness token --config cluster.toml     # on a cluster server: the cluster's token line
    haven witness serve --tokens FILE [--listen ADDR:PORT] [--state FILE] [--max-lease SECONDS]

`token` prints one line for the witness's tokens file (the token is derived from the cluster key;
the witness never needs the key itself). `serve` answers lease requests on ADDR:PORT (default
0.0.0.0:29005) for every cluster whose token is in the tokens file (mode 0600; `kill -HUP`
re-reads it), until SIGTERM or SIGINT. Give it `--state FILE`: without one, a restarted witness
refuses every lease for `--max-lease` seconds, since it cannot know what it granted before.
The protocol and its arguments: actors/np/witness_protocol.py and witness_server.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import threading

from cli.args import seconds
from cli.errors import UserError
from config.witness import DEFAULT_PORT, host_port

DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"
DEFAULT_MAX_LEASE = 300.0


def listen_address(text: str) -> tuple[str, int]:
    """ADDR:PORT ([ADDR]:PORT for IPv6) → (addr, port), or argparse's one-line error."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give ADDR:PORT, e.g. 0.0.0.0:{DEFAULT_PORT} or [::]:{DEFAULT_PORT}"
        )
    return host, int(port_text)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "witness", help="the witness service for witness NP resources", description=__doc__
    )
    witness_sub = parser.add_subparsers(dest="witness_command", metavar="SUBCOMMAND")
    witness_sub.required = True
    serve = witness_sub.add_parser(
        "serve",
        help="answer witness lease requests (run it on a third host)",
        description="Serve witness leases to the clusters whose tokens are in --tokens.",
    )
    serve.add_argument(
        "--listen",
        type=listen_address,
        default=listen_address(DEFAULT_LISTEN),
        metavar="ADDR:PORT",
        help=f"where to listen (default {DEFAULT_LISTEN})",
    )
    serve.add_argument(
        "--tokens",
        required=True,
        metavar="FILE",
        help="the clusters' tokens, one per line (from `haven witness token`), mode 0600",
    )
    serve.add_argument(
        "--state",
        metavar="FILE",
        help="where the leases are kept across restarts (without it a restarted witness "
        "refuses leases for --max-lease seconds)",
    )
    serve.add_argument(
        "--max-lease",
        type=seconds,
        default=DEFAULT_MAX_LEASE,
        metavar="SECONDS",
        help=f"the longest lease granted (default {DEFAULT_MAX_LEASE:g})",
    )
    serve.set_defaults(func=cmd_serve)
    token = witness_sub.add_parser(
        "token",
        help="print the cluster's line for the witness's tokens file",
        description="Derive the cluster's witness token from its cluster key and print the "
        "line to add to the witness's tokens file.",
    )
    token.add_argument("--config", required=True, help="the cluster configuration (TOML)")
    token.set_defaults(func=cmd_token)


def cmd_token(args: argparse.Namespace) -> int:
    from actors.np.witness_protocol import cluster_token, token_line
    from config import ConfigError, load_config
    from config.clusterkey import ClusterKeyError, load_cluster_key

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    if cfg.key_path() is None:
        raise UserError(f"{args.config} names no cluster key ([cluster] key_file)")
    try:
        key = load_cluster_key(cfg.key_path())
    except ClusterKeyError as exc:
        raise UserError(str(exc)) from None
    print(token_line(cluster_token(key), cfg.name))
    return 0


def read_tokens(path: str) -> dict[str, bytes]:
    from actors.np.witness_protocol import ProtocolError, parse_tokens

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"cannot read the tokens file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd) as f:
        mode = os.fstat(f.fileno()).st_mode
        text = f.read(1 << 20)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(
            f"the tokens file {path} is accessible to others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return parse_tokens(text)
    except ProtocolError as exc:
        raise UserError(f"{path}: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from actors.np.witness_server import Witness, WitnessHTTPServer

    def log(line: str) -> None:
        print(f"haven witness: {line}", file=sys.stderr, flush=True)

    tokens = read_tokens(args.tokens)
    if args.max_lease <= 0:
        raise UserError("--max-lease must be above 0 seconds")
    witness = Witness(tokens, max_lease=args.max_lease, state_path=args.state, log=log)
    host, port = args.listen
    try:
        server = WitnessHTTPServer((host, port), witness)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {host_port(host, port)}: {exc.strerror or exc}"
        ) from None
    done = threading.Event()

    def reload_tokens(signum: int, frame: object) -> None:
        try:
            witness.tokens = read_tokens(args.tokens)
            log(f"tokens re-read: {len(witness.tokens)} cluster(s)")
        except UserError as exc:
            log(f"tokens NOT re-read, the old ones stay: {exc}")

    signal.signal(signal.SIGTERM, lambda signum, frame: done.set())
    signal.signal(signal.SIGINT, lambda signum, frame: done.set())
    signal.signal(signal.SIGHUP, reload_tokens)
    thread = threading.Thread(target=server.serve_forever, name="witness http", daemon=True)
    thread.start()
    log(f"listening on {host_port(host, port)} for {len(tokens)} cluster(s)")
    try:
        while not done.wait(1.0):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)
    log("stopped")
    return 0
