"""The witness service behind `haven witness serve`: leases for clusters, over HTTP.

Run on a third host that both sides of a partition can reach (the lab runs it in its router
namespace). It holds, per cluster, at most one lease: see `witness_protocol.py` for the messages
and why they can be trusted. Times are this process's CLOCK_BOOTTIME (`leaseclock`).

A restart must not forget a lease that someone counts on. With `--state FILE`, every grant and
release is written (atomically, fsync'd) before it is answered; a grant that cannot be written is
refused. At start the file is read: in the same boot of the machine the leases end when they
ended (the clock is the same), after a reboot each runs its remaining time again from the start
(the time the machine was down is not known, so it is taken as zero: later, never earlier).
Without a state file — or with one that cannot be read — the witness refuses every lease for
`max_lease` after it starts: no lease it might have granted before is still running then.

Limits, so that a flood does no harm: bodies of at most 16 KiB, 5 s per connection, at most 64
connections at once, at most 4096 outstanding challenge nonces (the oldest go first). Refusals are
counted by reason (`GET /v1/stats`, which shows counts only).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from actors.np import witness_protocol as wp
from actors.np.leaseclock import boot_id, now
from bus.counters import DropCounter

MAX_NONCES = 4096
MAX_CONNECTIONS = 64
CONNECTION_TIMEOUT = 5.0
STATE_VERSION = 1


class LeaseBook:
    """Per cluster: (holder, expiry). Pure: the caller gives the time."""

    def __init__(self) -> None:
        self.leases: dict[str, tuple[str, float]] = {}

    def holder(self, cluster: str, at: float) -> tuple[str | None, float]:
        lease = self.leases.get(cluster)
        if lease is None or lease[1] <= at:
            return None, 0.0
        return lease[0], lease[1] - at

    def acquire(self, cluster: str, server: str, duration: float, at: float) -> bool:
        holder, _ = self.holder(cluster, at)
        if holder not in (None, server):
            return False
        self.leases[cluster] = (server, at + duration)
        return True

    def release(self, cluster: str, server: str, at: float) -> bool:
        holder, _ = self.holder(cluster, at)
        if holder != server:
            return False
        del self.leases[cluster]
        return True

    def dump(self, at: float) -> dict[str, Any]:
        return {
            cluster: {"holder": holder, "expires": expires, "remaining": expires - at}
            for cluster, (holder, expires) in self.leases.items()
            if expires > at
        }

    def load(self, leases: dict[str, Any], at: float, same_boot: bool) -> None:
        for cluster, lease in leases.items():
            expires = float(lease["expires"]) if same_boot else at + float(lease["remaining"])
            if expires > at:
                self.leases[str(cluster)] = (str(lease["holder"]), expires)


class NonceBook:
    """Challenge nonces: issued, taken once, forgotten after NONCE_TTL."""

    def __init__(self) -> None:
        self.nonces: OrderedDict[str, float] = OrderedDict()

    def issue(self, at: float) -> str:
        self._expire(at)
        while len(self.nonces) >= MAX_NONCES:
            self.nonces.popitem(last=False)
        nonce = secrets.token_hex(16)
        self.nonces[nonce] = at + wp.NONCE_TTL
        return nonce

    def take(self, nonce: str, at: float) -> bool:
        self._expire(at)
        return self.nonces.pop(nonce, None) is not None

    def _expire(self, at: float) -> None:
        while self.nonces and next(iter(self.nonces.values())) <= at:
            self.nonces.popitem(last=False)


class Refused(Exception):
    """A request refused before it was authenticated: (HTTP status, reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Witness:
    """The service without HTTP: challenge, lease, stats. Thread-safe."""

    def __init__(
        self,
        tokens: dict[str, bytes],
        *,
        max_lease: float,
        state_path: str | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.tokens = tokens
        self.max_lease = max_lease
        self.state_path = state_path
        self.log = log
        self.book = LeaseBook()
        self.nonces = NonceBook()
        self.refused = DropCounter()
        self.counts = {"challenges": 0, "requests": 0, "granted": 0, "released": 0}
        self.lock = threading.Lock()
        self.boot = boot_id().hex()
        self.quiet_until = 0.0
        self._restore()

    # persistence -----------------------------------------------------------------------------
    def _restore(self) -> None:
        at = now()
        if self.state_path is None:
            self.quiet_until = at + self.max_lease
            self.log(f"no state file: every lease is refused for {self.max_lease:g}s")
            return
        try:
            with open(self.state_path) as f:
                state = json.load(f)
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {state.get('version')!r}")
            self.book.load(state["leases"], at, state.get("boot_id") == self.boot)
        except FileNotFoundError:
            self.log(f"state file {self.state_path} does not exist yet: no lease to restore")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.quiet_until = at + self.max_lease
            self.log(
                f"state file {self.state_path} unreadable ({exc}): every lease is refused "
                f"for {self.max_lease:g}s"
            )
        else:
            self.log(f"state restored: {len(self.book.leases)} lease(s) still running")

    def _save(self, at: float) -> None:
        if self.state_path is None:
            return
        state = {"version": STATE_VERSION, "boot_id": self.boot, "leases": self.book.dump(at)}
        tmp = f"{self.state_path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    # requests --------------------------------------------------------------------------------
    def challenge(self) -> dict[str, Any]:
        with self.lock:
            self.counts["challenges"] += 1
            return {"nonce": self.nonces.issue(now())}

    def lease(self, body: bytes, mac: str | None) -> tuple[bytes, str]:
        """A sealed answer (body, MAC) to a lease request; Refused if it is not authentic."""
        with self.lock:
            self.counts["requests"] += 1
            try:
                return self._lease(body, mac)
            except Refused as exc:
                self.refused.drop(str(exc))
                raise

    def _lease(self, body: bytes, mac: str | None) -> tuple[bytes, str]:
        try:
            message = wp.decode(body)
        except wp.ProtocolError:
            raise Refused(400, "garbage") from None
        cluster = message.get("cluster")
        token = self.tokens.get(cluster) if isinstance(cluster, str) else None
        if token is None:
            raise Refused(403, "unknown cluster")
        if not wp.sealed_by(token, "request", body, mac):
            raise Refused(403, "forged")
        try:
            wp.check_request(message)
        except wp.ProtocolError as exc:
            raise Refused(400, f"malformed: {exc}") from None
        at = now()
        if not self.nonces.take(message["nonce"], at):
            raise Refused(409, "stale or replayed nonce")
        answer = self._decide(message, at)
        out = wp.encode(answer)
        return out, wp.seal(token, "response", out)

    def _decide(self, m: dict[str, Any], at: float) -> dict[str, Any]:
        cluster, server, op = m["cluster"], m["server"], m["op"]
        duration = m["duration_ms"] / 1000
        result, reason = "ok", ""
        if op in ("acquire", "probe") and duration > self.max_lease:
            result = "refused"
            reason = (
                f"a lease of {duration:g}s is longer than this witness grants "
                f"({self.max_lease:g}s: see its --max-lease)"
            )
        elif op == "acquire" and at < self.quiet_until:
            result = "refused"
            reason = (
                "the witness restarted without its state: no lease for "
                f"{self.quiet_until - at:.1f}s"
            )
        elif op == "acquire":
            before = self.book.leases.get(cluster)
            if self.book.acquire(cluster, server, duration, at):
                try:
                    self._save(at)
                except OSError as exc:
                    self._undo(cluster, before)
                    result, reason = "refused", f"the witness cannot record the lease: {exc}"
                    self.log(f"lease NOT granted, state file: {exc}")
                else:
                    result = "granted"
                    self.counts["granted"] += 1
                    self.log(f"cluster {cluster}: lease granted to {server!r} for {duration:g}s")
            else:
                result = "refused"
        elif op == "release":
            if self.book.release(cluster, server, at):
                with contextlib.suppress(OSError):
                    self._save(at)
                result = "released"
                self.counts["released"] += 1
            else:
                result = "not_holder"
        holder, remaining = self.book.holder(cluster, at)
        if result == "refused" and not reason:
            reason = f"server {holder} holds the lease for {remaining:.1f}s more"
        return {
            "v": wp.VERSION,
            "cluster": cluster,
            "server": server,
            "op": op,
            "cnonce": m["cnonce"],
            "result": result,
            "reason": reason,
            "holder": holder,
            "remaining_ms": int(remaining * 1000),
            "duration_ms": m["duration_ms"],
        }

    def _undo(self, cluster: str, before: tuple[str, float] | None) -> None:
        if before is None:
            self.book.leases.pop(cluster, None)
        else:
            self.book.leases[cluster] = before

    def stats(self) -> dict[str, Any]:
        with self.lock:
            at = now()
            return {
                **self.counts,
                "refused": self.refused.as_dict(),
                "clusters": len(self.tokens),
                "leases": len(self.book.dump(at)),
                "quiet_for": max(0.0, self.quiet_until - at),
            }


# --- HTTP ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: WitnessHTTPServer
    server_version = "haven-witness"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        witness = self.server.witness
        if self.path == "/v1/challenge":
            self._json(200, witness.challenge())
        elif self.path == "/v1/stats":
            self._json(200, witness.stats())
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/v1/lease":
            self._json(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= wp.MAX_BODY:
            self.server.witness.refused.drop("bad length")
            self._json(413 if length > wp.MAX_BODY else 411, {"error": "bad Content-Length"})
            return
        body = self.rfile.read(length)
        try:
            out, mac = self.server.witness.lease(body, self.headers.get(wp.MAC_HEADER))
        except Refused as exc:
            self._json(exc.status, {"error": str(exc)})
            return
        self._send(200, out, {wp.MAC_HEADER: mac})

    def _json(self, status: int, message: dict[str, Any]) -> None:
        self._send(status, wp.encode(message), {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the grants; refusals are counted instead


class WitnessHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], witness: Witness) -> None:
        self.witness = witness
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.witness.refused.drop("too many connections")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        print(
            f"haven witness: error while serving {client_address}: {sys.exc_info()[1]!r}",
            file=sys.stderr,
            flush=True,
        )
