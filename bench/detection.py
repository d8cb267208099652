"""Failure detection between two real servers: kill → server_down, false alarms, idle CPU.

Issue #3's benchmark. Two real nodes (`haven node run --lab`, each in its own session, product
default node supervision: actor beats 0.5 s / 3 s) form a cluster on this machine: servers node1
and node2 at 127.0.0.11 and .12, two LAN heartbeat paths (`lanhb` and `lankhb`, authenticated with
a generated cluster key) on UDP ports that differ per cluster (from --base-port), no NP resource.
Two timing profiles: `default` (beat every 0.5 s, timeout 2 s) and `fast` (40 ms / 200 ms).

1. Detection time. A fresh cluster per kill; once node1's status shows node2 online with both
   paths normal, a SUB socket on node1's bus listens to `alert.`; after a random pause within one
   beat interval (so that the kill falls at a random point of node2's beat cycle: the cluster
   settles at the same point of it every time), t0 = time.monotonic() just before SIGKILL of
   every process of node2 (its process group, then any straggler of its session: the machine
   died); t1 = arrival of node1's `alert.error` with event `server_down` for node2. Detection is
   bounded below by the timeout minus one beat interval (the last beat may have come up to an
   interval before the kill) and above by the timeout plus a check period (timeout/10) and the
   membership actor's reaction; "overhead" is detection minus the timeout.
2. False `server_down` alerts under CPU saturation. A cluster per profile, settled, then as many
   busy loops (`python -c "while True: pass"`) as cores for --load-seconds; `alert.` is counted
   on both nodes (printed, not asserted: it must be 0). The heartbeat actors ask for SCHED_RR;
   whether they got it is printed.
3. Idle CPU of one node: on the same cluster before the load, utime+stime of every process of
   node1's session over --idle-seconds, in 2 s windows, as % of one core.

`--runs N` is the number of kills per profile; parts 2 and 3 run once per profile.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import common
import zmq

sys.path.insert(0, os.path.join(common.REPO, "tests"))
import harness  # noqa: E402

from config.clusterkey import generate_cluster_key  # noqa: E402
from config.defaults import TIMING_PROFILES  # noqa: E402

SERVERS = ("node1", "node2")
NODE = {"beat_interval": "500ms", "beat_timeout": "3s"}  # the product's defaults, not the tests'
STOP_TIMEOUT = 15.0
IDLE_WINDOW = 2.0


@contextlib.contextmanager
def cluster(profile: str, port: int) -> Iterator[dict[str, harness.NodeProcess]]:
    """node1 and node2 running `profile`, heartbeats on UDP `port` and `port + 1`. On the way out
    every node gets SIGTERM, then its whole session SIGKILL, and the directory is removed."""
    with common.temp_dir("hvd-") as d:
        key = os.path.join(d, "cluster.key")
        generate_cluster_key(key)
        heartbeats = (
            {"name": "lan1", "type": "lanhb", "network": "public", "port": port},
            {"name": "lan2", "type": "lankhb", "network": "public", "port": port + 1},
        )
        text = harness.node_config(
            [],
            node=NODE,
            servers=SERVERS,
            cluster="bench",
            subnet="127.0.0",
            heartbeats=heartbeats,
            timing={"profile": profile},
            key_file=key,
        )
        nodes: dict[str, harness.NodeProcess] = {}
        try:
            for server in SERVERS:
                nodes[server] = harness.NodeProcess(os.path.join(d, server), text, server=server)
            yield nodes
        finally:
            stop(list(nodes.values()))


def stop(nodes: list[harness.NodeProcess]) -> None:
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  (node {node.proc.pid} did not stop in time; killed)", file=sys.stderr)
        finally:
            node.kill_all()  # whatever is left of its session


def settled(node: harness.NodeProcess, peer: str, timeout: float = 30.0) -> None:
    """Until `node` sees `peer` online with every heartbeat path normal (bounded)."""

    def ok(status: dict) -> bool:
        return any(
            s["name"] == peer
            and s["state"] == "online"
            and s["heartbeats"] == {"lan1": "normal", "lan2": "normal"}
            for s in status["servers"]
        )

    node.wait_status(ok, timeout)


def kill_machine(node: harness.NodeProcess) -> None:
    """SIGKILL every process of the node at once (its process group), then any straggler."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.sid, signal.SIGKILL)
    for pid in harness.session_pids(node.sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def is_down(env: common.Envelope, server: str) -> bool:
    return (
        env.topic == "alert.error"
        and env.body.get("event") == "server_down"
        and env.body.get("server") == server
    )


def one_kill(profile: str, port: int) -> float:
    """Detection time in ms of node2's death by node1, on a fresh cluster."""
    interval, timeout = TIMING_PROFILES[profile]
    with cluster(profile, port) as nodes:
        n1, n2 = nodes["node1"], nodes["node2"]
        settled(n1, "node2")
        ctx = zmq.Context()
        sub = common.subscriber(ctx, n1.paths, "alert.")
        try:
            time.sleep(0.3)  # the subscription must reach the proxy first (slow joiner)
            # The kill must fall at a random point of node2's beat cycle: the cluster settles
            # at the same point of it every time, which would bias detection.
            time.sleep(random.uniform(0.0, interval))
            while sub.poll(0, zmq.POLLIN):  # drain: t1 must not wait behind old messages
                sub.recv_multipart()
            t0 = time.monotonic()
            kill_machine(n2)
            deadline = t0 + timeout + 15.0
            while True:
                env = common.receive(sub, timeout=max(0.0, deadline - time.monotonic()))
                if env is None:
                    raise RuntimeError(f"{profile}: no server_down within {timeout + 15}s")
                if is_down(env, "node2"):
                    return (time.monotonic() - t0) * 1000.0
        finally:
            sub.close()
            ctx.term()


def realtime_granted(node: harness.NodeProcess) -> list[bool]:
    """`realtime` of each heartbeat actor's "heartbeat started" log line."""
    got = []
    with open(node.log_path, errors="replace") as f:
        for line in f:
            if '"heartbeat started"' in line:
                with contextlib.suppress(json.JSONDecodeError):
                    got.append(bool(json.loads(line).get("realtime")))
    return got


def idle_and_load(
    profile: str, port: int, idle_seconds: float, load_seconds: float, hogs: int
) -> tuple[float, list[float], Counter[str], Counter[str], list[bool], list[bool]]:
    """Idle CPU % of node1 over the whole idle period and per window; alert events
    (server:event) while idle and under load; whether each node still runs at the end; the
    heartbeat actors' real-time grants."""
    with cluster(profile, port) as nodes:
        for a, b in (("node1", "node2"), ("node2", "node1")):
            settled(nodes[a], b)
        ctx = zmq.Context()
        subs = {s: common.subscriber(ctx, n.paths, "alert.") for s, n in nodes.items()}
        busy: list[subprocess.Popen[bytes]] = []
        try:
            time.sleep(0.3)  # slow joiner
            for sub in subs.values():
                while sub.poll(0, zmq.POLLIN):
                    sub.recv_multipart()
            idle_alerts, load_alerts = Counter[str](), Counter[str]()
            cpu = []
            sid = nodes["node1"].sid
            start = time.monotonic()
            first = after = common.session_cpu_ticks(sid)
            for i in range(max(1, round(idle_seconds / IDLE_WINDOW))):
                before, t = after, time.monotonic()
                collect(subs, idle_alerts, start + (i + 1) * IDLE_WINDOW)
                after = common.session_cpu_ticks(sid)
                cpu.append(common.cpu_percent(before, after, time.monotonic() - t))
            total = common.cpu_percent(first, after, time.monotonic() - start)
            for _ in range(hogs):
                busy.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
            collect(subs, load_alerts, time.monotonic() + load_seconds)
            running = [n.proc.poll() is None for n in nodes.values()]
            granted = [g for n in nodes.values() for g in realtime_granted(n)]
            return total, cpu, idle_alerts, load_alerts, running, granted
        finally:
            for p in busy:
                p.kill()
            for p in busy:
                p.wait(10)
            for sub in subs.values():
                sub.close()
            ctx.term()


def collect(subs: dict[str, zmq.Socket], seen: Counter[str], until: float) -> None:
    """Count alert events from every node's bus until `until` (monotonic)."""
    poller = zmq.Poller()
    for sub in subs.values():
        poller.register(sub, zmq.POLLIN)
    who = {sub: server for server, sub in subs.items()}
    while (left := until - time.monotonic()) > 0:
        for sock, _ in poller.poll(max(1, int(left * 1000))):
            try:
                env = common.envelope.decode_multipart(sock.recv_multipart())
            except common.EnvelopeError:
                continue
            seen[f"{who[sock]}:{env.body.get('event')}"] += 1


def main() -> None:
    args = common.parse_args(
        __doc__,
        runs=3,
        profiles=(str, "default,fast", "comma-separated timing profiles"),
        load_seconds=(float, 60.0, "seconds of CPU saturation per profile (0: skip parts 2-3)"),
        idle_seconds=(float, 20.0, "seconds of idle CPU measurement per profile"),
        hogs=(int, os.cpu_count() or 2, "busy-loop processes during the load"),
        base_port=(int, 29200, "first UDP port; each cluster takes the next two"),
    )
    profiles = args.profiles.split(",")
    report = common.Report(
        "detection",
        {
            "kills": args.runs,
            "profiles": "/".join(
                f"{p} {TIMING_PROFILES[p][0] * 1000:g}/{TIMING_PROFILES[p][1] * 1000:g}ms"
                for p in profiles
            ),
            "load": f"{args.hogs} busy loops x {args.load_seconds:g}s",
        },
    )
    port = args.base_port
    for profile in profiles:
        timeout_ms = TIMING_PROFILES[profile][1] * 1000.0
        samples = []
        for _ in range(args.runs):
            samples.append(one_kill(profile, port))
            port += 2
        report.add(f"{profile}: kill → server_down", "ms", samples)
        report.add(f"{profile}: detection − timeout", "ms", [s - timeout_ms for s in samples])
    for profile in profiles:
        if args.load_seconds <= 0:
            break
        total, cpu, idle_alerts, load_alerts, running, granted = idle_and_load(
            profile, port, args.idle_seconds, args.load_seconds, args.hogs
        )
        port += 2
        down = sum(n for k, n in load_alerts.items() if k.endswith(":server_down"))
        report.add(f"{profile}: idle CPU of node1, {args.idle_seconds:g}s", "% core", [total])
        report.add(f"{profile}: idle CPU of node1, {IDLE_WINDOW:g}s windows", "% core", cpu)
        report.add(f"{profile}: false server_down under load", "count", [down])
        report.note(
            f"{profile}: alerts idle {dict(idle_alerts) or 'none'}, under load "
            f"{dict(load_alerts) or 'none'}; nodes running at the end: {running}; "
            f"heartbeats granted SCHED_RR: {sum(granted)}/{len(granted)}"
        )
    report.emit(args.json)


if __name__ == "__main__":
    main()
