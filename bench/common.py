"""Shared helpers for the benchmarks: statistics, the command line, output, and real nodes.

Not a benchmark itself. Every helper that starts something also stops it: processes get SIGTERM,
then SIGKILL after a deadline, and temporary directories are removed, also when a benchmark fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import zmq  # noqa: E402

from bus import envelope  # noqa: E402
from bus.envelope import Envelope, EnvelopeError  # noqa: E402
from bus.paths import NodePaths  # noqa: E402
from bus.rpc import Client, RequestError  # noqa: E402

# -- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else math.nan,
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


# -- command line and output ----------------------------------------------------------------------


def parse_args(doc: str | None, runs: int, **extra: tuple[type, Any, str]) -> argparse.Namespace:
    """--runs N, --json, plus `extra` options given as name=(type, default, help).

    Also makes SIGTERM raise SystemExit, so that a benchmark stopped by run_all's deadline still
    runs its `finally` blocks (stops its nodes, removes its directories). Forked helpers restore
    the default with `default_sigterm()`.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    p = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", type=int, default=runs, help=f"repetitions (default {runs})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    for name, (typ, default, help_) in extra.items():
        p.add_argument(
            "--" + name.replace("_", "-"), type=typ, default=default, help=f"{help_} ({default})"
        )
    return p.parse_args()


class Report:
    """Figures of one benchmark: rows of (label, unit, values over runs or samples)."""

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        self.name = name
        self.params = params
        self.rows: list[tuple[str, str, dict[str, float]]] = []
        self.notes: list[str] = []

    def add(self, label: str, unit: str, values: Sequence[float]) -> None:
        self.rows.append((label, unit, summary(list(values))))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def emit(self, as_json: bool) -> None:
        if as_json:
            out = {
                "benchmark": self.name,
                "params": self.params,
                "figures": {f"{label} [{unit}]": s for label, unit, s in self.rows},
                "notes": self.notes,
            }
            print(json.dumps(out, indent=2))
            return
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        print(f"== {self.name} ({params})")
        width = max([len(r[0]) + len(r[1]) + 3 for r in self.rows] + [10])
        print(f"{'':{width}} {'median':>11} {'p10':>11} {'p90':>11} {'min':>11} {'max':>11}  n")
        for label, unit, s in self.rows:
            cells = " ".join(f"{_fmt(s[k]):>11}" for k in ("median", "p10", "p90", "min", "max"))
            print(f"{label + ' [' + unit + ']':{width}} {cells}  {s['n']}")
        for text in self.notes:
            print(f"  note: {text}")
        print()


def default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


# -- processes and temporary directories ----------------------------------------------------------


@contextlib.contextmanager
def temp_dir(prefix: str = "hvb-") -> Iterator[str]:
    """A short directory under /tmp (ipc:// paths must fit in 107 bytes); removed on the way out."""
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; reaps it if it is our child."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:  # not our child: poll for existence
            if not _alive(pid):
                return
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def session_pids(sid: int) -> list[int]:
    """Every live (non-zombie) process whose session id (stat field 6) is `sid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(int(entry))
            if fields and fields[0] != "Z" and int(fields[3]) == sid:
                pids.append(int(entry))
    return pids


def session_cpu_ticks(sid: int) -> dict[int, int]:
    """utime + stime (stat fields 14, 15; clock ticks) of every live process in session `sid`."""
    ticks = {}
    for pid in session_pids(sid):
        fields = proc_stat(pid)
        if fields:
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_percent(before: dict[int, int], after: dict[int, int], seconds: float) -> float:
    """CPU used between two `session_cpu_ticks` samples, as % of one core (a process started in
    between counts from zero; one gone in between is lost)."""
    used = sum(t - before.get(pid, 0) for pid, t in after.items())
    return 100.0 * used / os.sysconf("SC_CLK_TCK") / seconds


def smaps_rollup_kb(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup as {field: kB} ({} if the process is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


# -- a real node ----------------------------------------------------------------------------------

NODE_CODE = """
import json, sys
from actors import logs
from supervisor.node import Node
from supervisor.spec import ChildSpec, SupervisorSettings
cfg = json.loads(sys.argv[1])
logs.configure("json")
settings = SupervisorSettings(server="bench", cluster="bench", lab=True, **cfg["settings"])
specs = [ChildSpec(f"echo{i}", "echo", {"interval": 1.0}) for i in range(cfg["actors"])]
sys.exit(Node(settings, specs).run())
"""


class NodeRunner:
    """A supervisor with `actors` echo actors in its own session, started without a config file.

    Use as a context manager: on exit the node gets SIGTERM, then its whole session SIGKILL after
    `stop_timeout`, and the state directory is removed.
    """

    def __init__(self, actors: int, launcher: str, stop_timeout: float = 15.0, **settings: Any):
        self.actors = actors
        self.launcher = launcher
        self.stop_timeout = stop_timeout
        self.settings = {"beat_interval": 0.1, "beat_timeout": 1.0, **settings}
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir_cm = temp_dir("hvn-")
        self.state_dir = ""

    def __enter__(self) -> NodeRunner:
        self.state_dir = self._dir_cm.__enter__()
        try:
            self.paths = NodePaths(self.state_dir)
            self.log_path = os.path.join(self.state_dir, "node.out")
            cfg = {
                "actors": self.actors,
                "settings": {
                    **self.settings,
                    "state_dir": self.state_dir,
                    "launcher": self.launcher,
                },
            }
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", NODE_CODE, json.dumps(cfg)],
                    cwd=REPO,
                    env={**os.environ, "PYTHONPATH": REPO},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except BaseException:
            self._dir_cm.__exit__(None, None, None)
            raise
        return self

    @property
    def sid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self, timeout: float = 2.0) -> dict[str, Any]:
        with Client(self.paths.service_endpoint("node"), "bench/x") as client:
            return client.request("status", timeout=timeout)

    def wait_running(self, timeout: float = 90.0) -> dict[str, Any]:
        """Until the node says "running" and every actor is running (bounded)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.output()}")
            if os.path.exists(self.paths.service_endpoint("node").removeprefix("ipc://")):
                try:
                    st = self.status(timeout=1.0)
                    last = st["node"]["state"]
                    if last == "running" and all(a["state"] == "running" for a in st["actors"]):
                        return st
                except RequestError as exc:
                    last = exc
            time.sleep(0.05)
        raise RuntimeError(f"node not running within {timeout}s ({last}):\n{self.output()}")

    def output(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc is not None:
                if self.proc.poll() is None:
                    self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    print(f"  (node {self.proc.pid} did not stop in time; killed)", file=sys.stderr)
                for pid in session_pids(self.sid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait(10)
        finally:
            self._dir_cm.__exit__(None, None, None)


def subscriber(ctx: zmq.Context, paths: NodePaths, prefix: str) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.connect(paths.subscribe_endpoint)
    sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    return sock


def receive(sock: zmq.Socket, timeout: float) -> Envelope | None:
    """The next valid envelope within `timeout` seconds, or None (bad frames are skipped)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
            return None
        try:
            return envelope.decode_multipart(sock.recv_multipart())
        except EnvelopeError:
            continue
    return None
