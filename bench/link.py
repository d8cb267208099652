"""The inter-server link between two real nodes: events per second and remote request latency.

Issue #3's benchmark "messages per second on the link". Two real nodes (`haven node run --lab`)
on 127.0.0.11 and .12 with one LAN heartbeat and the link (CURVE, TCP); this process plays an
actor on node1 and a subscriber on node2.

1. Events: a PUB socket on node1's bus offers `alert.info` envelopes (a ~100-byte body) at a
   fixed rate for --seconds (in bursts of 100, paced by the clock), for each rate of --rates;
   node2's bus is read by a SUB socket. Figures per offered rate: events/s received on node2
   (received / the sending time) and the share lost. Loss is reported, not hidden: the link's
   actor reads node1's bus at Python speed and a bus or link queue that is full drops rather
   than block (by design: a slow peer must never stall the local bus).
2. Requests: --requests sequential `call` requests to node1's link for node2's supervisor's
   `ping` (node1 link → TCP → node2 link → node2 supervisor and back). Figures: median and p99
   round trip in µs, requests/s.
"""

from __future__ import annotations

import os
import random
import sys
import time

import common
import zmq

sys.path.insert(0, os.path.join(common.REPO, "tests"))
import harness  # noqa: E402

from bus import envelope  # noqa: E402
from bus.envelope import EnvelopeError  # noqa: E402
from bus.rpc import Client  # noqa: E402
from config.clusterkey import generate_cluster_key  # noqa: E402

SERVERS = ("node1", "node2")
BURST = 100


def start(d: str) -> dict[str, harness.NodeProcess]:
    key = os.path.join(d, "cluster.key")
    generate_cluster_key(key)
    port = random.randint(30000, 39999)
    text = harness.node_config(
        [],
        servers=SERVERS,
        cluster="bench",
        subnet="127.0.0",
        heartbeats=({"name": "lan", "type": "lanhb", "network": "public", "port": port + 1},),
        key_file=key,
        link_port=port,
    )
    nodes = {s: harness.NodeProcess(os.path.join(d, s), text, server=s) for s in SERVERS}
    for node in nodes.values():
        node.wait_running(30)
    deadline = time.monotonic() + 30
    while not nodes["node1"].request("peers", service="link")["peers"]["node2"]["connected"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the link did not connect within 30 s")
        time.sleep(0.05)
    return nodes


def events(nodes: dict[str, harness.NodeProcess], rate: int, seconds: float) -> tuple[float, float]:
    ctx = zmq.Context()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    pub.linger = sub.linger = 0
    pub.sndhwm = 100000
    try:
        pub.connect(nodes["node1"].paths.publish_endpoint)
        sub.connect(nodes["node2"].paths.subscribe_endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"alert.info")
        body = {"module": "bench", "message": "x" * 80}
        # warm up until node2 receives one (slow joiners on both buses)
        deadline = time.monotonic() + 10
        while not sub.poll(50):
            pub.send_multipart(envelope.to_multipart(envelope.make("alert.info", "node1/w", 0)))
            if time.monotonic() > deadline:
                raise RuntimeError("no event crossed the link within 10 s")
        while sub.poll(200):
            sub.recv_multipart()
        count = int(rate * seconds)
        received = 0
        start = time.perf_counter()
        for i in range(count):
            env = envelope.make("alert.info", "node1/bench", i + 1, body)
            pub.send_multipart(envelope.to_multipart(env))
            if i % BURST == BURST - 1:
                while sub.poll(0):  # keep up with the receiving side meanwhile
                    received += _ours(sub.recv_multipart())
                pause = start + (i + 1) / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
        while sub.poll(1000):
            received += _ours(sub.recv_multipart())
        return received / seconds, 1 - received / count
    finally:
        pub.close()
        sub.close()
        ctx.term()


def _ours(frames: list[bytes]) -> int:
    try:
        return int(envelope.decode_multipart(frames).sender == "node1/bench")
    except EnvelopeError:
        return 0


def requests(nodes: dict[str, harness.NodeProcess], count: int) -> tuple[float, float, float]:
    endpoint = nodes["node1"].paths.service_endpoint("link")
    body = {"server": "node2", "service": "node", "method": "ping", "timeout": 5.0}
    with Client(endpoint, "bench/link") as client:
        for _ in range(50):
            client.request("call", body)
        times = []
        start_all = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter_ns()
            client.request("call", body, timeout=10.0)
            times.append((time.perf_counter_ns() - t0) / 1000.0)
        elapsed = time.perf_counter() - start_all
    return common.percentile(times, 50), common.percentile(times, 99), count / elapsed


def main() -> None:
    args = common.parse_args(
        __doc__,
        runs=3,
        rates=(str, "2000,5000,10000,20000", "offered event rates (events/s), comma-separated"),
        seconds=(float, 3.0, "seconds of sending per rate"),
        requests=(int, 1000, "sequential remote requests per run"),
    )
    rates = [int(r) for r in args.rates.split(",")]
    params = {"runs": args.runs, "seconds": args.seconds, "requests": args.requests}
    report = common.Report("link", {**params, "cpus": os.cpu_count()})
    received: dict[int, list[float]] = {r: [] for r in rates}
    lost: dict[int, list[float]] = {r: [] for r in rates}
    medians, p99s, per_second = [], [], []
    for _ in range(args.runs):
        with common.temp_dir("hvl-") as d:
            nodes = start(d)
            try:
                for rate in rates:
                    got, loss = events(nodes, rate, args.seconds)
                    received[rate].append(got)
                    lost[rate].append(100 * loss)
                median, p99, rps = requests(nodes, args.requests)
                medians.append(median)
                p99s.append(p99)
                per_second.append(rps)
            finally:
                for node in nodes.values():
                    node.terminate()
                    node.kill_all()
    for rate in rates:
        report.add(f"offered {rate}/s: received/s on node2", "1/s", received[rate])
        report.add(f"offered {rate}/s: lost", "%", lost[rate])
    report.add("remote request round trip median", "µs", medians)
    report.add("remote request round trip p99", "µs", p99s)
    report.add("remote requests/s (sequential)", "1/s", per_second)
    report.emit(args.json)


if __name__ == "__main__":
    main()
