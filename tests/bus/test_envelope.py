import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus import envelope
from bus.envelope import Envelope, EnvelopeError

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
envelopes = st.builds(
    Envelope,
    topic=st.text(min_size=1, max_size=100),
    sender=st.builds(lambda a, b: f"{a}/{b}", st.text(max_size=300), st.text(max_size=50)),
    seq=st.integers(0, 2**63),
    time=st.floats(0, 4e9),
    body=st.dictionaries(st.text(max_size=20), values, max_size=8),
)


@given(envelopes)
def test_round_trip(env: Envelope) -> None:
    assert envelope.decode(envelope.encode(env)) == env
    assert envelope.decode_multipart(envelope.to_multipart(env)) == env


@given(st.binary(max_size=2000))
def test_garbage_never_raises_anything_but_envelope_error(frame: bytes) -> None:
    try:
        envelope.decode(frame)
    except EnvelopeError:
        pass


@given(st.lists(values, min_size=0, max_size=8))
def test_wrong_shapes_are_refused(fields: list) -> None:
    frame = msgpack.packb(fields, use_bin_type=True)
    try:
        env = envelope.decode(frame)
    except EnvelopeError:
        return
    assert isinstance(env, Envelope)


def test_oversized_frame_is_refused_before_unpacking() -> None:
    env = envelope.make("t", "s/a", 1, {"x": "y" * 100})
    with pytest.raises(EnvelopeError, match="too large"):
        envelope.decode(envelope.encode(env), max_bytes=50)


@pytest.mark.parametrize(
    "fields, reason",
    [
        ([2, "t", "s/a", 1, 0.0, {}], "version"),
        ([1, "", "s/a", 1, 0.0, {}], "topic"),
        ([1, "t", "noslash", 1, 0.0, {}], "sender"),
        ([1, "t", "s/a", -1, 0.0, {}], "sequence"),
        ([1, "t", "s/a", True, 0.0, {}], "sequence"),
        ([1, "t", "s/a", 1, "now", {}], "timestamp"),
        ([1, "t", "s/a", 1, 0.0, []], "body"),
        ([1, "t", "s/a", 1, 0.0], "6-field"),
    ],
)
def test_each_bad_field_is_named(fields: list, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        envelope.decode(msgpack.packb(fields))


def test_topic_frame_must_match_envelope() -> None:
    env = envelope.make("a.b", "s/a", 1)
    with pytest.raises(EnvelopeError, match="topic frame"):
        envelope.decode_multipart([b"a.c", envelope.encode(env)])


def test_sender_parts() -> None:
    env = envelope.make("t", "server one/echo", 1)
    assert (env.server, env.actor) == ("server one", "echo")


def test_float_version_and_extension_types_are_refused() -> None:
    with pytest.raises(EnvelopeError, match="version"):
        envelope.decode(msgpack.packb([1.0, "t", "s/a", 1, 0.0, {}]))
    with pytest.raises(EnvelopeError):
        envelope.decode(msgpack.packb([1, "t", "s/a", 1, 0.0, {"x": msgpack.ExtType(5, b"a")}]))
    env = envelope.decode(msgpack.packb([1, "t", "s/a", 1, 0.0, {"x": msgpack.Timestamp(7, 0)}]))
    assert env.body == {"x": 7.0}  # a timestamp extension arrives as plain seconds
