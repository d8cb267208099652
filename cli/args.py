"""Argument types shared by commands, so bad values get argparse's one-line error."""

from __future__ import annotations

import argparse
import math

MAX_WAIT = 7 * 24 * 3600.0


def seconds(text: str) -> float:
    """A wait in seconds: a finite number from 0 to a week."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_WAIT:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds from 0 to {MAX_WAIT:g}")
    return value


def count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more")
    return value
