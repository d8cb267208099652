"""The witness protocol: what a server and `haven witness serve` say to each other, and why it can
be trusted. Used by the `witness` NP actor, the witness service and the lab.

Tokens, not the key. The witness never sees the cluster key (a witness host serves many
clusters and is not a cluster member). Each cluster has a token, HMAC-SHA256(cluster key,
"haven witness token v1"): every server derives it; the operator gives it to the witness once
(`haven witness token --config F` prints the line for its tokens file). The cluster id sent in
requests is a digest of the token: public, stable, and it says nothing of the key. A witness
that leaks its tokens lets someone play with that cluster's witness leases, never forge a
heartbeat.

Every exchange is two HTTP requests, both sealed with HMAC-SHA256 of the token:
1. `GET /v1/challenge` → {"nonce": 32 hex}: a fresh, single-use nonce (valid `NONCE_TTL`).
2. `POST /v1/lease`, JSON {v, cluster, server, op, duration_ms, nonce, cnonce} with the header
   `X-Haven-Mac` = HMAC(token, "haven-witness-request\\n" + body). op: `acquire` (take or
   extend the cluster's lease for duration_ms), `probe` (may I? changes nothing), `release`.
   The witness takes the nonce (a replay, or a request built on a nonce it did not issue, is
   refused) and answers JSON {v, cluster, server, op, cnonce, result, holder, remaining_ms,
   duration_ms, reason} with `X-Haven-Mac` = HMAC(token, "haven-witness-response\\n" + body). The
   server's own random `cnonce` in it makes a recorded answer useless later; the MAC makes a
   forged "granted" impossible. Errors before authentication are plain `{"error": ...}` with
   a 4xx/5xx status, and the client treats them as "cannot confirm".

The lease: for each cluster, one holder at a time. `acquire` is granted when nobody holds it, its
lease has run out, or the asker holds it already; else refused, naming the holder. Times are
the witness's own monotonic clock (see `witness_server.py`, also for restarts).

How long the client may count on a granted lease (`valid_for`). It noted t_s on its clock just
before sending the request; the witness granted at t_g (t_s <= t_g in real time: the request had
to get there) until t_g + d on the witness's clock. The client counts it valid for
d (1 - drift)² - margin after t_s on its own clock: whatever the two clocks' rates (within
drift), that ends before t_s + d/(1 + drift) <= t_g + d/(1 + drift) in real time, which is when
the witness's lease ends at the earliest. Network delay only makes the client more careful.
What a server needs of a grant is that the lease outlasts the other side's check for the same
partition, which starts within the fencing wait of our detection: it asks for the fencing wait
(`lease_duration`: more, for the witness's clock rate) and the grant starts after our detection.
A grant whose answer comes back after `valid_for` has run out is not counted on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from actors.np.leaseclock import DRIFT

VERSION = 1
NONCE_TTL = 30.0  # seconds a challenge nonce stays usable
MAX_BODY = 16384
MAC_HEADER = "X-Haven-Mac"
OPS = ("acquire", "probe", "release")
MARGIN = 0.05  # seconds taken off a granted lease on top of the drift
_HEX = re.compile(r"[0-9a-f]{32}")
_TOKEN = re.compile(r"[0-9a-f]{64}")


class ProtocolError(ValueError):
    """A message that is not what the protocol says; the text says what is wrong."""


def cluster_token(cluster_key: bytes) -> bytes:
    return hmac.digest(cluster_key, b"haven witness token v1", hashlib.sha256)


def cluster_id(token: bytes) -> str:
    return hashlib.sha256(b"haven witness id v1" + token).hexdigest()[:32]


def token_line(token: bytes, cluster_name: str) -> str:
    """The line for the witness's tokens file: the token, then a comment naming the cluster."""
    name = cluster_name.replace("\n", " ")
    return f"{token.hex()}  # cluster {name!r}, id {cluster_id(token)}"


def parse_tokens(text: str) -> dict[str, bytes]:
    """A tokens file: one token (64 hex digits) per line, `#` comments, blank lines. Returns
    {cluster id: token}; ProtocolError naming the first bad line."""
    tokens = {}
    for number, line in enumerate(text.splitlines(), 1):
        word = line.split("#", 1)[0].strip().lower()
        if not word:
            continue
        if not _TOKEN.fullmatch(word):
            raise ProtocolError(f"line {number}: not a token (64 hex digits)")
        token = bytes.fromhex(word)
        tokens[cluster_id(token)] = token
    return tokens


def seal(token: bytes, kind: str, body: bytes) -> str:
    return hmac.digest(token, f"haven-witness-{kind}\n".encode() + body, hashlib.sha256).hex()


def sealed_by(token: bytes, kind: str, body: bytes, mac: str | None) -> bool:
    return mac is not None and hmac.compare_digest(mac.lower(), seal(token, kind, body))


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode()


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


def check_request(message: dict[str, Any]) -> None:
    """The fields of a lease request (its MAC is checked first, by the caller)."""
    if message.get("v") != VERSION:
        raise ProtocolError(f"unsupported version {message.get('v')!r}")
    for name in ("cluster", "server", "nonce", "cnonce"):
        if not isinstance(message.get(name), str) or not message[name]:
            raise ProtocolError(f"{name} missing")
    if message.get("op") not in OPS:
        raise ProtocolError(f"unknown op {message.get('op')!r}")
    duration = message.get("duration_ms")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
        raise ProtocolError("duration_ms must be a whole number of milliseconds")


def is_nonce(value: object) -> bool:
    return isinstance(value, str) and _HEX.fullmatch(value) is not None


def lease_duration(hold: float) -> float:
    """What a server asks for to hold the lease `hold` seconds of real time: the witness's clock
    may run fast by `drift`."""
    return hold * (1 + DRIFT) + MARGIN


def valid_for(duration: float) -> float:
    """Seconds after sending its request that a client may count on a lease granted for
    `duration` seconds (see the module docstring)."""
    return max(0.0, duration * (1 - DRIFT) ** 2 - MARGIN)
