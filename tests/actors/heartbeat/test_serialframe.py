"""Cutting heartbeat frames out of a serial byte stream: any chunking, any garbage between."""

from __future__ import annotations

import os
import random

from hypothesis import given
from hypothesis import strategies as st

from actors.heartbeat.frame import MAX_FRAME_BYTES
from actors.heartbeat.serialframe import (
    MAX_RECORD_BYTES,
    RecordReader,
    cobs_decode,
    encode_record,
)


@given(st.binary(max_size=MAX_FRAME_BYTES))
def test_a_record_has_no_zero_inside_and_decodes_to_its_frame(data: bytes) -> None:
    record = encode_record(data)
    assert record[0] == 0 and record[-1] == 0 and 0 not in record[1:-1]
    assert len(record) <= MAX_RECORD_BYTES + 2
    assert cobs_decode(record[1:-1]) == data


@given(st.lists(st.binary(min_size=1, max_size=600), max_size=8), st.randoms())
def test_frames_survive_any_chunking(frames: list[bytes], rnd: random.Random) -> None:
    stream = b"".join(encode_record(f) for f in frames)
    reader, got, at = RecordReader(), [], 0
    while at < len(stream):
        n = rnd.randint(1, 64)
        got += reader.feed(stream[at : at + n])
        at += n
    assert got == frames


def test_garbage_costs_at_most_the_frame_it_touches() -> None:
    a, b, c = os.urandom(100), os.urandom(120), os.urandom(90)
    stream = encode_record(a) + b"\xff\x01noise" + encode_record(b) + b"\x02" + encode_record(c)
    got = RecordReader().feed(stream)
    assert [r for r in got if r is not None and r in (a, b, c)] == [a, b, c]
    assert got.count(None) + sum(1 for r in got if r not in (a, b, c, None)) == 2


def test_an_endless_record_is_dropped_once_and_the_stream_goes_on() -> None:
    reader = RecordReader()
    got = []
    for _ in range(10):
        got += reader.feed(b"\x01" * 1000)  # no delimiter, ever longer
    good = os.urandom(64)
    got += reader.feed(b"\x00" + encode_record(good))
    assert got == [None, good]


def test_invalid_cobs_is_none() -> None:
    assert cobs_decode(b"\x05ab") is None  # the block claims 4 bytes, has 2
    assert cobs_decode(b"\x01\x00") is None  # a zero inside
