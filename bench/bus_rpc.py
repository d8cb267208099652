"""Request/reply round trip on the bus: blocking `bus.rpc.Client` → asyncio `bus.rpc.Service`.

A Service serving one `echo` handler runs in a forked process (its own zmq.asyncio context, as an
actor's service does); this process sends N sequential requests with a ~100-byte body and times
each round trip (envelope encode + DEALER → ROUTER → handler → reply → decode). Every CLI command
and every actor-to-actor request pays this, so it bounds how chatty the actors may be. Both ipc://
(what a node uses) and tcp://127.0.0.1 (for comparison) are measured.

Figures per run: median and p99 round trip, requests/s (N / wall time); the table gives their
median, p10/p90 and min/max over runs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import time

import common
import zmq
import zmq.asyncio

from bus.rpc import Client, Service


def _serve(endpoint: str) -> None:
    common.default_sigterm()

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        service = Service(ctx, endpoint, "bench/echo", {"echo": lambda body: body})
        try:
            await service.serve()
        finally:
            service.close()
            ctx.term()

    asyncio.run(main())  # ends by SIGTERM (default action) from the parent


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(transport: str, requests: int, warmup: int) -> tuple[float, float, float]:
    with common.temp_dir() as d:
        if transport == "ipc":
            endpoint = f"ipc://{d}/echo"
        else:
            endpoint = f"tcp://127.0.0.1:{_free_tcp_port()}"
        proc = multiprocessing.get_context("fork").Process(target=_serve, args=(endpoint,))
        proc.start()
        try:
            ctx = zmq.Context()
            client = Client(endpoint, "bench/client", ctx)
            try:
                body = {"data": "x" * 80}
                client.request("echo", body, timeout=10.0)  # the service is up
                for _ in range(warmup):
                    client.request("echo", body)
                times = []
                start = time.perf_counter()
                for _ in range(requests):
                    t0 = time.perf_counter_ns()
                    client.request("echo", body)
                    times.append((time.perf_counter_ns() - t0) / 1000.0)
                elapsed = time.perf_counter() - start
            finally:
                client.close()
                ctx.term()
        finally:
            assert proc.pid is not None
            common.stop_pid(proc.pid, timeout=3.0)
    return common.percentile(times, 50), common.percentile(times, 99), requests / elapsed


def main() -> None:
    args = common.parse_args(
        __doc__,
        runs=5,
        requests=(int, 5000, "sequential requests per run"),
        warmup=(int, 500, "untimed requests before each run"),
    )
    report = common.Report(
        "bus_rpc", {"runs": args.runs, "requests": args.requests, "cpus": os.cpu_count()}
    )
    for transport in ("ipc", "tcp"):
        results = [one_run(transport, args.requests, args.warmup) for _ in range(args.runs)]
        report.add(f"{transport} round trip median", "µs", [r[0] for r in results])
        report.add(f"{transport} round trip p99", "µs", [r[1] for r in results])
        report.add(f"{transport} requests/s", "1/s", [r[2] for r in results])
    report.emit(args.json)


if __name__ == "__main__":
    main()
