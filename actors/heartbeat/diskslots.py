"""The disk heartbeat's slot content on the shared device (the slots themselves, their I/O and
its thread are `actors/diskio.py`'s, shared with disk NP).

    offset + i * 4096: the slot of the i-th server of the cluster's server list
        length u16 (big-endian) | the heartbeat frame (frame.py) | zeros up to 4096 bytes

A torn write can only spoil the writer's own slot, which its MAC then refuses.
"""

from __future__ import annotations

import struct

from actors.diskio import SLOT_BYTES, area_bytes
from actors.heartbeat.frame import MAX_FRAME_BYTES, FrameError

__all__ = ["SLOT_BYTES", "area_bytes", "pack_slot", "unpack_slot"]

_LEN = struct.Struct("!H")
assert _LEN.size + MAX_FRAME_BYTES <= SLOT_BYTES


def pack_slot(frame: bytes) -> bytes:
    return (_LEN.pack(len(frame)) + frame).ljust(SLOT_BYTES, b"\x00")


def unpack_slot(raw: bytes) -> bytes:
    """The frame in a slot's bytes; FrameError("empty slot") for a slot never written (zeros),
    FrameError("garbage") for one whose length cannot be a frame's."""
    (length,) = _LEN.unpack_from(raw)
    if length == 0:
        raise FrameError("empty slot" if not any(raw) else "garbage")
    if length > min(MAX_FRAME_BYTES, len(raw) - _LEN.size):
        raise FrameError("garbage")
    return bytes(raw[_LEN.size : _LEN.size + length])
