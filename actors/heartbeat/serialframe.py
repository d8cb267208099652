"""Heartbeat frames on a byte stream (the serial line of `comhb`): where one frame ends.

A serial line has no packets: bytes arrive in any chunks, and noise, a cable plugged in half-way
or a writer we do not know can put garbage anywhere. Each frame is COBS-encoded (Consistent
Overhead Byte Stuffing: no zero byte inside, one byte of overhead per 254) and written between
two zero bytes, so a zero byte always ends a record: after any garbage the receiver is back in
step at the next zero, without lengths to trust or to wait for. A record that is not valid COBS,
or longer than any frame can be, is garbage; what it decodes to is checked by `frame.decode` like
a frame from any other path. Pure: the caller feeds bytes and gets records.
"""

from __future__ import annotations

from actors.heartbeat.frame import MAX_FRAME_BYTES

DELIMITER = b"\x00"
MAX_RECORD_BYTES = MAX_FRAME_BYTES + MAX_FRAME_BYTES // 254 + 2  # COBS's worst case


def encode_record(frame: bytes) -> bytes:
    """The bytes to write for one frame: delimiter, COBS(frame), delimiter."""
    out = bytearray(DELIMITER)
    for chunk in frame.split(DELIMITER):
        while len(chunk) >= 254:
            out.append(255)
            out += chunk[:254]
            chunk = chunk[254:]
        out.append(len(chunk) + 1)
        out += chunk
    out += DELIMITER
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """The bytes COBS-encoded in `data` (no delimiters), None if `data` is not valid COBS."""
    out = bytearray()
    at, end = 0, len(data)
    while at < end:
        code = data[at]
        block = data[at + 1 : at + code]
        if code == 0 or len(block) != code - 1:
            return None
        out += block
        at += code
        if code < 255 and at < end:
            out += DELIMITER
    return bytes(out)


class RecordReader:
    """Cuts a byte stream into records: `feed(chunk)` returns the complete records in it (as COBS-
    decoded frames, or None for each piece of garbage), keeping an unfinished one for later."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._overflow = False  # dropping an over-long record until its end

    def feed(self, chunk: bytes) -> list[bytes | None]:
        records: list[bytes | None] = []
        self._pending += chunk
        *complete, rest = self._pending.split(DELIMITER)
        for raw in complete:
            if self._overflow:
                self._overflow = False  # the end of the over-long record, already counted
            elif raw:  # empty: between two delimiters (every record starts with one)
                records.append(cobs_decode(bytes(raw)) if len(raw) <= MAX_RECORD_BYTES else None)
        if len(rest) > MAX_RECORD_BYTES:
            if not self._overflow:
                records.append(None)  # no frame is this long: garbage, counted once
            self._overflow = True
            rest = bytearray()
        self._pending = bytearray(rest)
        return records
