"""`python -m lab.probe ADDRESS [--timeout S] [--count N] [--stats]`: is ADDRESS reachable? One ICMP
echo (IPv4 or IPv6) from a raw socket per try, no `ping` binary needed; exit 0 on the first reply,
1 if none came. With --stats every one of the N echoes is sent and `{"sent": N, "received": K}`
printed (to measure loss). `Lab.reachable()` runs it inside a lab namespace."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(address: str, timeout: float = 1.0, seq: int = 1) -> bool:
    """Send one echo request to `address`; True if its reply arrives within `timeout`."""
    ip = ipaddress.ip_address(address)
    v6 = ip.version == 6
    family, proto, request, reply = (
        (socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, 129)
        if v6
        else (socket.AF_INET, socket.IPPROTO_ICMP, 8, 0)
    )
    ident = os.getpid() & 0xFFFF
    payload = b"haven-lab-probe"
    header = struct.pack("!BBHHH", request, 0, 0, ident, seq)
    csum = 0 if v6 else _checksum(header + payload)  # the kernel sums ICMPv6
    packet = struct.pack("!BBHHH", request, 0, csum, ident, seq) + payload
    with socket.socket(family, socket.SOCK_RAW, proto) as sock:
        sock.sendto(packet, (address, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            data, sender = sock.recvfrom(2048)
            icmp = (
                data if v6 else data[(data[0] & 0x0F) * 4 :]
            )  # v4 raw sockets include the IP header
            if len(icmp) < 8 or ipaddress.ip_address(sender[0]) != ip:
                continue
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
            if kind == reply and rid == ident and rseq == seq:
                return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.probe")
    parser.add_argument("address")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per try")
    parser.add_argument("--count", type=int, default=1, help="tries (stops at the first reply)")
    parser.add_argument("--stats", action="store_true", help="send all, print sent/received")
    args = parser.parse_args(argv)
    if args.stats:
        received = sum(echo(args.address, args.timeout, seq) for seq in range(1, args.count + 1))
        print(json.dumps({"sent": args.count, "received": received}))
        return 0 if received else 1
    for seq in range(1, args.count + 1):
        if echo(args.address, args.timeout, seq):
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
