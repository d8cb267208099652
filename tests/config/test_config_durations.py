"""Duration strings: units required, no leading zeros, float seconds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5), ("3s", 3.0), ("2m", 120.0), ("1h", 3600.0), ("0s", 0.0), ("0ms", 0.0),
        ("1.5s", 1.5), ("0.25s", 0.25), ("40ms", 0.04), ("90s", 90.0), ("10s", 10.0),
    ],
)  # fmt: skip
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("010s", 'has a leading zero; write "10s"'),
        ("00s", 'has a leading zero; write "0s"'),
        ("3", "is not a duration"),
        ("3 s", "is not a duration"),
        ("3S", "is not a duration"),
        ("3sec", 'unknown unit "sec"'),
        ("1d", 'unknown unit "d"'),
        (".5s", "is not a duration"),
        ("1e3ms", "is not a duration"),
        ("-1s", "is not a duration"),
        ("", "is not a duration"),
        ("9999999999999s", "too large"),
        (3, "a duration is a string with a unit"),
    ],
)
def test_refused(value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "500ms"), (3.0, "3s"), (120.0, "2m"), (3600.0, "1h"), (1.5, "1500ms"), (90.0, "90s")],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from(["ms", "s", "m", "h"]))
def test_format_round_trips(number: int, unit: str) -> None:
    seconds = parse_duration(f"{number}{unit}")
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@given(st.text(max_size=20))
def test_parse_raises_only_value_error(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ValueError:
        pass
