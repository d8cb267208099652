"""`[timing]`: the heartbeat timing profile and explicit overrides (DESIGN.md §9).

A profile (`default`, `fast`, `classic`) gives the heartbeat interval and timeout; values written
in the file override it. The interval must be shorter than the timeout; a timeout below three
intervals is allowed with a warning.
"""

from __future__ import annotations

from config import defaults as d
from config.durations import format_duration
from config.model import Timing
from config.reader import Reader


def read_timing(top: Reader) -> Timing:
    r = top.optional("timing")
    profile = r.choice("profile", tuple(d.TIMING_PROFILES), d.DEFAULT_PROFILE)
    profile_interval, profile_timeout = d.TIMING_PROFILES[profile]
    interval = r.duration("heartbeat_interval", None, d.HEARTBEAT_INTERVAL_RANGE)
    timeout = r.duration("heartbeat_timeout", None, d.HEARTBEAT_TIMEOUT_RANGE)
    broken = (r.has("heartbeat_interval") and interval is None) or (
        r.has("heartbeat_timeout") and timeout is None
    )
    startup_wait = r.duration("startup_wait", d.STARTUP_WAIT, d.STARTUP_WAIT_RANGE)
    delay_warning = r.integer(
        "heartbeat_delay_warning", d.HEARTBEAT_DELAY_WARNING, d.HEARTBEAT_DELAY_WARNING_RANGE
    )
    r.finish()
    timing = Timing(
        profile=profile,
        heartbeat_interval=profile_interval if interval is None else interval,
        heartbeat_timeout=profile_timeout if timeout is None else timeout,
        startup_wait=startup_wait,
        heartbeat_delay_warning=delay_warning,
    )
    if not broken:
        check_ratio(
            r,
            ("heartbeat_interval", timing.heartbeat_interval, interval is None),
            ("heartbeat_timeout", timing.heartbeat_timeout, timeout is None),
            f'from profile "{profile}"',
            d.HEARTBEAT_SAFE_RATIO,
        )
    return timing


def check_ratio(r: Reader, short: tuple, long: tuple, origin: str, ratio: int) -> None:
    """Refuse `short` >= `long` (an interval and its timeout); warn below `ratio` x.

    Each of `short`/`long` is (key, seconds, came_from_default). The issue goes to the key the
    person wrote (the interval when both are written)."""
    (s_key, s_val, s_default), (l_key, l_val, l_default) = short, long

    def shown(value: float, from_default: bool) -> str:
        return format_duration(value) + (f", {origin}" if from_default else "")

    key = l_key if s_default and not l_default else s_key
    if s_val >= l_val:
        r.error(
            key,
            f"{s_key} ({shown(s_val, s_default)}) must be shorter than "
            f"{l_key} ({shown(l_val, l_default)})",
        )
    elif l_val < ratio * s_val:
        r.warning(
            key,
            f"{l_key} ({format_duration(l_val)}) is less than {ratio} x {s_key} "
            f"({format_duration(s_val)}): one late beat may be taken for a failure",
        )
