"""One server's part of `haven logs collect` (the original's clplogcc): built here, the one way,
whether the CLI gathers its own server's part directly or a node builds its part for a remote
collector (supervisor/logbundles.py runs `python -m supervisor.logbundle` for that).

A part is a tar.gz whose members are relative paths:

- `part.json`       what was collected, what was skipped and why (one record per item)
- `logs/`           the node's output file (found from its running process, or the lab's
                    `node.log` beside the state directory), the state directory's `log/` files,
                    the systemd unit's journal (`journalctl -u UNIT`) where there is one
- `config/`         the configuration with every secret replaced by "<redacted>" (parameters of
                    TypeSpec kind "secret" and anything named like a password or token), the
                    text the node runs if the file changed since, and `key-file.json`: the
                    cluster key file's path and permissions — never its contents
- `state/`          `tree.txt`/`tree.json`: the state directory with sizes, modes and mtimes;
                    `files/`: its small state files (JSON, markers) — never anything named like a
                    key or token, never a configuration file
- `alerts/`         the alert log, `alerts.log*`
- `status.json`     `haven status --json`, when the node runs
- `system/`         uname, uptime, date, `ip -d addr`, `ip route`, `ip -6 route`, /proc/mounts, the
                    node's process tree (`ps`), `nft list ruleset`

Every command has a deadline and the whole part has one; a missing command, an unreadable file
or no configuration at all is a note in `part.json`, never a failure of the part.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator
from typing import Any

from config.typespec import is_secret_key

FORMAT = 1
PART_TIMEOUT = 60.0  # seconds for a whole part, unless the caller gives less
COMMAND_TIMEOUT = 5.0  # seconds for one system command
STATUS_TIMEOUT = 15.0  # `haven status --json` (it asks the other servers too)
JOURNAL_TIMEOUT = 20.0
JOURNAL_LINES = 50000
LOG_LIMIT = 32 << 20  # bytes: a longer log is cut to its last LOG_LIMIT bytes
STATE_FILE_LIMIT = 256 << 10  # bytes: larger state files are listed, not copied
TREE_LIMIT = 20000  # entries listed in the state tree
DEFAULT_UNIT = "haven.service"
BUNDLE_DIR = "logbundles"  # under the state directory: parts a node built for a collector
REDACTED = "<redacted>"

# State files copied into the part: names ending so, or named so; everything else is only listed.
STATE_SUFFIXES = (".json", ".epoch", ".incarnation", ".done", ".log")
STATE_NAMES = ("running", "node.lock")
NEVER_COPY_WORDS = ("key", "token", "secret", "password", "passwd", "cred", ".pem", ".toml")
SKIP_DIRS = ("bus", BUNDLE_DIR, "alerts")  # sockets; other collectors' parts; copied apart


# secrets -----------------------------------------------------------------------------------------
def secret_names() -> frozenset[str]:
    """Every parameter name the type tables declare of kind "secret" (mail password, SNMP
    community, monitors' passwords...)."""
    from config.catalog import DEFAULT_TYPES

    return DEFAULT_TYPES.secret_names()


def _secret_values(data: Any, names: frozenset[str], inside: bool = False) -> list[str]:
    """Every string held under a secret key, anywhere in parsed TOML."""
    found: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            found += _secret_values(v, names, inside or is_secret_key(str(k), names))
    elif isinstance(data, list):
        for v in data:
            found += _secret_values(v, names, inside)
    elif inside and data is not None:
        found.append(str(data))
    return found


_KEY = r"(?P<key>[A-Za-z0-9_-]+|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*')"
_VALUE = (
    r"(?P<value>\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'"
    r"|\[[^\]]*\]|\{[^}]*\}|[^\s,}\]#]+)"
)
_ASSIGNMENT = re.compile(_KEY + r"[ \t]*=[ \t]*" + _VALUE)


def _mask_assignments(text: str, names: frozenset[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group("key").strip("\"'")
        head = m.group(0)[: m.start("value") - m.start()]
        if is_secret_key(key, names):
            return head + f'"{REDACTED}"'
        value = m.group("value")
        if value[:1] in "{[":  # an inline table or array: secrets may sit inside
            return head + value[0] + _mask_assignments(value[1:], names)
        return m.group(0)

    return _ASSIGNMENT.sub(sub, text)


def redact_config(text: str, names: frozenset[str] | None = None) -> tuple[str | None, str]:
    """The configuration text with every secret value replaced by "<redacted>", and a note.
    None when the secrets could not be removed with certainty (then the text is left out)."""
    names = secret_names() if names is None else names
    try:
        values = _secret_values(tomllib.loads(text), names)
        valid = True
    except tomllib.TOMLDecodeError:
        values, valid = [], False
    redacted = _mask_assignments(text, names)
    # Belt and braces: a secret still visible (an odd layout the pattern missed) removes its line.
    longish = [v for v in values if len(v) >= 4]
    if any(v in redacted for v in longish):
        redacted = "\n".join(
            "# <line removed: it held a secret>" if any(v in line for v in longish) else line
            for line in redacted.split("\n")
        )
    if any(v in redacted for v in longish):
        return None, "left out: its secrets could not be removed with certainty"
    if valid:
        try:
            if _secret_values_unmasked(tomllib.loads(redacted), names):
                return None, "left out: its secrets could not be removed with certainty"
        except tomllib.TOMLDecodeError:
            pass  # a removed line broke the syntax; the secrets are gone, which is what counts
        return redacted, f"secrets redacted ({len(values)} values)"
    return redacted, "not valid TOML: values of secret-named keys masked by pattern"


def _secret_values_unmasked(data: Any, names: frozenset[str]) -> bool:
    return any(v != REDACTED for v in _secret_values(data, names))


# the part ----------------------------------------------------------------------------------------
class Part:
    """Writes one server's part: members are added as they are collected, each recorded."""

    def __init__(self, tar: tarfile.TarFile, deadline: float, workdir: str) -> None:
        self.tar = tar
        self.deadline = deadline
        self.workdir = workdir
        self.items: list[dict[str, Any]] = []
        self.dirs: set[str] = set()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def note(self, item: str, status: str, note: str = "", **extra: Any) -> None:
        record = {"item": item, "status": status, **extra}
        if note:
            record["note"] = note
        self.items.append(record)

    def _dirs_for(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, int(time.time())
                self.tar.addfile(info)

    def add_bytes(self, name: str, data: bytes, mtime: float | None = None) -> None:
        self._dirs_for(name)
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o600
        info.mtime = int(time.time() if mtime is None else mtime)
        self.tar.addfile(info, io.BytesIO(data))

    def add_text(self, name: str, text: str) -> None:
        self.add_bytes(name, text.encode("utf-8", "replace"))

    def add_json(self, name: str, data: Any) -> None:
        self.add_text(name, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    def add_file(self, name: str, path: str, source: str = "", limit: int = LOG_LIMIT) -> None:
        """A copy of `path` (its last `limit` bytes), taken once: a file that grows or is
        rotated meanwhile is copied as it was when opened."""
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    self.note(name, "skipped", "not a regular file", source=source or path)
                    return
                start = max(0, st.st_size - limit)
                f.seek(start)
                # /proc files say size 0: read those from the start, up to the limit
                want = st.st_size - start if st.st_size else limit
                with tempfile.TemporaryFile(dir=self.workdir) as copy:
                    _copy_at_most(f, copy, want)
                    size = copy.tell()
                    copy.seek(0)
                    self._dirs_for(name)
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = size, 0o600, int(st.st_mtime)
                    self.tar.addfile(info, copy)
        except OSError as exc:
            self.note(name, "error", _oserror(exc), source=source or path)
            return
        extra: dict[str, Any] = {"bytes": size, "source": source or path}
        if start:
            extra["truncated"] = f"the last {size} of {st.st_size} bytes"
        self.note(name, "ok", **extra)

    def run(
        self,
        name: str,
        argv: list[str],
        timeout: float = COMMAND_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> bytes | None:
        """Run a command with a deadline and keep its output as `name`; a missing command or a
        timeout is a note. Returns the output (None when there is none)."""
        what = " ".join(argv)
        if shutil.which(argv[0]) is None and not os.path.isabs(argv[0]):
            self.note(name, "skipped", f"{argv[0]} is not installed", command=what)
            return None
        limit = min(timeout, self.left())
        if limit <= 0:
            self.note(name, "skipped", "the part's deadline was reached", command=what)
            return None
        out, code, problem = run_command(argv, limit, self.workdir, env)
        if out is None:
            self.note(name, "error", problem, command=what)
            return None
        self.add_bytes(name, out)
        extra: dict[str, Any] = {"command": what, "bytes": len(out)}
        if code:
            extra["exit"] = code
        if problem:
            self.note(name, "error", problem, **extra)
        else:
            self.note(name, "ok", **extra)
        return out


def _copy_at_most(src: Any, dst: Any, n: int) -> None:
    while n > 0:
        chunk = src.read(min(n, 1 << 20))
        if not chunk:
            return
        dst.write(chunk)
        n -= len(chunk)


def _oserror(exc: OSError) -> str:
    return exc.strerror or str(exc)


def run_command(
    argv: list[str], timeout: float, workdir: str, env: dict[str, str] | None = None
) -> tuple[bytes | None, int | None, str]:
    """(output, exit status, problem): stdout and stderr go to a file, so a child that keeps
    them open cannot hold us; past `timeout` the command's whole process group is killed."""
    with tempfile.TemporaryFile(dir=workdir) as out:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        except OSError as exc:
            return None, None, f"could not run {argv[0]}: {_oserror(exc)}"
        problem = ""
        try:
            code: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                pass  # stuck in the kernel: leave it; what it wrote so far is kept
            code, problem = None, f"killed after {timeout:.1f}s (deadline)"
        out.seek(0)
        data = out.read(LOG_LIMIT + 1)
    if len(data) > LOG_LIMIT:
        data = data[:LOG_LIMIT]
        problem = problem or f"output cut at {LOG_LIMIT} bytes"
    if code and not problem:
        problem = f"exit status {code}"
    return data, code, problem


# what a part holds -------------------------------------------------------------------------------
def node_pid(state_dir: str) -> int | None:
    """The running node's pid (from the lock it holds), None when no node runs."""
    from bus.paths import NodePaths, StateDirError

    paths = NodePaths(state_dir)
    try:
        if not paths.node_running():
            return None
        with open(paths.lock_file) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError, StateDirError):
        return None
    return pid if os.path.exists(f"/proc/{pid}") else None


def node_config_path(state_dir: str) -> str | None:
    """The configuration file the running node was started with (`--config` on its command
    line): for when the node does not answer."""
    pid = node_pid(state_dir)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return os.path.join(cwd, argv[i + 1])
        if arg.startswith("--config="):
            return os.path.join(cwd, arg.removeprefix("--config="))
    return None


def _output_files(pid: int) -> list[str]:
    """The regular files the process writes its stdout/stderr to."""
    found: list[str] = []
    for fd in (2, 1):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if stat.S_ISREG(os.stat(f"/proc/{pid}/fd/{fd}").st_mode) and target not in found:
                found.append(target.removesuffix(" (deleted)"))
        except OSError:
            continue
    return found


def _unit(pid: int | None) -> str | None:
    """The systemd unit the node runs in, from its cgroup."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        last = line.rsplit("/", 1)[-1]
        if last.endswith(".service"):
            return last
    return None


def _collect_logs(part: Part, state_dir: str, pid: int | None) -> None:
    found = _output_files(pid) if pid else []
    if not found:  # the lab writes a node's output to <server dir>/node.log, beside its state
        beside = os.path.join(os.path.dirname(state_dir.rstrip("/")), "node.log")
        if os.path.isfile(beside):
            found = [beside]
    for path in found:
        part.add_file(f"logs/{safe_name(os.path.basename(path))}", path)
    if not found:
        why = (
            "the node's output is not a file (a terminal or the journal)"
            if pid
            else "no node runs and no log file of it is known"
        )
        part.note("logs/node.log", "skipped", why)
    log_dir = os.path.join(state_dir, "log")
    if os.path.isdir(log_dir):
        for name in sorted(os.listdir(log_dir)):
            path = os.path.join(log_dir, name)
            if os.path.isfile(path) and not os.path.islink(path):
                part.add_file(f"logs/log/{safe_name(name)}", path)
    _collect_journal(part, pid)


def _collect_journal(part: Part, pid: int | None) -> None:
    if shutil.which("journalctl") is None:
        part.note("logs/journal.txt", "skipped", "journalctl is not installed (no systemd)")
        return
    unit = _unit(pid)
    if unit is None and pid is None and shutil.which("systemctl"):
        out, _, _ = run_command(
            ["systemctl", "show", "-p", "LoadState", "--value", DEFAULT_UNIT],
            min(COMMAND_TIMEOUT, max(0.1, part.left())),
            part.workdir,
        )
        if out is not None and out.strip() == b"loaded":
            unit = DEFAULT_UNIT
    if unit is None:
        why = (
            "the node does not run under a systemd unit"
            if pid
            else f"no node runs and no {DEFAULT_UNIT} is installed: no journal to read"
        )
        part.note("logs/journal.txt", "skipped", why)
        return
    argv = ["journalctl", "-u", unit, "--no-pager", "-o", "short-iso-precise", "-n"]
    part.run(f"logs/journal-{safe_name(unit)}.txt", [*argv, str(JOURNAL_LINES)], JOURNAL_TIMEOUT)


def _collect_config(
    part: Part, config_path: str | None, running_text: str | None, names: frozenset[str]
) -> dict[str, Any]:
    """The configuration, redacted; what the manifest says about it."""
    file_text: str | None = None
    info: dict[str, Any] = {"path": config_path}
    if config_path:
        try:
            with open(config_path, "rb") as f:
                file_text = f.read().decode("utf-8", "replace")
        except OSError as exc:
            part.note("config", "error", f"{config_path}: {_oserror(exc)}")
    if file_text is None and running_text is None:
        part.note("config", "skipped", "no configuration")
        return {"found": False, "note": "no configuration"}
    name = safe_name(os.path.basename(config_path or "")) or "cluster.toml"
    texts: list[tuple[str, str]] = []
    if file_text is not None:
        texts.append((f"config/{name}", file_text))
    if running_text is not None and running_text != file_text:
        texts.append(("config/running.toml", running_text))
        if file_text is not None:
            info["note"] = "the node runs an earlier text than the file (pushed since it started)"
    for member, text in texts:
        redacted, why = redact_config(text, names)
        if redacted is None:
            part.note(member, "skipped", why)
        else:
            part.add_text(member, redacted)
            part.note(member, "ok", why, bytes=len(redacted.encode()))
    info["found"] = True
    source_text = running_text if running_text is not None else file_text or ""
    info.update(config_summary(source_text))
    key = _key_file(source_text, config_path)
    if key is not None:
        part.add_json("config/key-file.json", key)
        part.note("config/key-file.json", "ok", "the cluster key file's path and permissions only")
    return info


def config_summary(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return {"valid_toml": False, "error": str(exc)}
    cluster = data.get("cluster") if isinstance(data.get("cluster"), dict) else {}
    servers = data.get("server") if isinstance(data.get("server"), list) else []
    return {
        "valid_toml": True,
        "cluster": cluster.get("name") if isinstance(cluster.get("name"), str) else None,
        "servers": [s["name"] for s in servers if isinstance(s, dict) and "name" in s],
    }


def _key_file(text: str, config_path: str | None) -> dict[str, Any] | None:
    """Where the cluster key is and who may read it — never what it says."""
    try:
        cluster = tomllib.loads(text).get("cluster")
    except tomllib.TOMLDecodeError:
        return None
    written = cluster.get("key_file") if isinstance(cluster, dict) else None
    if not isinstance(written, str):
        return None
    base = os.path.dirname(os.path.abspath(config_path)) if config_path else ""
    path = os.path.join(base, os.path.expanduser(written))
    info: dict[str, Any] = {"key_file": written, "path": path}
    try:
        st = os.stat(path)
    except OSError as exc:
        return {**info, "exists": False, "error": _oserror(exc)}
    return {**info, "exists": True, **_stat_fields(st)}


def _stat_fields(st: os.stat_result) -> dict[str, Any]:
    return {
        "type": _kind(st.st_mode),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
        "mtime": _iso(st.st_mtime),
    }


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "dir"),
        (stat.S_ISREG, "file"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISCHR, "char"),
    ):
        if test(mode):
            return name
    return "other"


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="milliseconds")


def _walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything below `root`, depth first in name order, symlinks
    not followed."""
    stack: list[Iterator[str]] = [iter(_names(root, ""))]
    while stack:
        sub = next(stack[-1], None)
        if sub is None:
            stack.pop()
            continue
        try:
            st = os.lstat(os.path.join(root, sub))
        except OSError:
            continue
        yield sub, st
        if stat.S_ISDIR(st.st_mode):
            stack.append(iter(_names(root, sub)))


def _names(root: str, rel: str) -> list[str]:
    try:
        return [f"{rel}/{n}" if rel else n for n in sorted(os.listdir(os.path.join(root, rel)))]
    except OSError:
        return []


def _collect_state(part: Part, state_dir: str, never: set[str]) -> None:
    if not os.path.isdir(state_dir):
        part.note("state", "skipped", f"the state directory {state_dir} does not exist")
        return
    entries: list[dict[str, Any]] = []
    lines: list[str] = []
    copy: list[tuple[str, str]] = []
    cut = False
    for rel, st in _walk(state_dir):
        if len(entries) >= TREE_LIMIT:
            cut = True
            break
        entry = {"path": rel, **_stat_fields(st)}
        full = os.path.join(state_dir, rel)
        if stat.S_ISLNK(st.st_mode):
            with contextlib.suppress(OSError):
                entry["target"] = os.readlink(full)
        entries.append(entry)
        arrow = f" -> {entry['target']}" if "target" in entry else ""
        lines.append(
            f"{stat.filemode(st.st_mode)} {st.st_uid:>5}:{st.st_gid:<5} {st.st_size:>10} "
            f"{entry['mtime']}  {rel}{arrow}"
        )
        if stat.S_ISREG(st.st_mode) and _copyable(rel, full, never):
            copy.append((rel, full))
    header = f"# {state_dir}: {len(entries)} entries" + (f" (cut at {TREE_LIMIT})" if cut else "")
    part.add_text("state/tree.txt", header + "\n" + "\n".join(lines) + "\n")
    part.add_json("state/tree.json", {"root": state_dir, "cut": cut, "entries": entries})
    part.note("state/tree.txt", "ok", f"{len(entries)} entries", source=state_dir)
    for rel, full in copy:
        if part.left() <= 0:
            part.note(f"state/files/{rel}", "skipped", "the part's deadline was reached")
            continue
        limit = LOG_LIMIT if rel.endswith(".log") or ".log." in rel else STATE_FILE_LIMIT
        part.add_file(f"state/files/{_safe_rel(rel)}", full, limit=limit)


def _copyable(rel: str, full: str, never: set[str]) -> bool:
    top = rel.split("/", 1)[0]
    name = rel.rsplit("/", 1)[-1]
    low = name.lower()
    if (top in SKIP_DIRS and "/" in rel) or os.path.realpath(full) in never:
        return False
    if any(word in low for word in NEVER_COPY_WORDS):
        return False
    log_like = low.endswith(".log") or re.search(r"\.log\.\d+$", low) is not None
    return log_like or name in STATE_NAMES or low.endswith(STATE_SUFFIXES)


def _collect_alerts(part: Part, state_dir: str) -> None:
    directory = os.path.join(state_dir, "alerts")
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith("alerts.log"))
    except OSError:
        names = []
    if not names:
        part.note("alerts/alerts.log", "skipped", f"no alert log in {directory}")
        return
    for name in names:
        part.add_file(f"alerts/{safe_name(name)}", os.path.join(directory, name))


def _collect_status(part: Part, state_dir: str, pid: int | None) -> None:
    if pid is None:
        part.note("status.json", "skipped", "no node runs with this state directory")
        return
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "HAVEN_STATE_DIR": state_dir}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([source, *[p for p in paths if p != source]])
    argv = [sys.executable, "-m", "cli.main", "status", "--json", "--state-dir", state_dir]
    part.run("status.json", argv, STATUS_TIMEOUT, env=env)


def _collect_system(part: Part, pid: int | None) -> None:
    part.run("system/uname.txt", ["uname", "-a"])
    part.run("system/uptime.txt", ["uptime"])
    part.run("system/date.txt", ["date", "--rfc-3339=ns"])
    part.run("system/ip-addr.txt", ["ip", "-d", "addr"])
    part.run("system/ip-route.txt", ["ip", "route"])
    part.run("system/ip6-route.txt", ["ip", "-6", "route"])
    part.add_file("system/mounts.txt", "/proc/mounts", source="/proc/mounts")
    if pid is None:
        part.note("system/ps.txt", "skipped", "no node runs: no process tree to show")
    else:
        from supervisor.reaper import descendants

        pids = ",".join(str(p) for p in [pid, *descendants(pid)])
        fields = "pid,ppid,pgid,sid,stat,lstart,etime,rss,vsz,args"
        part.run("system/ps.txt", ["ps", "-ww", "-o", fields, "--forest", "-p", pids])
    part.run("system/nft-ruleset.txt", ["nft", "list", "ruleset"])


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[\x00-\x1f/]", "_", name).strip() or "_"
    return "_" + cleaned if cleaned in (".", "..") else cleaned


def _safe_rel(rel: str) -> str:
    return "/".join(safe_name(p) for p in rel.split("/"))


def build_part(
    out: str,
    *,
    server: str,
    state_dir: str,
    config_path: str | None = None,
    running_config: str | None = None,
    timeout: float = PART_TIMEOUT,
    via: str = "local",
) -> dict[str, Any]:
    """Write this server's part to `out` (a tar.gz) and return what `part.json` says."""
    started = time.monotonic()
    deadline = started + max(1.0, timeout)
    state_dir = os.path.abspath(state_dir)
    pid = node_pid(state_dir)
    names = secret_names()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "server": server,
        "host": socket.gethostname(),
        "via": via,
        "time": _iso(time.time()),
        "state_dir": state_dir,
        "node": {"running": pid is not None, "pid": pid},
    }
    workdir = os.path.dirname(os.path.abspath(out))
    with tarfile.open(out, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        part = Part(tar, deadline, workdir)
        steps = (
            ("config", lambda: manifest.update(config=_collect_config(
                part, config_path, running_config, names))),
            ("logs", lambda: _collect_logs(part, state_dir, pid)),
            ("alerts", lambda: _collect_alerts(part, state_dir)),
            ("state", lambda: _collect_state(part, state_dir, _never(config_path, running_config))),
            ("status", lambda: _collect_status(part, state_dir, pid)),
            ("system", lambda: _collect_system(part, pid)),
        )  # fmt: skip
        for what, step in steps:
            if part.left() <= 0:
                part.note(what, "skipped", "the part's deadline was reached")
                continue
            try:
                step()
            except Exception as exc:  # one broken step must not lose the others
                part.note(what, "error", f"{type(exc).__name__}: {exc}")
        manifest["items"] = part.items
        manifest["seconds"] = round(time.monotonic() - started, 3)
        part.add_json("part.json", manifest)
    return manifest


def _never(config_path: str | None, running_text: str | None) -> set[str]:
    """Files never copied whatever their names: the configuration and the cluster key."""
    never: set[str] = set()
    if config_path:
        never.add(os.path.realpath(config_path))
    for text in (running_text,) if running_text else ():
        key = _key_file(text, config_path)
        if key:
            never.add(os.path.realpath(key["path"]))
    if config_path:
        with contextlib.suppress(OSError):
            with open(config_path, encoding="utf-8", errors="replace") as f:
                key = _key_file(f.read(), config_path)
            if key:
                never.add(os.path.realpath(key["path"]))
    return never


def file_digest(path: str) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


# `python -m supervisor.logbundle`: what a node runs to build its part for a remote collector ------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m supervisor.logbundle")
    p.add_argument("--out", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--config")
    p.add_argument("--running-config", help="a file holding the text the node runs (removed)")
    p.add_argument("--timeout", type=float, default=PART_TIMEOUT)
    args = p.parse_args(argv)
    running = None
    if args.running_config:
        with contextlib.suppress(OSError):
            with open(args.running_config, encoding="utf-8", errors="replace") as f:
                running = f.read()
            os.unlink(args.running_config)
    tmp = args.out + ".tmp"
    result: dict[str, Any]
    try:
        build_part(
            tmp,
            server=args.server,
            state_dir=args.state_dir,
            config_path=args.config,
            running_config=running,
            timeout=args.timeout,
            via="node",
        )
        size, digest = file_digest(tmp)
        os.replace(tmp, args.out)
        result = {"size": size, "sha256": digest}
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        result = {"error": f"{type(exc).__name__}: {exc}"}
    done = args.out + ".json"
    with open(done + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(done + ".tmp", done)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
