"""The one envelope every bus message travels in, and its strict msgpack codec.

Decoding never trusts the frame: anything that is not exactly a valid envelope of this
version raises `EnvelopeError`, which receivers count and drop (see `bus.counters`) — it never
reaches an actor's loop. The topic also travels as the first ZeroMQ frame so subscriptions
can filter by prefix; the decoder checks that both agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgpack

VERSION = 1
MAX_FRAME_BYTES = 1 << 20  # 1 MiB: larger frames are refused before unpacking
MAX_TOPIC_BYTES = 512
MAX_SENDER_BYTES = 1024  # server names may exceed 240 characters (SPEC §12-41)

_FIELDS = ("v", "topic", "sender", "seq", "time", "body")


class EnvelopeError(ValueError):
    """A frame that is not a valid envelope; the message is a fixed reason (a counter key)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    topic: str
    sender: str  # "server/actor"
    seq: int  # per-sender, increasing from 1
    time: float  # wall clock, for humans only
    body: dict[str, Any] = field(default_factory=dict)
    v: int = VERSION

    @property
    def server(self) -> str:
        return self.sender.rpartition("/")[0]

    @property
    def actor(self) -> str:
        return self.sender.rpartition("/")[2]


def make(topic: str, sender: str, seq: int, body: dict[str, Any] | None = None) -> Envelope:
    return Envelope(topic=topic, sender=sender, seq=seq, time=time.time(), body=body or {})


def encode(env: Envelope) -> bytes:
    return msgpack.packb(
        [env.v, env.topic, env.sender, env.seq, env.time, env.body], use_bin_type=True
    )


def _refuse_ext(code: int, data: bytes) -> None:
    raise ValueError("msgpack extension types are not part of the envelope")


def decode(frame: bytes, max_bytes: int = MAX_FRAME_BYTES) -> Envelope:
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise EnvelopeError("frame is not bytes")
    if len(frame) > max_bytes:
        raise EnvelopeError("frame too large")
    try:
        obj = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_refuse_ext,
            timestamp=1,  # the Timestamp extension (-1) bypasses ext_hook; make it a plain float
        )
    except Exception:  # msgpack raises many types on garbage; all mean "not an envelope"
        raise EnvelopeError("undecodable frame") from None
    if not isinstance(obj, list) or len(obj) != len(_FIELDS):
        raise EnvelopeError("frame is not a 6-field envelope")
    v, topic, sender, seq, wall, body = obj
    if type(v) is not int or v != VERSION:
        raise EnvelopeError("unsupported envelope version")
    if not isinstance(topic, str) or not topic or len(topic.encode()) > MAX_TOPIC_BYTES:
        raise EnvelopeError("bad topic")
    if not isinstance(sender, str) or "/" not in sender or len(sender.encode()) > MAX_SENDER_BYTES:
        raise EnvelopeError("bad sender")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise EnvelopeError("bad sequence number")
    if not isinstance(wall, (int, float)) or isinstance(wall, bool):
        raise EnvelopeError("bad timestamp")
    if not isinstance(body, dict):
        raise EnvelopeError("body is not a map")
    return Envelope(topic=topic, sender=sender, seq=seq, time=float(wall), body=body)


def decode_multipart(frames: list[bytes], max_bytes: int = MAX_FRAME_BYTES) -> Envelope:
    """Decode a pub/sub message: [topic, envelope]; the two topics must agree."""
    if len(frames) != 2:
        raise EnvelopeError("wrong frame count")
    env = decode(frames[1], max_bytes)
    if frames[0] != env.topic.encode():
        raise EnvelopeError("topic frame does not match the envelope")
    return env


def to_multipart(env: Envelope) -> list[bytes]:
    return [env.topic.encode(), encode(env)]
