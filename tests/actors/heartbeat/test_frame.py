import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.heartbeat import frame
from actors.heartbeat.frame import Beat, FrameError, ReplayGuard

KEY = bytes(range(32))


def beat(seq: int = 1, incarnation: int = 7, sender: str = "node1") -> Beat:
    return Beat(sender, incarnation, seq, {"node": "running"})


@given(
    st.text(min_size=1, max_size=250),  # up to 1,000 UTF-8 bytes: server names may be long
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.dictionaries(
        st.text(max_size=10), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20), max_size=5
    ),
)
def test_round_trip(sender: str, incarnation: int, seq: int, status: dict) -> None:
    b = Beat(sender, incarnation, seq, status)
    assert frame.decode(KEY, frame.encode(KEY, b)) == b


@given(st.binary(max_size=2000))
def test_garbage_is_refused_never_raised_otherwise(data: bytes) -> None:
    with pytest.raises(FrameError):
        frame.decode(KEY, data)


def test_another_key_is_forged() -> None:
    data = frame.encode(bytes(32), beat())
    with pytest.raises(FrameError, match="forged"):
        frame.decode(KEY, data)


@pytest.mark.parametrize("position", [4, 6, 14, 22, 25, -40, -1])
def test_any_flipped_bit_is_refused(position: int) -> None:
    data = bytearray(frame.encode(KEY, beat()))
    data[position] ^= 0x01
    with pytest.raises(FrameError):
        frame.decode(KEY, bytes(data))


def test_portable_big_endian_header() -> None:
    data = frame.encode(KEY, beat(seq=0x0102030405060708, incarnation=0x1112131415161718))
    assert data[:4] == b"HVHB"
    assert struct.unpack("!QQ", data[6:22]) == (0x1112131415161718, 0x0102030405060708)


def test_authentic_but_malformed_lengths_are_refused() -> None:
    import hashlib
    import hmac

    body = bytearray(frame.encode(KEY, beat())[: -frame.MAC_BYTES])
    body[22:24] = struct.pack("!H", 900)  # sender length beyond the frame
    forged_ok = bytes(body) + hmac.digest(KEY, bytes(body), hashlib.sha256)
    with pytest.raises(FrameError, match="malformed"):
        frame.decode(KEY, forged_ok)


def test_replay_guard_orders_by_incarnation_then_sequence() -> None:
    g = ReplayGuard()
    assert g.accept(beat(seq=1))
    assert g.accept(beat(seq=2))
    assert not g.accept(beat(seq=2))  # the same frame again
    assert not g.accept(beat(seq=1))  # an older one
    assert g.accept(beat(seq=1, incarnation=8))  # the sender restarted
    assert not g.accept(beat(seq=99, incarnation=7))  # a recording of its previous life
    assert g.accept(beat(seq=1, sender="node2"))  # senders are independent
