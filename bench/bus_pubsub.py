"""Pub/sub throughput through the node's proxy (`bus.proxy.Proxy`, XSUB in / XPUB out on ipc://).

Three processes, as on a node: the proxy (forked; ZeroMQ's C proxy loop in a thread), a publisher
(forked) that builds each message with `bus.envelope.make` + `to_multipart` (~100-byte body) and
sends it as fast as it can on a PUB socket (sndhwm 10000, as `bus.connection` sets), and this
process as the subscriber, decoding every message with `bus.envelope.decode_multipart`.

Slow joiner: the publisher sends warm-up messages until the subscriber has received one; only then
is the timed burst sent. A PUB (and the proxy's XPUB) drops messages at its high-water mark rather
than block, so a subscriber slower than the publisher loses messages: the loss is reported, not
hidden. Figures: messages/s sent, messages/s received (received / time from the go signal to the
last message), messages lost.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time

import common
import zmq

from bus import envelope
from bus.envelope import EnvelopeError
from bus.paths import NodePaths
from bus.proxy import Proxy

DATA, WARM, END = "bench.data", "bench.warm", "bench.end"


def _proxy_main(state_dir: str) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    ctx = zmq.Context()
    proxy = Proxy(ctx, NodePaths(state_dir))
    proxy.start()
    try:
        signal.sigwait({signal.SIGTERM})
    finally:
        proxy.stop()
        ctx.term()


def _publisher_main(state_dir: str, count: int, go, done, conn) -> None:  # noqa: ANN001
    common.default_sigterm()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.sndhwm = 10000
    pub.connect(NodePaths(state_dir).publish_endpoint)
    seq = 0
    deadline = time.monotonic() + 15
    while not go.wait(0.005) and time.monotonic() < deadline:
        seq += 1
        pub.send_multipart(envelope.to_multipart(envelope.make(WARM, "bench/pub", seq)))
    pad = "x" * 80
    start = time.perf_counter()
    for i in range(count):
        seq += 1
        env = envelope.make(DATA, "bench/pub", seq, {"i": i, "pad": pad})
        pub.send_multipart(envelope.to_multipart(env))
    conn.send(time.perf_counter() - start)
    while not done.wait(0.01) and time.monotonic() < deadline + 30:
        seq += 1
        pub.send_multipart(envelope.to_multipart(envelope.make(END, "bench/pub", seq)))
    pub.close()
    ctx.term()


def one_run(count: int) -> tuple[float, float, int, int]:
    mp = multiprocessing.get_context("fork")
    with common.temp_dir() as state_dir:
        paths = NodePaths(state_dir)
        paths.prepare()
        go, done = mp.Event(), mp.Event()
        recv_conn, send_conn = mp.Pipe(duplex=False)
        procs = [
            mp.Process(target=_proxy_main, args=(state_dir,)),
            mp.Process(target=_publisher_main, args=(state_dir, count, go, done, send_conn)),
        ]
        try:
            procs[0].start()
            deadline = time.monotonic() + 10
            while not os.path.exists(paths.subscribe_endpoint[6:]):
                if time.monotonic() > deadline:
                    raise RuntimeError("proxy did not bind its sockets")
                time.sleep(0.01)
            procs[1].start()
            ctx = zmq.Context()
            sub = common.subscriber(ctx, paths, "bench.")
            try:
                received, bad, last = 0, 0, 0.0
                if common.receive(sub, timeout=10.0) is None:
                    raise RuntimeError("no warm-up message within 10s")
                t0 = time.perf_counter()
                go.set()
                end_by = time.monotonic() + 60
                while time.monotonic() < end_by:
                    if not sub.poll(5000, zmq.POLLIN):
                        break  # publisher gone quiet: stop waiting
                    frames = sub.recv_multipart()
                    try:
                        env = envelope.decode_multipart(frames)
                    except EnvelopeError:
                        bad += 1
                        continue
                    if env.topic == DATA:
                        received += 1
                        last = time.perf_counter()
                    elif env.topic == END:
                        break
                done.set()
                send_time = recv_conn.recv() if recv_conn.poll(5) else float("nan")
            finally:
                sub.close()
                ctx.term()
        finally:
            go.set()
            done.set()
            for p in reversed(procs):
                if p.pid is not None:
                    common.stop_pid(p.pid, timeout=3.0)
    rate = received / (last - t0) if received else 0.0
    return count / send_time, rate, count - received, bad


def main() -> None:
    args = common.parse_args(__doc__, runs=5, messages=(int, 100_000, "messages per run"))
    size = len(envelope.encode(envelope.make(DATA, "bench/pub", 1, {"i": 1, "pad": "x" * 80})))
    report = common.Report(
        "bus_pubsub", {"runs": args.runs, "messages": args.messages, "envelope_bytes": size}
    )
    results = [one_run(args.messages) for _ in range(args.runs)]
    report.add("published", "msg/s", [r[0] for r in results])
    report.add("received", "msg/s", [r[1] for r in results])
    report.add("lost", "msgs", [r[2] for r in results])
    report.add("lost", "%", [100.0 * r[2] / args.messages for r in results])
    if any(r[3] for r in results):
        report.note(f"undecodable frames: {[r[3] for r in results]}")
    report.emit(args.json)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
