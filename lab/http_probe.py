"""A client in the lab's router namespace that watches a floating IP's service during a failover.

Two loops, until `--until-file` appears or `--deadline` passes:
- HTTP: every `--interval` (10 ms) a fresh TCP connection and `GET /`; each change of what it
  gets (an answer's text, or failing) is one JSON line in `--out` with the monotonic time (the
  same clock in every namespace, so a caller can compare it with the moment it killed a server).
- ARP: every 100 ms a who-has for the address from the router's interface; the MACs that answer
  within that window are recorded. Two MACs answering one request means two servers hold the
  address at once: the summary's `double_mac_windows` counts such windows (it must stay 0).

Ends with a summary line: {"summary": {...}} with the answers seen, the MACs and the worst
outage (the longest run of failures between two good answers).

Run: python -m lab.http_probe http://198.18.0.100/ --interface eth0 --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from typing import Any, TextIO

from actors.resources import arp

ARP_WINDOW = 0.1


class Recorder:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last: str | None = None
        self.answers: dict[str, int] = {}
        self.failing_since: float | None = None
        self.worst_outage = 0.0
        self.first_good: dict[str, float] = {}
        self.macs: dict[str, float] = {}
        self.double_mac_windows = 0
        self.requests = 0

    def http(self, answer: str | None, error: str | None) -> None:
        now = time.monotonic()
        self.requests += 1
        if answer is not None:
            self.answers[answer] = self.answers.get(answer, 0) + 1
            self.first_good.setdefault(answer, now)
            if self.failing_since is not None and self.answers.get(answer):
                self.worst_outage = max(self.worst_outage, now - self.failing_since)
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = now
        what = answer if answer is not None else f"error: {error}"
        if what != self.last:
            self.last = what
            self.line({"t": now, "ok": answer is not None, "answer": answer, "error": error})

    def arp(self, macs: set[str]) -> None:
        now = time.monotonic()
        for mac in macs:
            if mac not in self.macs:
                self.macs[mac] = now
                self.line({"t": now, "mac": mac})
        if len(macs) > 1:
            self.double_mac_windows += 1
            self.line({"t": now, "double_mac": sorted(macs)})

    def line(self, entry: dict[str, Any]) -> None:
        self.out.write(json.dumps(entry) + "\n")
        self.out.flush()

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answers": self.answers,
            "first_good": self.first_good,
            "worst_outage": round(self.worst_outage, 4),
            "macs": sorted(self.macs),
            "double_mac_windows": self.double_mac_windows,
        }


async def http_once(host: str, port: int, path: str, timeout: float) -> tuple[str | None, str]:
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read()  # HTTP/1.0: the answer ends when the server closes
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/") or b" 200 " not in head.split(b"\r\n")[0]:
            return None, "bad answer: " + head.split(b"\r\n")[0].decode(errors="replace")
        return body.decode(errors="replace").strip(), ""
    except TimeoutError:
        return None, "timeout"
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


async def http_loop(args: argparse.Namespace, rec: Recorder, stop: asyncio.Event) -> None:
    url = args.url.removeprefix("http://")
    hostport, _, path = url.partition("/")
    host, _, port = hostport.partition(":")
    while not stop.is_set():
        started = time.monotonic()
        answer, error = await http_once(host, int(port or 80), "/" + path, args.timeout)
        rec.http(answer, error or None)
        await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - started)))


async def arp_loop(args: argparse.Namespace, rec: Recorder, stop: asyncio.Event) -> None:
    host = args.url.removeprefix("http://").partition("/")[0].partition(":")[0]
    ip = socket.gethostbyname(host)
    own_ip = args.source
    with arp.ArpSocket(args.interface) as sock:
        request = arp.build(arp.ARPOP_REQUEST, sock.mac, own_ip, arp.NO_MAC, ip, arp.BROADCAST)
        while not stop.is_set():
            sock.send(request)
            deadline = asyncio.get_running_loop().time() + ARP_WINDOW
            macs: set[str] = set()
            while (packet := await sock.receive(deadline)) is not None:
                if packet.op == arp.ARPOP_REPLY and packet.sender_ip == ip:
                    macs.add(packet.sender_mac)
            rec.arp(macs)


async def main_async(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    with open(args.out, "a") if args.out != "-" else sys.stdout as out:
        rec = Recorder(out)
        tasks = [asyncio.ensure_future(http_loop(args, rec, stop))]
        if args.interface:
            tasks.append(asyncio.ensure_future(arp_loop(args, rec, stop)))
        deadline = time.monotonic() + args.deadline
        try:
            while time.monotonic() < deadline and not stop.is_set():
                if args.until_file and os.path.exists(args.until_file):
                    break
                if any(t.done() for t in tasks):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        errors = [e for e in errors if not isinstance(e, asyncio.CancelledError)]
        summary = rec.summary()
        if errors:
            summary["errors"] = [repr(e) for e in errors]
        rec.line({"summary": summary})
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.http_probe", description=__doc__)
    p.add_argument("url")
    p.add_argument("--out", default="-", help="JSON lines go here (default: stdout)")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=0.5, help="per request")
    p.add_argument("--interface", default="", help="ARP check from this interface (optional)")
    p.add_argument("--source", default="0.0.0.0", help="this host's address for the ARP check")
    p.add_argument("--until-file", default="", help="stop once this file exists")
    p.add_argument("--deadline", type=float, default=300.0, help="stop after this many seconds")
    args = p.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
