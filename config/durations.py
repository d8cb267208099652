"""Durations as written in the configuration: number + unit, like `"500ms"`, `"3s"`, `"2m"`, `"1h"`.

A bare number is refused (is `3` seconds or milliseconds?), and so is a number with a leading zero
(`"010s"`), a trap of the original product's configuration tool. Decimals are allowed
(`"1.5s"`, `"0.25s"`). Values are converted to float seconds.
"""

from __future__ import annotations

import re

UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_DURATION = re.compile(r"(?P<int>[0-9]+)(?P<frac>\.[0-9]+)?(?P<unit>[a-z]+)")
EXAMPLE = '"500ms", "3s", "2m" or "1h"'


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError with a message a person can act on."""
    if not isinstance(text, str):
        raise ValueError(f"a duration is a string with a unit such as {EXAMPLE}")
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f'"{text}" is not a duration; write a number and a unit: {EXAMPLE}')
    digits, frac, unit = match["int"], match["frac"] or "", match["unit"]
    if unit not in UNITS:
        raise ValueError(f'"{text}" has an unknown unit "{unit}"; use ms, s, m or h')
    if len(digits) > 1 and digits.startswith("0"):
        fixed = (digits.lstrip("0") or "0") + frac + unit
        raise ValueError(f'"{text}" has a leading zero; write "{fixed}"')
    if len(digits) > 12:
        raise ValueError(f'"{text}" is too large')
    return float(digits + frac) * UNITS[unit]


def format_duration(seconds: float) -> str:
    """The shortest exact way to write `seconds` as a configuration duration."""
    for unit in ("h", "m", "s"):
        value = seconds / UNITS[unit]
        if value >= 1 and value == int(value):
            return f"{int(value)}{unit}"
    millis = round(seconds * 1000, 6)
    if millis == int(millis):
        return f"{int(millis)}ms"
    return f"{millis:g}ms"
