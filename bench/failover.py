"""Failover outage seen by a client: Haven (`default` and `fast` timing) against keepalived (VRRP).

Issue #4's benchmark. Everything runs in the lab (`haven lab`, network namespaces): two servers
node1 and node2 on a public network 198.18.0.0/24 (and an interconnect), a router namespace with
a client, `lab/http_probe.py`, that opens a fresh TCP connection to http://198.18.0.100/ every
10 ms (request timeout 0.2 s) and records, with the monotonic clock (the same in every namespace),
each change of what it gets, and checks every 100 ms that no two MACs answer ARP for the address.

1. Haven, `config/examples/two-node.toml` as it is (`default` profile: heartbeat 0.5 s / 2 s) and
   a copy with `[timing] profile = "fast"` (40 ms / 200 ms): group "web" = floating IP
   198.18.0.100 + an exec resource running an HTTP server that answers "hello from <server>
   (<event>)". One lab per profile, reused by the trials. A trial: the probe gets node1's answer;
   after a random pause within one heartbeat interval (the kill falls at a random point of the
   beat cycle), t0 = time.monotonic() just before `lab.kill("node1")` (SIGKILL of node1's whole
   node, its NICs go down: the machine died); outage = time of the first good answer from node2
   − t0. It includes the fencing wait (node2 waits until node1 has surely stopped itself before
   it takes the address). Then the restore, which is also the planned-move measurement:
   `lab.start("node1")`, wait until both servers' `haven status` show both online, start a new
   probe, `haven group move web --to node1` on node2 (answered when done; repeated every 0.2 s
   while the cluster refuses it, as it does for a moment after node1's return: "not reachable
   over the link", "does not coordinate now: try again"); the planned move's outage is the
   probe's worst outage, from its first failed request to the next good answer (the true gap
   between two good answers is longer by at most one probe period: 10 ms + the failed request).
2. keepalived (VRRPv3, `-P`: VRRP only) in a lab built from a copy of the example without its
   groups (Haven's nodes run but hold no address): one keepalived per server namespace, instance
   on the server's public interface, virtual_ipaddress 198.18.0.100/24, node1 priority 150
   MASTER, node2 100 BACKUP (preemption on), `advert_int 1` and then `advert_int 0.1`; in each
   namespace the same HTTP server (`python -m http.server 80`, "hello from <server>
   (keepalived)"). Kill = SIGKILL of node1's keepalived (VRRP child first: a surviving child
   would send a priority-0 advert, a clean handover) and of its HTTP server, then its public NIC
   down — what `lab.kill` does to a Haven server. Outage as above. Restore: the address node1
   held is removed (a rebooted machine comes up clean), NIC up, HTTP server and keepalived
   started again, wait until node1 holds the address and node2 does not.

Resolution: while the address is dead, each request waits out its timeout (the router still
has the dead server's MAC: the SYN goes nowhere), so the first good answer comes only with the
first request started after the takeover: an outage reads late by 0 .. timeout + 10 ms
(--request-timeout, 0.2 s as in the demo and the tests; 0.05 s gives finer figures for
keepalived's 0.1 s adverts). Raw figures (--json) keep every trial's probe timeline around the
kill.

Every phase of a trial (failover; restore) has a deadline (--deadline, 120 s): past it the trial
is reported as failed and, for Haven, the lab is rebuilt for the next trial. Every process this
script starts is killed and reaped, and every lab taken down, also on failure or SIGTERM.

Usage: .venv/bin/python bench/failover.py [--trials N | --quick] [--json FILE]
                                          [--only haven-default,haven-fast,keepalived-1,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import common

from config import load_config
from config.defaults import TIMING_PROFILES
from lab import Lab
from lab.errors import LabError
from supervisor.children import cluster_fence_wait

EXAMPLE_DIR = os.path.join(common.REPO, "config", "examples")
EXAMPLE = os.path.join(EXAMPLE_DIR, "two-node.toml")
FIP = "198.18.0.100"
FIP_PREFIX = 24
GROUP = "web"
PROBE_TIMEOUT = 0.2  # per request, as in the demo and the tests (--request-timeout)
AFTER = 0.5  # the probe keeps going this long after the first answer from node2
VRID = 51
PRIORITY = {"node1": 150, "node2": 100}
CONFIGS = ("haven-default", "haven-fast", "keepalived-1", "keepalived-0.1")
LABELS = {
    "haven-default": "Haven default (0.5 s / 2 s)",
    "haven-fast": "Haven fast (40 ms / 200 ms)",
    "keepalived-1": "keepalived advert_int 1 s",
    "keepalived-0.1": "keepalived advert_int 0.1 s",
}
ADVERT = {"keepalived-1": 1.0, "keepalived-0.1": 0.1}


class TrialFailed(Exception):
    pass


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- configurations -------------------------------------------------------------------------------


def write_config(directory: str, profile: str, groups: bool) -> str:
    """A copy of the two-node example in `directory` (its scripts/ beside it, as the lab wants),
    with the timing profile `profile` and, unless `groups`, without its [[group]] sections."""
    with open(EXAMPLE) as f:
        text = f.read()
    text, n = re.subn(r'(?m)^profile = "[a-z]+"', f'profile = "{profile}"', text)
    if n != 1:
        raise RuntimeError(f"{EXAMPLE}: no single `profile = ...` line to replace")
    if not groups:
        text = strip_groups(text)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "two-node.toml")
    with open(path, "w") as f:
        f.write(text)
    shutil.copytree(os.path.join(EXAMPLE_DIR, "scripts"), os.path.join(directory, "scripts"))
    return path


def strip_groups(text: str) -> str:
    """The configuration without its [[group]] and [[group.*]] tables."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        header = re.match(r"\s*\[\[?\s*([A-Za-z0-9_.]+)", line)
        if header:
            skipping = header.group(1).split(".")[0] == "group"
        if not skipping:
            out.append(line)
    return "".join(out)


# -- the client -----------------------------------------------------------------------------------


def good(line: dict[str, Any], server: str, after: float = -1.0) -> bool:
    return bool(line.get("ok")) and f"hello from {server}" in line["answer"] and line["t"] > after


class Probe:
    """lab/http_probe.py in the lab's router namespace, for the length of a `with` block."""

    request_timeout = PROBE_TIMEOUT

    def __init__(self, lab: Lab, tmp: str, name: str, deadline: float) -> None:
        router = lab.status()["router"]
        self.out = os.path.join(tmp, f"{name}.jsonl")
        self.stop_file = os.path.join(tmp, f"{name}.stop")
        self.err_path = os.path.join(tmp, f"{name}.err")
        argv = [
            "ip", "netns", "exec", router["namespace"],
            sys.executable, "-m", "lab.http_probe", f"http://{FIP}/",
            "--interface", router["interface"], "--source", router["address"],
            "--out", self.out, "--until-file", self.stop_file,
            "--timeout", str(self.request_timeout), "--deadline", str(deadline + 60),
        ]  # fmt: skip
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=common.REPO, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True,
            )  # fmt: skip

    def lines(self) -> list[dict[str, Any]]:
        out = []
        try:
            with open(self.out) as f:
                for raw in f:
                    with contextlib.suppress(json.JSONDecodeError):
                        out.append(json.loads(raw))
        except FileNotFoundError:
            pass
        return out

    def wait(self, predicate: Callable[[dict[str, Any]], bool], until: float, what: str) -> dict:
        """The first line that satisfies `predicate`, polled until the monotonic time `until`."""
        while True:
            for line in self.lines():
                if "t" in line and predicate(line):
                    return line
            if self.proc.poll() is not None:
                raise TrialFailed(f"the probe ended ({self.stderr()}) before: {what}")
            if time.monotonic() > until:
                last = [x for x in self.lines() if "answer" in x][-3:]
                raise TrialFailed(f"deadline passed before: {what} (last answers {last})")
            time.sleep(0.02)

    def finish(self) -> dict[str, Any]:
        """Stop the probe; its summary."""
        open(self.stop_file, "w").close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self._kill()
        for line in self.lines():
            if "summary" in line:
                return line["summary"]
        raise TrialFailed(f"the probe left no summary ({self.stderr()})")

    def stderr(self) -> str:
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()[-300:].strip() or "no output"
        except OSError:
            return "no output"

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            open(self.stop_file, "w").close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self._kill()


# -- Haven ----------------------------------------------------------------------------------------


def haven_status(lab: Lab, server: str) -> dict[str, Any] | None:
    with contextlib.suppress(LabError, json.JSONDecodeError):
        result = lab.exec(server, ["haven", "status", "--json"], timeout=10)
        if result.returncode == 0:
            return json.loads(result.stdout)
    return None


def wait_status(
    lab: Lab, server: str, predicate: Callable[[dict[str, Any]], bool], until: float, what: str
) -> dict[str, Any]:
    while True:
        st = haven_status(lab, server)
        if st is not None and predicate(st):
            return st
        if time.monotonic() > until:
            raise TrialFailed(f"deadline passed before: {what}")
        time.sleep(0.2)


def web_on(server: str) -> Callable[[dict[str, Any]], bool]:
    def there(st: dict[str, Any]) -> bool:
        g = next((g for g in st.get("groups", []) if g["name"] == GROUP), {})
        return g.get("state") == "online" and g.get("server") == server

    return there


def all_online(st: dict[str, Any]) -> bool:
    return all(s["state"] == "online" for s in st["servers"])


def haven_lab(config: str, directory: str, deadline: float) -> Lab:
    """A lab of `config`, group web online on node1."""
    lab = Lab(directory)
    try:
        lab.up(config)
        wait_status(lab, "node1", web_on("node1"), time.monotonic() + deadline, "web on node1")
    except BaseException:
        down(lab)
        raise
    return lab


def down(lab: Lab) -> None:
    try:
        lab.down()
    except Exception as exc:  # noqa: BLE001 - keep going: report, the next lab has its own dir
        log(f"!! lab down {lab.dir} failed: {exc}; run `haven lab down --dir {lab.dir}`")


def haven_trial(lab: Lab, tmp: str, n: int, interval: float, deadline: float) -> dict[str, Any]:
    """One kill of node1 and the restore (node1 back, group moved home); its figures."""
    r: dict[str, Any] = {"ok": False}
    until = time.monotonic() + deadline
    with Probe(lab, tmp, f"kill{n}", deadline) as probe:
        probe.wait(lambda x: good(x, "node1"), until, "node1 answers before the kill")
        time.sleep(random.uniform(0.0, interval))  # a random point of the beat cycle
        t0 = time.monotonic()
        lab.kill("node1")
        killed = time.monotonic() - t0
        first = probe.wait(lambda x: good(x, "node2", t0), until, "node2 answers after the kill")
        time.sleep(AFTER)  # ARP windows after the takeover: node2's MAC, and no second one
        summary = probe.finish()
        lines = probe.lines()
    r.update(failover_report(first, t0, summary, lines), kill_call=killed)
    r["ok"] = True
    try:
        r.update(haven_restore(lab, tmp, n, deadline))
    except (TrialFailed, LabError, subprocess.SubprocessError) as exc:
        r["restore_error"] = str(exc)
    return r


def failover_report(
    first: dict[str, Any], t0: float, summary: dict[str, Any], lines: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "outage": first["t"] - t0,
        "answer": first["answer"],
        "macs": len(summary["macs"]),
        "double_mac_windows": summary["double_mac_windows"],
        "node1_after_kill": sum(1 for x in lines if good(x, "node1", t0)),
        "errors_seen": sorted({x["error"] for x in lines if x.get("error") and x["t"] > t0}),
        "timeline": timeline(lines, t0),
    }


def timeline(lines: list[dict[str, Any]], t0: float) -> list[tuple[float, str]]:
    """The probe's changes from 1 s before the kill, as (seconds after the kill, what)."""
    out = []
    for x in lines:
        if "t" in x and x["t"] >= t0 - 1.0:
            what = x.get("answer") or x.get("error") or x.get("mac") or x.get("double_mac")
            out.append((round(x["t"] - t0, 4), str(what)))
    return out


def haven_restore(lab: Lab, tmp: str, n: int, deadline: float) -> dict[str, Any]:
    """node1 started again and back online, then `group move web --to node1` under a probe."""
    until = time.monotonic() + deadline
    t = time.monotonic()
    lab.start("node1", timeout=max(1.0, min(30.0, until - time.monotonic())))
    wait_status(lab, "node2", all_online, until, "node2 sees both servers online")
    wait_status(lab, "node1", all_online, until, "node1 sees both servers online")
    rejoin = time.monotonic() - t
    with Probe(lab, tmp, f"move{n}", deadline) as probe:
        probe.wait(lambda x: good(x, "node2"), until, "node2 answers before the move")
        t_move, command, refused = move(lab, "node1", until)
        back = probe.wait(lambda x: good(x, "node1", t_move), until, "node1 answers after move")
        summary = probe.finish()
    wait_status(lab, "node1", web_on("node1"), until, "web online on node1 after the move")
    return {
        "rejoin": rejoin,
        "move": summary["worst_outage"],
        "move_command": command,
        "move_refused": refused,
        "move_answer": back["answer"],
        "move_double_mac_windows": summary["double_mac_windows"],
    }


def move(lab: Lab, to: str, until: float) -> tuple[float, float, dict[str, int]]:
    """`haven group move web --to TO` on node2, again every 0.2 s while it fails (just after a
    server rejoined, the cluster answers "does not coordinate now: try again" or "not reachable
    over the link" for a moment); when the successful command was started, how long it took,
    and the errors before it (text: count)."""
    attempts = 0
    errors: dict[str, int] = {}
    while True:
        attempts += 1
        t = time.monotonic()
        left = max(1.0, until - t)
        argv = ["haven", "group", "move", GROUP, "--to", to, "--quiet", "--timeout", f"{left:.0f}"]
        result = lab.exec("node2", argv, timeout=left + 5)
        if result.returncode == 0:
            return t, time.monotonic() - t, errors
        error = (result.stderr or result.stdout).strip()
        errors[error] = errors.get(error, 0) + 1
        if time.monotonic() > until:
            raise TrialFailed(f"group move failed after {attempts} attempts: {errors}")
        time.sleep(0.2)


def floor(config: str) -> tuple[float, float]:
    """The configuration's heartbeat timeout and fencing wait: node2 cannot take over before
    their sum (detection, then the wait until node1 has surely stood down)."""
    cfg = load_config(config)
    return cfg.timing.heartbeat_timeout, cluster_fence_wait(cfg)


FLOORS: dict[str, tuple[float, float]] = {}


def run_haven(
    name: str, profile: str, trials: int, tmp: str, deadline: float
) -> list[dict[str, Any]]:
    directory = os.path.join(tmp, name)
    config = write_config(os.path.join(directory, "config"), profile, groups=True)
    FLOORS[name] = floor(config)
    interval = TIMING_PROFILES[profile][0]
    results: list[dict[str, Any]] = []
    lab: Lab | None = None
    builds = 0
    try:
        for n in range(trials):
            t = time.monotonic()
            try:
                if lab is None:
                    builds += 1
                    lab = haven_lab(config, os.path.join(directory, f"lab{builds}"), deadline)
                r = haven_trial(lab, directory, n, interval, deadline)
            except (TrialFailed, LabError, subprocess.SubprocessError) as exc:
                r = {"ok": False, "error": str(exc)}
            r["seconds"] = time.monotonic() - t
            results.append(r)
            log(f"{name} trial {n + 1}/{trials}: {describe(r)}")
            if lab is not None and (not r["ok"] or "restore_error" in r):
                down(lab)  # a fresh lab for the next trial
                lab = None
    finally:
        if lab is not None:
            down(lab)
    return results


def describe(r: dict[str, Any]) -> str:
    if not r["ok"]:
        return f"FAILED: {r['error']} ({r['seconds']:.0f}s)"
    text = (
        f"outage {r['outage']:.3f}s ({r['answer']!r}, double-MAC windows {r['double_mac_windows']})"
    )
    if "move" in r:
        text += f"; planned move back {r['move']:.3f}s"
    if "restore_error" in r:
        text += f"; RESTORE FAILED: {r['restore_error']}"
    return text + f" ({r['seconds']:.0f}s)"


# -- keepalived -----------------------------------------------------------------------------------

KEEPALIVED_CONF = """\
global_defs {{
    router_id {server}
    vrrp_version 3
}}

vrrp_instance haven_bench {{
    state {state}
    interface {interface}
    virtual_router_id {vrid}
    priority {priority}
    advert_int {advert}
    virtual_ipaddress {{
        {fip}/{prefix} dev {interface}
    }}
}}
"""


class Keepalived:
    """keepalived (VRRP only) and an HTTP server in one server's namespace."""

    def __init__(
        self, server: str, namespace: str, interface: str, advert: float, tmp: str
    ) -> None:
        self.server = server
        self.ns = namespace
        self.interface = interface
        self.dir = os.path.join(tmp, server)
        self.www = os.path.join(self.dir, "www")
        os.makedirs(self.www, exist_ok=True)
        with open(os.path.join(self.www, "index.html"), "w") as f:
            f.write(f"hello from {server} (keepalived)\n")
        self.conf = os.path.join(self.dir, "keepalived.conf")
        with open(self.conf, "w") as f:
            f.write(
                KEEPALIVED_CONF.format(
                    server=server,
                    state="MASTER" if PRIORITY[server] == max(PRIORITY.values()) else "BACKUP",
                    interface=interface,
                    vrid=VRID,
                    priority=PRIORITY[server],
                    advert=f"{advert:g}",
                    fip=FIP,
                    prefix=FIP_PREFIX,
                )
            )
        self.vrrp_pid_file = os.path.join(self.dir, "vrrp.pid")
        self.keepalived: subprocess.Popen[bytes] | None = None
        self.http: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        for f in ("keepalived.pid", "vrrp.pid", "checkers.pid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.dir, f))
        with open(os.path.join(self.dir, "http.log"), "ab") as out:
            self.http = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, sys.executable, "-m", "http.server", "80",
                 "--bind", "0.0.0.0", "--directory", self.www],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        with open(os.path.join(self.dir, "keepalived.log"), "ab") as out:
            out.write(f"---- start {self.starts} at {time.monotonic():.3f}\n".encode())
            out.flush()
            self.keepalived = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "keepalived", "-n", "-P", "-l", "-D", "-G",
                 "-f", self.conf, "-p", os.path.join(self.dir, "keepalived.pid"),
                 "-r", self.vrrp_pid_file, "-c", os.path.join(self.dir, "checkers.pid")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def vrrp_child(self) -> int | None:
        """The pid of keepalived's VRRP child, if it is alive (and is a keepalived)."""
        try:
            with open(self.vrrp_pid_file) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"keepalived" in f.read():
                    return pid
        except (OSError, ValueError):
            pass
        return None

    def kill(self) -> None:
        """The machine dies: SIGKILL of keepalived (VRRP child first) and the HTTP server, then
        the public NIC goes down."""
        child = self.vrrp_child()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        for proc in (self.keepalived, self.http):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(
            ["ip", "-n", self.ns, "link", "set", self.interface, "down"],
            capture_output=True,
            timeout=10,
        )
        self.reap()

    def reap(self) -> None:
        for proc in (self.keepalived, self.http):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        child = self.vrrp_child()  # not ours to reap (keepalived's), but it must not survive
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        self.keepalived = self.http = None

    def boot(self) -> None:
        """The machine boots clean: the address it held is gone, its NIC comes up."""
        subprocess.run(
            ["ip", "-n", self.ns, "addr", "del", f"{FIP}/{FIP_PREFIX}", "dev", self.interface],
            capture_output=True,
            timeout=10,
        )
        subprocess.run(
            ["ip", "-n", self.ns, "link", "set", self.interface, "up"],
            check=True,
            capture_output=True,
            timeout=10,
        )

    def holds_fip(self) -> bool:
        out = subprocess.run(
            ["ip", "-n", self.ns, "-o", "-4", "addr", "show", "dev", self.interface],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return f" {FIP}/" in out

    def alive(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self.keepalived, self.http))


def wait_master(kas: dict[str, Keepalived], until: float) -> None:
    """Until node1 holds the address and node2 does not (both keepalived running)."""
    while True:
        for k in kas.values():
            if not k.alive():
                raise TrialFailed(f"keepalived or the HTTP server of {k.server} ended")
        if kas["node1"].holds_fip() and not kas["node2"].holds_fip():
            return
        if time.monotonic() > until:
            raise TrialFailed("deadline passed before: node1 is MASTER again")
        time.sleep(0.05)


def keepalived_trial(
    lab: Lab, kas: dict[str, Keepalived], tmp: str, n: int, advert: float, deadline: float
) -> dict[str, Any]:
    until = time.monotonic() + deadline
    with Probe(lab, tmp, f"kill{n}", deadline) as probe:
        probe.wait(lambda x: good(x, "node1"), until, "node1 answers before the kill")
        time.sleep(random.uniform(0.0, advert))  # a random point of the advert cycle
        t0 = time.monotonic()
        kas["node1"].kill()
        killed = time.monotonic() - t0
        first = probe.wait(lambda x: good(x, "node2", t0), until, "node2 answers after the kill")
        time.sleep(AFTER)  # ARP windows after the takeover: node2's MAC, and no second one
        summary = probe.finish()
        lines = probe.lines()
    r = {"ok": True, **failover_report(first, t0, summary, lines), "kill_call": killed}
    until = time.monotonic() + deadline
    t = time.monotonic()
    try:
        kas["node1"].boot()
        kas["node1"].start()
        wait_master(kas, until)
        r["rejoin"] = time.monotonic() - t
    except (TrialFailed, subprocess.SubprocessError) as exc:
        r["restore_error"] = str(exc)
    return r


def reset_pair(kas: dict[str, Keepalived], deadline: float) -> None:
    """Both keepalived and HTTP servers (re)started from clean, node1 MASTER."""
    for k in kas.values():
        k.reap()
        k.boot()
    kas["node1"].start()
    time.sleep(0.2)
    kas["node2"].start()
    wait_master(kas, time.monotonic() + deadline)


def run_keepalived(
    names: list[str], trials: int, tmp: str, deadline: float
) -> dict[str, list[dict[str, Any]]]:
    directory = os.path.join(tmp, "keepalived")
    config = write_config(os.path.join(directory, "config"), "default", groups=False)
    out: dict[str, list[dict[str, Any]]] = {}
    lab = Lab(os.path.join(directory, "lab"))
    try:
        lab.up(config)
        servers = {s["name"]: s for s in lab.status()["servers"]}
        for name in names:
            advert = ADVERT[name]
            kas = {
                server: Keepalived(
                    server,
                    servers[server]["namespace"],
                    servers[server]["interfaces"]["public"],
                    advert,
                    os.path.join(directory, name),
                )
                for server in ("node1", "node2")
            }
            probes = os.path.join(directory, name)  # kas made it
            results: list[dict[str, Any]] = []
            try:
                fresh = True
                for n in range(trials):
                    t = time.monotonic()
                    try:
                        if fresh:
                            reset_pair(kas, deadline)
                            fresh = False
                        r = keepalived_trial(lab, kas, probes, n, advert, deadline)
                    except (TrialFailed, LabError, subprocess.SubprocessError) as exc:
                        r = {"ok": False, "error": str(exc)}
                    r["seconds"] = time.monotonic() - t
                    results.append(r)
                    log(f"{name} trial {n + 1}/{trials}: {describe(r)}")
                    fresh = not r["ok"] or "restore_error" in r
            finally:
                for k in kas.values():
                    k.reap()
                    with contextlib.suppress(subprocess.SubprocessError):
                        k.boot()  # no address left behind for the next configuration
            out[name] = results
    finally:
        down(lab)
    return out


# -- output ---------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return "-" if x != x else f"{x:.3f}"


def table(
    results: dict[str, list[dict[str, Any]]], params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    rows: list[tuple[str, int, int, dict[str, float]]] = []
    figures: dict[str, Any] = {}
    for name in CONFIGS:
        if name not in results:
            continue
        rs = results[name]
        values = [r["outage"] for r in rs if r["ok"]]
        s = common.summary(values)
        figures[name] = {"outage": s, "trials": len(rs), "failed": len(rs) - len(values)}
        rows.append((f"{LABELS[name]}: kill → answer", len(rs), len(rs) - len(values), s))
    for name in ("haven-default", "haven-fast"):
        if name not in results:
            continue
        rs = results[name]
        moves = [r["move"] for r in rs if "move" in r]
        s = common.summary(moves)
        figures[name]["planned_move"] = s
        rows.append((f"{LABELS[name]}: planned move", len(rs), len(rs) - len(moves), s))
    ratios = {}
    for haven, ka in (("haven-default", "keepalived-1"), ("haven-fast", "keepalived-0.1")):
        if haven in figures and ka in figures:
            ratios[f"{haven} / {ka}"] = (
                figures[haven]["outage"]["median"] / figures[ka]["outage"]["median"]
            )
    width = max(len(r[0]) for r in rows) + 4 if rows else 10
    lines = [
        "== failover outage seen by the client, seconds ("
        + ", ".join(f"{k}={v}" for k, v in params.items())
        + ")",
        f"{'':{width}} {'trials':>6} {'failed':>6} {'median':>8} {'p10':>8} {'p90':>8}"
        f" {'min':>8} {'max':>8}",
    ]
    for label, trials, failed, s in rows:
        cells = " ".join(f"{fmt(s[k]):>8}" for k in ("median", "p10", "p90", "min", "max"))
        lines.append(f"{label + ' [s]':{width}} {trials:>6} {failed:>6} {cells}")
    for label, ratio in ratios.items():
        lines.append(f"ratio of medians {label}: {fmt(ratio)}×")
    return "\n".join(lines), {"figures": figures, "ratios": ratios}


def notes(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = []
    for name, rs in results.items():
        ok = [r for r in rs if r["ok"]]
        answers = Counter(r["answer"] for r in ok)
        doubles = sum(r["double_mac_windows"] for r in ok)
        late = sum(1 for r in ok if r["node1_after_kill"])
        macs = Counter(r["macs"] for r in ok)
        text = (
            f"{name}: first answers {dict(answers)}; windows with two MACs for the address "
            f"{doubles}; MACs seen per trial {dict(macs)}; trials where node1 answered after "
            f"the kill {late}"
        )
        moves = [r for r in ok if "move" in r]
        if moves:
            text += (
                f"; move back: answers {dict(Counter(r['move_answer'] for r in moves))}, "
                f"two-MAC windows {sum(r['move_double_mac_windows'] for r in moves)}, "
                f"`group move` command median "
                f"{common.summary([r['move_command'] for r in moves])['median']:.2f}s, "
                f"refused before it succeeded: {refusals(moves)}"
            )
        rejoins = [r["rejoin"] for r in ok if "rejoin" in r]
        if rejoins:
            text += f"; restore (node1 back) median {common.summary(rejoins)['median']:.1f}s"
        if name in FLOORS:
            timeout, fence = FLOORS[name]
            text += (
                f"; heartbeat timeout {timeout:g}s + fencing wait {fence:g}s = "
                f"{timeout + fence:g}s before node2 may take over"
            )
        kills = [r["kill_call"] for r in ok]
        if kills:
            text += f"; the kill call took median {common.summary(kills)['median'] * 1000:.0f} ms"
        out.append(text)
        for i, r in enumerate(rs):
            if not r["ok"]:
                out.append(f"{name} trial {i + 1} FAILED: {r['error']}")
            elif "restore_error" in r:
                out.append(f"{name} trial {i + 1} restore failed: {r['restore_error']}")
    return out


def refusals(moves: list[dict[str, Any]]) -> str:
    """How often a move was refused before it went through, by the error's gist."""
    seen: Counter[str] = Counter()
    for r in moves:
        for error, count in r["move_refused"].items():
            seen[error.removeprefix("haven: ")[:90]] += count
    tried = sum(1 for r in moves if r["move_refused"])
    return f"in {tried} of {len(moves)} trials, {dict(seen) or 'never'}"


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    p = argparse.ArgumentParser(
        description=__doc__.strip().splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trials", type=int, default=20, help="kills per configuration (20)")
    p.add_argument("--quick", action="store_true", help="3 trials per configuration")
    p.add_argument("--json", metavar="FILE", help="also save the raw figures as JSON here")
    p.add_argument(
        "--only", default=",".join(CONFIGS), help=f"configurations ({','.join(CONFIGS)})"
    )
    p.add_argument(
        "--deadline", type=float, default=120.0, help="seconds per phase of a trial (120)"
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=PROBE_TIMEOUT,
        help=f"the probe's timeout per request ({PROBE_TIMEOUT:g}); while the address is dead "
        "each request waits this long, so an outage is measured late by up to this much",
    )
    args = p.parse_args()
    Probe.request_timeout = args.request_timeout
    trials = 3 if args.quick else args.trials
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        p.error(f"unknown configuration(s) {', '.join(unknown)} (known: {', '.join(CONFIGS)})")
    if os.geteuid() != 0:
        p.error("the lab needs root")
    if any(n.startswith("keepalived-") for n in names) and not shutil.which("keepalived"):
        p.error("keepalived is not installed (the baseline needs it)")
    start = time.monotonic()
    results: dict[str, list[dict[str, Any]]] = {}
    with common.temp_dir("hvf-") as tmp:
        for name in names:
            if name.startswith("haven-"):
                profile = name.removeprefix("haven-")
                log(f"{name}: {trials} trials")
                results[name] = run_haven(name, profile, trials, tmp, args.deadline)
        ka = [n for n in names if n.startswith("keepalived-")]
        if ka:
            log(f"{', '.join(ka)}: {trials} trials each")
            results.update(run_keepalived(ka, trials, tmp, args.deadline))
    elapsed = time.monotonic() - start
    keepalived_version = subprocess.run(
        ["keepalived", "--version"], capture_output=True, text=True
    ).stderr.splitlines()[:1]
    params = {
        "trials": trials,
        "probe": f"every 10 ms, request timeout {Probe.request_timeout:g} s",
        "took": f"{elapsed:.0f} s",
    }
    text, figures = table(results, params)
    print(text)
    for line in notes(results):
        print(f"  note: {line}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "benchmark": "failover",
                    "params": {**params, "keepalived": " ".join(keepalived_version)},
                    **figures,
                    "floors": {k: {"timeout": v[0], "fence_wait": v[1]} for k, v in FLOORS.items()},
                    "trials": results,
                },
                f,
                indent=2,
            )
        print(f"raw figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
