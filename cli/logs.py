"""`haven logs collect [-o FILE] [--server NAME ...] [--timeout S] [--json]`: one tar.gz of every
reachable server's logs, configuration (secrets left out), state-directory summary, alert log,
status and system facts (the original's clplogcc).

This server's part is gathered here, directly from files and commands, so it works with no
running node and with no configuration at all; every other server builds its own part when the
local node's link asks it (`logs_bundle`), and this command fetches it in chunks (`logs_chunk`)
and has it deleted (`logs_done`). The archive holds one directory per server and `collect.json`,
the manifest of what was collected from which server and what was skipped and why, all under
one top directory named like the archive. Every call has a deadline and the whole collection has
one (`--timeout`): a server that stops answering is skipped with a note, never waited for.

Exit status: 0 every server collected, 1 the archive was written but some server was skipped,
2 a mistake on the command line (an unwritable -o, an unknown --server).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import queue
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bus.paths import NodePaths, StateDirError
from bus.rpc import Client, RequestError
from cli.args import seconds
from cli.errors import UserError
from cli.nodeclient import request
from cli.statedir import add_state_dir_argument, resolve_state_dir
from supervisor import logbundle

DEFAULT_TIMEOUT = 120.0  # seconds for the whole collection
CALL_TIMEOUT = 10.0  # seconds for one request to another server
POLL_INTERVAL = 0.3  # seconds between "is the part ready?" questions
GRACE = 3.0  # seconds past the deadline for a part already under way to report
MANIFEST = "collect.json"


def register(sub: argparse._SubParsersAction) -> None:
    logs = sub.add_parser("logs", help="collect logs from the cluster's servers")
    logs_sub = logs.add_subparsers(dest="logs_command", metavar="SUBCOMMAND")
    logs_sub.required = True
    p = logs_sub.add_parser(
        "collect",
        help="one archive of every server's logs, configuration, state and system facts",
        description="Write one tar.gz with a directory per reachable server and a manifest "
        "(collect.json) of what was collected and what was skipped.",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the archive (default: haven-logs-<cluster>-<UTC time>.tar.gz here)",
    )
    p.add_argument(
        "--server",
        action="append",
        metavar="NAME",
        help="only this server (repeat for several; default: every configured server)",
    )
    p.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        help=f"seconds the whole collection may take (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="the configuration to include (default: the one the local node runs)",
    )
    add_state_dir_argument(p)
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_collect)


# what there is to collect -----------------------------------------------------------------------
@dataclass
class Context:
    state_dir: str
    deadline: float
    node_running: bool = False
    status: dict[str, Any] | None = None
    config_path: str | None = None
    config_file_text: str | None = None  # --config
    running_text: str | None = None  # what the local node runs
    config_source: str = "none"  # file | node | none
    cluster: str | None = None
    servers: list[str] = field(default_factory=list)  # as configured, in order
    local: str = ""
    notes: list[str] = field(default_factory=list)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def link_running(self) -> bool:
        actors = (self.status or {}).get("actors") or []
        return any(a.get("name") == "link" and a.get("state") == "running" for a in actors)


def discover(args: argparse.Namespace) -> Context:
    ctx = Context(resolve_state_dir(args.state_dir), time.monotonic() + args.timeout)
    try:
        ctx.node_running = NodePaths(ctx.state_dir).node_running()
    except (StateDirError, OSError):
        ctx.node_running = False
    if ctx.node_running:
        limit = max(0.5, min(5.0, ctx.left() / 4))
        try:
            ctx.status = request(ctx.state_dir, "status", timeout=limit)
            running = request(ctx.state_dir, "config", timeout=limit)
            ctx.config_path = running.get("path") or None
            ctx.running_text = running.get("text")
            ctx.config_source = "node"
        except (UserError, AttributeError) as exc:
            ctx.notes.append(f"the local node did not answer ({exc}): only this server's files")
            ctx.config_path = logbundle.node_config_path(ctx.state_dir)
            if ctx.config_path:  # the file it was started with, read from its command line
                ctx.config_source = "node command line"
    else:
        ctx.notes.append(f"no node runs with state directory {ctx.state_dir}")
    if args.config:
        ctx.config_path = os.path.abspath(args.config)
        ctx.config_file_text = _read_config(args.config)
        ctx.config_source = "file"
    text = ctx.config_file_text if ctx.config_file_text is not None else ctx.running_text
    if text is None and ctx.config_path:
        with contextlib.suppress(OSError), open(ctx.config_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    if text is not None:
        summary = logbundle.config_summary(text)
        ctx.cluster = summary.get("cluster")
        ctx.servers = [s for s in summary.get("servers") or [] if isinstance(s, str)]
        if not summary.get("valid_toml"):
            ctx.notes.append("the configuration is not valid TOML: only this server's part")
    if ctx.status is not None:
        ctx.cluster = ctx.cluster or (ctx.status.get("cluster") or {}).get("name")
    ctx.local = _local_server(ctx)
    return ctx


def _read_config(path: str) -> str:
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory, not a configuration file")
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as exc:
        raise UserError(f"cannot read the configuration {path}: {exc.strerror}") from None


def _local_server(ctx: Context) -> str:
    if ctx.status is not None and isinstance(ctx.status.get("server"), str):
        return ctx.status["server"]
    host = socket.gethostname()
    if host in ctx.servers:
        return host
    if len(ctx.servers) == 1:
        return ctx.servers[0]
    if ctx.servers:
        ctx.notes.append(f"this host ({host}) is not a configured server; its part is named so")
    return host


def targets(ctx: Context, wanted: list[str] | None) -> list[str]:
    known = list(ctx.servers)
    if ctx.local not in known:
        known.insert(0, ctx.local)
    if not wanted:
        return known
    unknown = [w for w in wanted if w not in known]
    if unknown:
        where = "configured servers" if ctx.servers else "without a configuration, only"
        raise UserError(f"unknown server {unknown[0]!r} ({where}: {', '.join(known)})")
    return [s for s in known if s in wanted]


# where the archive goes -------------------------------------------------------------------------
def _slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in text).strip("-.")
    return cleaned[:60] or "cluster"


def output_path(given: str | None, ctx: Context) -> str:
    if given:
        return os.path.abspath(given)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return os.path.abspath(f"haven-logs-{_slug(ctx.cluster or ctx.local)}-{stamp}.tar.gz")


def open_output(path: str) -> tuple[int, str, str]:
    """(fd, temporary name, work directory) beside `path`: the archive is written under a
    temporary name and renamed when complete; a place we cannot write is a UserError now."""
    directory, base = os.path.split(path)
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory; give the archive's file name with -o")
    if os.path.lexists(path) and not os.path.isfile(path) or os.path.islink(path):
        raise UserError(  # renaming over it would replace a device or a link (/dev/stdout)
            f"{path} exists and is not a regular file; give a new file's name with -o"
        )
    if not os.path.isdir(directory):
        raise UserError(f"cannot write {path}: the directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        work = tempfile.mkdtemp(prefix=".haven-logs-", dir=directory)
    except OSError as exc:
        os.close(fd)
        os.unlink(tmp)
        raise UserError(f"cannot write in {directory}: {exc.strerror or exc}") from None
    return fd, tmp, work


# collecting the parts ---------------------------------------------------------------------------
class Skip(Exception):
    """A server's part cannot be had; the message says why."""


def part_timeout(ctx: Context) -> float:
    """How long a part may take to build: what leaves time to fetch it before the deadline."""
    return max(1.0, min(logbundle.PART_TIMEOUT, ctx.left() * 0.6))


def collect_local(ctx: Context, dest: str) -> dict[str, Any]:
    config_path = ctx.config_path
    return logbundle.build_part(
        dest,
        server=ctx.local,
        state_dir=ctx.state_dir,
        config_path=config_path,
        running_config=ctx.running_text,
        timeout=part_timeout(ctx),
        via="local",
    )


def collect_remote(ctx: Context, server: str, dest: str, cancel: threading.Event) -> int:
    """Fetch `server`'s part over the local node's link into `dest`; its size."""
    try:
        endpoint = NodePaths(ctx.state_dir).service_endpoint("link")
    except StateDirError as exc:
        raise Skip(str(exc)) from None
    with Client(endpoint, sender=f"cli/{os.getpid()}") as client:

        def call(method: str, body: dict[str, Any], limit: float = CALL_TIMEOUT) -> Any:
            left = ctx.left()
            if cancel.is_set():
                raise Skip("interrupted")
            if left < 0.5:
                raise Skip(f"no answer within the deadline ({method})")
            wait = min(limit, left)
            call_body = {
                "server": server,
                "service": "node",
                "method": method,
                "body": body,
                "timeout": round(max(0.1, wait - 1.5), 1),  # the link answers first
            }
            try:
                return client.request("call", call_body, timeout=wait)
            except RequestError as exc:
                raise Skip(_reason(str(exc), server)) from None

        started = call("logs_bundle", {"timeout": part_timeout(ctx)})
        bundle_id = started["id"]
        try:
            return _fetch(call, bundle_id, dest, ctx, cancel)
        except Skip:
            if ctx.left() > 2.5 and not cancel.is_set():  # best effort: it expires anyway
                with contextlib.suppress(Skip):
                    call("logs_done", {"id": bundle_id}, limit=2.0)
            raise


def _fetch(call: Any, bundle_id: str, dest: str, ctx: Context, cancel: threading.Event) -> int:
    digest = hashlib.sha256()
    offset = 0
    with open(dest, "wb") as f:
        while True:
            answer = call("logs_chunk", {"id": bundle_id, "offset": offset})
            if answer.get("state") == "building":
                time.sleep(max(0.0, min(POLL_INTERVAL, ctx.left() - 0.5)))
                continue
            data = answer.get("data")
            if not isinstance(data, bytes) or answer.get("offset") != offset:
                raise Skip("the server sent a malformed chunk")
            f.write(data)
            digest.update(data)
            offset += len(data)
            size = answer.get("size")
            if answer.get("eof") or offset >= size:
                break
            if not data:
                raise Skip("the part ended before its size")
    if offset != size or digest.hexdigest() != answer.get("sha256"):
        raise Skip("the part arrived damaged (size or checksum mismatch)")
    with contextlib.suppress(Skip):
        call("logs_done", {"id": bundle_id}, limit=3.0)
    return offset


def _reason(message: str, server: str) -> str:
    prefix = f"server {server}: "
    return message.removeprefix(prefix)


# the archive ------------------------------------------------------------------------------------
def server_dirs(names: list[str]) -> dict[str, str]:
    """A directory name per server: safe on any filesystem, distinct, not too long."""
    dirs: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        d = logbundle.safe_name(name)
        if d == MANIFEST.removesuffix(".json") or len(d.encode()) > 200:
            d = d.encode()[:150].decode(errors="ignore") + "-" + _short_hash(name)
        while d in used or d == MANIFEST:
            d += "-" + _short_hash(d)
        used.add(d)
        dirs[name] = d
    return dirs


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def read_part(path: str) -> tuple[dict[str, Any], list[tarfile.TarInfo]]:
    """The part's own manifest and its members (all of it read: a damaged part fails here)."""
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
        info = tar.extractfile("part.json") if "part.json" in tar.getnames() else None
        part = json.load(info) if info is not None else {}
    if not isinstance(part, dict):
        part = {}
    return part, members


def _safe_member(m: tarfile.TarInfo) -> bool:
    parts = m.name.split("/")
    return (
        (m.isfile() or m.isdir())
        and not m.name.startswith("/")
        and ".." not in parts
        and all(parts)
    )


def write_archive(fd: int, root: str, manifest: dict[str, Any], parts: dict[str, str]) -> None:
    """Write the manifest, then each part under `<root>/<server dir>/`; `parts` maps a server
    directory to its part's tar.gz."""
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            now = int(time.time())
            _add_dir(tar, root, now)
            data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
            info = tarfile.TarInfo(f"{root}/{MANIFEST}")
            info.size, info.mode, info.mtime = len(data), 0o600, now
            tar.addfile(info, _bytes_io(data))
            for directory, path in parts.items():
                _add_dir(tar, f"{root}/{directory}", now)
                with tarfile.open(path, "r:gz") as part:
                    for m in part:
                        if not _safe_member(m):
                            continue
                        copy = tarfile.TarInfo(f"{root}/{directory}/{m.name}")
                        copy.type, copy.mtime = m.type, m.mtime
                        copy.mode = 0o700 if m.isdir() else 0o600
                        copy.size = m.size if m.isfile() else 0
                        tar.addfile(copy, part.extractfile(m) if m.isfile() else None)
        raw.flush()
        os.fsync(raw.fileno())


def _add_dir(tar: tarfile.TarFile, name: str, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, mtime
    tar.addfile(info)


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def human_size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{max(1, round(n / 1024))} KiB" if n else "0 KiB"


# the command ------------------------------------------------------------------------------------
def cmd_collect(args: argparse.Namespace) -> int:
    ctx = discover(args)
    wanted = targets(ctx, args.server)
    path = output_path(args.output, ctx)
    fd, tmp, work = open_output(path)
    try:
        return _collect(args, ctx, wanted, path, fd, tmp, work)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _collect(
    args: argparse.Namespace,
    ctx: Context,
    wanted: list[str],
    path: str,
    fd: int,
    tmp: str,
    work: str,
) -> int:
    progress = sys.stderr if args.json else sys.stdout
    dirs = server_dirs(wanted)
    results: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    cancel = threading.Event()
    remote_problem = None
    if not ctx.node_running:
        remote_problem = "the local node is not running (other servers are reached through it)"
    elif ctx.status is None:
        remote_problem = "the local node did not answer (other servers are reached through it)"
    elif not ctx.link_running:
        remote_problem = "the local node's link is not running (see `haven status`)"

    def one(server: str) -> None:
        dest = os.path.join(work, f"{dirs[server]}.tar.gz")
        began = time.monotonic()
        try:
            if server == ctx.local:
                collect_local(ctx, dest)
                result = {"via": "local"}
            else:
                result = {"via": "link"}
                collect_remote(ctx, server, dest, cancel)
            result.update(status="collected", file=dest)
        except Skip as exc:
            result.update(status="skipped", reason=str(exc))
        except Exception as exc:  # a bug or an OS error: this server's part only
            result = {"status": "skipped", "reason": f"{type(exc).__name__}: {exc}"}
        result["seconds"] = round(time.monotonic() - began, 3)
        results.put((server, result))

    outcome: dict[str, dict[str, Any]] = {}
    for server in wanted:
        if server != ctx.local and remote_problem:
            outcome[server] = {"status": "skipped", "via": "link", "reason": remote_problem}
            _report(progress, server, outcome[server])
            continue
        threading.Thread(target=one, args=(server,), name=f"logs-{server}", daemon=True).start()
    pending = {s for s in wanted if s not in outcome}
    try:
        while pending:
            left = ctx.left() + GRACE
            try:
                server, result = results.get(timeout=max(0.0, left))
            except queue.Empty:
                break
            pending.discard(server)
            outcome[server] = result
            _report(progress, server, result)
    except KeyboardInterrupt:
        cancel.set()
        raise
    cancel.set()
    for server in pending:  # still under way past the deadline: left behind, never waited for
        outcome[server] = {
            "status": "skipped",
            "via": "local" if server == ctx.local else "link",
            "reason": f"no part within the deadline ({args.timeout:g}s)",
        }
        _report(progress, server, outcome[server])

    parts: dict[str, str] = {}
    for server in wanted:
        result = outcome[server]
        if result["status"] != "collected":
            continue
        try:
            part, _ = read_part(result["file"])
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            result.update(status="skipped", reason=f"its part is damaged ({exc})")
            continue
        result.update(
            dir=dirs[server],
            bytes=os.path.getsize(result["file"]),
            items=part.get("items", []),
            node=part.get("node"),
            host=part.get("host"),
        )
        if "config" in part:
            result["config"] = part["config"]
        parts[dirs[server]] = result.pop("file")
    root = os.path.basename(path)
    for suffix in (".tar.gz", ".tgz"):
        root = root.removesuffix(suffix)
    root = logbundle.safe_name(root)
    manifest = _manifest(args, ctx, wanted, outcome, root, path)
    write_archive(fd, root, manifest, parts)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    collected = sum(1 for s in wanted if outcome[s]["status"] == "collected")
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
    else:
        size = human_size(os.path.getsize(path))
        print(f"wrote {path} ({size}; {collected} of {len(wanted)} servers)")
    return 0 if collected == len(wanted) else 1


def _report(out: Any, server: str, result: dict[str, Any]) -> None:
    if result["status"] == "collected":
        size = os.path.getsize(result["file"]) if os.path.exists(result["file"]) else 0
        line = f"{server}: collecting… {human_size(size)} ok ({result['seconds']:.1f}s)"
    else:
        line = f"{server}: skipped — {result['reason']}"
    print(line, file=out, flush=True)


def _manifest(
    args: argparse.Namespace,
    ctx: Context,
    wanted: list[str],
    outcome: dict[str, dict[str, Any]],
    root: str,
    path: str,
) -> dict[str, Any]:
    if ctx.config_source == "none":
        why = "no node running to ask" if not ctx.node_running else "the local node did not answer"
        config: dict[str, Any] = {
            "source": "none",
            "note": f"no configuration (no --config given and {why})",
        }
    else:
        config = {"source": ctx.config_source, "path": ctx.config_path}
    servers = []
    for server in wanted:
        entry = {"name": server, **outcome[server]}
        entry.pop("file", None)
        servers.append(entry)
    return {
        "format": logbundle.FORMAT,
        "archive": os.path.basename(path),
        "root": root,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cluster": ctx.cluster,
        "collector": {
            "server": ctx.local,
            "host": socket.gethostname(),
            "state_dir": ctx.state_dir,
            "node_running": ctx.node_running,
        },
        "config": config,
        "requested": args.server or "all",
        "timeout": args.timeout,
        "servers": servers,
        "collected": [s for s in wanted if outcome[s]["status"] == "collected"],
        "skipped": [
            {"server": s, "reason": outcome[s]["reason"]}
            for s in wanted
            if outcome[s]["status"] != "collected"
        ],
        "notes": ctx.notes,
    }
