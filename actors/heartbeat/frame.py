"""The heartbeat frame, the same on every path (UDP, serial line, disk slot).

    magic "HVHB" | version u8 | flags u8 | incarnation u64 | seq u64
    | sender length u16 | sender (UTF-8) | status length u16 | status (msgpack map; names the hb)
    | HMAC-SHA256 of all the above with the cluster key (32 bytes)

Fixed-width big-endian integers (a portable wire format, SPEC §12-11). The MAC is checked, in
constant time, before anything inside is trusted or parsed. Every frame carries the sender's
incarnation (larger at every start of the sender's heartbeat actor: `actors/counter_file.py`)
and a sequence number that grows within it, so `ReplayGuard` refuses a frame seen before.
The status names the heartbeat, so a frame recorded on one path is refused on another. A receiver
that restarts forgets what it saw: a recording of a sender's current incarnation is accepted
again until that sender's next genuine frame — and indefinitely if the sender died meanwhile
(keeping a dead server "up" takes a recording and a receiver restart; persisting the guard's
marks is the remedy, not done yet).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

MAGIC = b"HVHB"
VERSION = 1
MAC_BYTES = 32
MAX_SENDER_BYTES = 1024
MAX_STATUS_BYTES = 512
MAX_FRAME_BYTES = 4 + 2 + 16 + 2 + MAX_SENDER_BYTES + 2 + MAX_STATUS_BYTES + MAC_BYTES

_HEAD = struct.Struct("!4sBBQQ")
_LEN = struct.Struct("!H")


class FrameError(ValueError):
    """Not a frame we accept; the message is a fixed reason, usable as a counter key."""


@dataclass(frozen=True, slots=True)
class Beat:
    sender: str
    incarnation: int
    seq: int
    status: dict[str, Any]


def encode(key: bytes, beat: Beat) -> bytes:
    sender = beat.sender.encode()
    status = msgpack.packb(beat.status, use_bin_type=True)
    if len(sender) > MAX_SENDER_BYTES or len(status) > MAX_STATUS_BYTES:
        raise ValueError("sender name or status too long for a heartbeat frame")
    body = b"".join(
        (
            _HEAD.pack(MAGIC, VERSION, 0, beat.incarnation, beat.seq),
            _LEN.pack(len(sender)),
            sender,
            _LEN.pack(len(status)),
            status,
        )
    )
    return body + hmac.digest(key, body, hashlib.sha256)


def decode(key: bytes, frame: bytes) -> Beat:
    if len(frame) < _HEAD.size + 2 * _LEN.size + MAC_BYTES or len(frame) > MAX_FRAME_BYTES:
        raise FrameError("garbage")
    body, mac = frame[:-MAC_BYTES], frame[-MAC_BYTES:]
    magic, version, _flags, incarnation, seq = _HEAD.unpack_from(body)
    if magic != MAGIC:
        raise FrameError("garbage")
    if version != VERSION:
        raise FrameError("unsupported version")
    if not hmac.compare_digest(mac, hmac.digest(key, body, hashlib.sha256)):
        raise FrameError("forged")  # or another cluster's, or corrupted on the way
    # Authentic from here on; still check the lengths, a peer may run a buggy version.
    at = _HEAD.size
    (n,) = _LEN.unpack_from(body, at)
    sender_raw = body[at + 2 : at + 2 + n]
    at += 2 + n
    if len(sender_raw) != n or at + 2 > len(body):
        raise FrameError("malformed")
    (m,) = _LEN.unpack_from(body, at)
    status_raw = body[at + 2 : at + 2 + m]
    if len(status_raw) != m or at + 2 + m != len(body):
        raise FrameError("malformed")
    try:
        sender = sender_raw.decode()
        status = msgpack.unpackb(status_raw, raw=False, strict_map_key=True)
    except Exception:
        raise FrameError("malformed") from None
    if not isinstance(status, dict):
        raise FrameError("malformed")
    return Beat(sender, incarnation, seq, status)


class ReplayGuard:
    """Accepts each sender's frames only in increasing (incarnation, seq) order."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}

    def accept(self, beat: Beat) -> bool:
        mark = (beat.incarnation, beat.seq)
        last = self._last.get(beat.sender)
        if last is not None and mark <= last:
            return False
        self._last[beat.sender] = mark
        return True
