"""IcmpProber against real sockets: loopback in the root namespace, and two network namespaces
made here (198.18.99.1 and .2 on a veth pair, .3 silent) with the prober running inside one of
them. Nothing is configured in the root namespace and no other address is ever probed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.np.icmp import ICMP_ECHO_REPLY, IcmpProber, checksum

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
is_root = os.geteuid() == 0
needs_root = pytest.mark.skipif(not is_root, reason="raw ICMP sockets need root / CAP_NET_RAW")


def icmp(typ: int, ident: int, seq: int, body: bytes = b"", code: int = 0, bad_sum=False) -> bytes:
    csum = checksum(struct.pack("!BBHHH", typ, code, 0, ident, seq) + body)
    if bad_sum:
        csum ^= 0x5A5A
    return struct.pack("!BBHHH", typ, code, csum, ident, seq) + body


def test_checksum_known_values():
    assert checksum(b"") == 0xFFFF
    # RFC 1071 worked example: words 0001 f203 f4f5 f6f7 sum to 0xddf2 (after carries).
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2 & 0xFFFF)
    pkt = icmp(8, 0x1234, 7, b"odd")  # odd length is padded with a zero byte
    assert checksum(pkt) == 0


def test_refuses_non_ipv4_targets_and_bad_timeouts():
    async def main(p: IcmpProber):
        for bad in ["::1", "localhost", "", "1.2.3", "224.0.0.1", "0.0.0.0", "255.255.255.255"]:
            with pytest.raises(ValueError):
                await p.probe(bad, 1.0)
        with pytest.raises(ValueError, match="IPv4 only"):
            await p.probe("::1", 1.0)
        with pytest.raises(ValueError, match="IPv4 only"):
            await p.any_reachable([LOOPBACK, "::1"], 1.0)
        for t in [0, -1, float("nan"), float("inf")]:
            with pytest.raises(ValueError, match="timeout"):
                await p.probe(LOOPBACK, t)
        assert await p.any_reachable([], 1.0) is None
        assert p.counters["sent"] == 0

    if not is_root:
        pytest.skip("raw ICMP sockets need root / CAP_NET_RAW")
    with IcmpProber() as p:
        asyncio.run(main(p))
    with pytest.raises(ValueError):
        IcmpProber(ident=70000)


@needs_root
def test_loopback_answers_with_small_rtt():
    async def main():
        with IcmpProber() as p:
            rtts = [await p.probe(LOOPBACK, 1.0) for _ in range(3)]
            return rtts, dict(p.counters)

    rtts, counters = asyncio.run(main())
    assert all(r is not None and 0 <= r < 0.1 for r in rtts), rtts
    assert counters["sent"] == counters["replies"] == 3
    assert counters["timeouts"] == counters["malformed"] == 0


@needs_root
def test_twenty_concurrent_probes_each_get_their_own_reply():
    async def main():
        with IcmpProber() as p:
            rtts = await asyncio.gather(*(p.probe(LOOPBACK, 2.0) for _ in range(20)))
            return rtts, dict(p.counters)

    rtts, counters = asyncio.run(main())
    assert all(r is not None for r in rtts), rtts
    assert counters["sent"] == counters["replies"] == 20
    assert counters["late"] == 0


@needs_root
def test_sequence_numbers_wrap_at_16_bits():
    async def main():
        with IcmpProber() as p:
            p._seq = 0xFFFE
            rtts = [await p.probe(LOOPBACK, 1.0) for _ in range(4)]
            return rtts, p._seq

    rtts, seq = asyncio.run(main())
    assert all(r is not None for r in rtts)
    assert seq == 2


@needs_root
def test_garbage_is_ignored_counted_and_never_crashes():
    async def main():
        with (
            IcmpProber() as p,
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw,
        ):
            me, nonce = p.ident, p._nonce
            junk = [
                icmp(ICMP_ECHO_REPLY, (me + 1) & 0xFFFF, 1, nonce),  # another process's reply
                icmp(ICMP_ECHO_REPLY, me, 2, b"\x00" * 8),  # our id, another prober's nonce
                icmp(ICMP_ECHO_REPLY, me, 3),  # our id, truncated: no payload
                icmp(ICMP_ECHO_REPLY, me, 4, nonce[:3]),  # our id, payload cut short
                icmp(ICMP_ECHO_REPLY, me, 5, nonce, bad_sum=True),  # our id, corrupt
                icmp(ICMP_ECHO_REPLY, me, 999, nonce),  # ours, but nobody is waiting: late
                icmp(13, me, 6, nonce),  # timestamp request: bad type
                icmp(8, me, 7, nonce),  # an echo request looking like ours
                b"\x00\x00",  # 2 bytes (the kernel refuses to send fewer)
                b"\x00\x00\xff",  # 3 bytes
                os.urandom(40),
            ]
            for pkt in junk:
                raw.sendto(pkt, (LOOPBACK, 0))
            deadline = time.monotonic() + 2.0
            c = p.counters
            while time.monotonic() < deadline and not (
                c["ignored"] >= 2 and c["malformed"] >= 3 and c["late"] >= 1
            ):
                await asyncio.sleep(0.01)
            before = dict(c)
            rtt = await p.probe(LOOPBACK, 1.0)
            return before, rtt, dict(c)

    before, rtt, after = asyncio.run(main())
    assert before["ignored"] >= 2 and before["malformed"] >= 3 and before["late"] >= 1, before
    assert before["replies"] == 0 and before["sent"] == 0
    assert rtt is not None
    assert after["replies"] == 1


@needs_root
def test_probe_after_close_raises():
    async def main():
        p = IcmpProber()
        assert await p.probe(LOOPBACK, 1.0) is not None
        p.close()
        p.close()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            await p.probe(LOOPBACK, 1.0)

    asyncio.run(main())


def test_without_cap_net_raw_says_so():
    """Without CAP_NET_RAW (root with the capability dropped by setpriv), opening the prober
    raises PermissionError naming CAP_NET_RAW. When the suite itself runs unprivileged, check
    that directly instead."""
    if not is_root:
        try:
            IcmpProber().close()
        except PermissionError as e:
            assert "CAP_NET_RAW" in str(e)
            return
        pytest.skip("this unprivileged user can open raw sockets (has CAP_NET_RAW)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop CAP_NET_RAW")
    code = (
        "from actors.np.icmp import IcmpProber\n"
        "try:\n    IcmpProber()\nexcept PermissionError as e:\n    print('PERM', e)\n"
        "else:\n    print('OPENED')\n"
    )
    drop = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw"]
    out = subprocess.run(
        [*drop, sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "PERM" in out.stdout and "CAP_NET_RAW" in out.stdout, out.stdout


# -- inside network namespaces made by the test ----------------------------------------------

NS_SCRIPT = r"""
import asyncio, json, time
from actors.np.icmp import IcmpProber

PEER, SILENT = "198.18.99.2", "198.18.99.3"

async def timed(coro):
    t0 = time.monotonic()
    r = await coro
    return r, time.monotonic() - t0

async def main():
    out = {}
    p = IcmpProber()
    out["peer"] = await p.probe(PEER, 2.0)
    out["silent"] = [await timed(p.probe(SILENT, t)) for t in (0.3, 0.2, 0.5)]
    out["any_mixed"] = await timed(p.any_reachable([SILENT, PEER], 1.0))
    out["any_silent"] = await timed(p.any_reachable([SILENT, SILENT], 0.3))
    waiting = asyncio.ensure_future(p.probe(SILENT, 5.0))
    await asyncio.sleep(0.05)
    p.close()
    try:
        await waiting
        out["close_while_waiting"] = "returned"
    except RuntimeError as e:
        out["close_while_waiting"] = str(e)
    out["counters"] = p.counters
    print(json.dumps(out))

asyncio.run(main())
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


@pytest.fixture(scope="module")
def netns_run():
    if not is_root:
        pytest.skip("creating network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("`ip` (iproute2) is not installed: no `ip netns`")
    a, b = f"hvicmp{os.getpid()}a", f"hvicmp{os.getpid()}b"
    made: list[str] = []
    try:
        for ns in (a, b):
            try:
                _ip("netns", "add", ns)
            except subprocess.CalledProcessError as e:
                pytest.skip(f"`ip netns add` is unavailable here: {e.stderr.strip()}")
            made.append(ns)
        # The veth pair is created inside A with its peer in B: the root namespace is untouched.
        _ip("-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", b)
        for ns, addr in ((a, "198.18.99.1/24"), (b, "198.18.99.2/24")):
            _ip("-n", ns, "addr", "add", addr, "dev", "veth0")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "veth0", "up")
        proc = subprocess.run(
            ["ip", "netns", "exec", a, sys.executable, "-c", NS_SCRIPT],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        yield json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def test_ns_answering_peer_is_reachable(netns_run):
    assert netns_run["peer"] is not None and 0 <= netns_run["peer"] < 1.0


def test_ns_silent_target_times_out_on_time(netns_run):
    for (result, elapsed), timeout in zip(netns_run["silent"], (0.3, 0.2, 0.5), strict=True):
        assert result is None
        assert abs(elapsed - timeout) <= 0.05, (elapsed, timeout)
    assert netns_run["counters"]["timeouts"] >= 3


def test_ns_any_reachable_returns_the_answering_target_without_waiting(netns_run):
    target, elapsed = netns_run["any_mixed"]
    assert target == "198.18.99.2"
    assert elapsed < 0.5  # the silent target's 1 s time-out was not waited for
    assert netns_run["any_silent"][0] is None
    assert abs(netns_run["any_silent"][1] - 0.3) <= 0.05


def test_ns_close_fails_a_waiting_probe(netns_run):
    assert "closed" in netns_run["close_while_waiting"]
