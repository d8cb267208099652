"""The heartbeat timings derived from the interval and timeout, in one place: the heartbeat
actors use them, and the fencing wait (actors/membership/resolution.py) depends on them."""

from __future__ import annotations


def check_period(interval: float, timeout: float) -> float:
    """How often a heartbeat actor looks at its paths."""
    return max(0.005, min(interval, timeout / 10))


def stall_after(interval: float, timeout: float) -> float:
    """Our own frames stopped this long: a peer may have declared us dead. A margin of one
    interval below the timeout (arrival gaps can exceed send gaps by the network's jitter), and
    never under 1.5 intervals, or a timeout below three intervals would see stalls all the time."""
    return max(timeout - interval, 1.5 * interval)
