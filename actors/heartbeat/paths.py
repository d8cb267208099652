"""The state of one peer on one heartbeat path, from the times its beats arrive (monotonic).

The original's words: `normal`; `caution` once the next beat is later than the delay-warning
share of the timeout (the delay warning); `error` once the peer has been silent for the whole
timeout (the path is lost); back to `normal` at the next good beat. A peer never heard from is
`unknown` until the timeout has passed since we started listening, then `error`.
Pure: the caller passes `now`, so timelines are tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PathState(StrEnum):
    UNKNOWN = "unknown"
    NORMAL = "normal"
    CAUTION = "caution"
    ERROR = "error"


@dataclass(frozen=True)
class Change:
    peer: str
    state: PathState
    previous: PathState
    silent_for: float  # seconds since the previous beat (or since listening began)


class PathTracker:
    def __init__(self, peer: str, timeout: float, delay_share: float, now: float) -> None:
        self.peer = peer
        self.timeout = timeout
        self.caution_after = timeout * delay_share
        self.state = PathState.UNKNOWN
        self.listening_since = now
        self.last_beat: float | None = None
        self.beats = 0

    def _reference(self) -> float:
        return self.listening_since if self.last_beat is None else self.last_beat

    def beat(self, now: float) -> Change | None:
        silent = now - self._reference()
        self.last_beat = now
        self.beats += 1
        return self._move(PathState.NORMAL, silent)

    def check(self, now: float) -> Change | None:
        silent = now - self._reference()
        if silent >= self.timeout:
            return self._move(PathState.ERROR, silent)
        if silent > self.caution_after and self.state is PathState.NORMAL:
            return self._move(PathState.CAUTION, silent)
        return None

    def forgive(self, seconds: float) -> None:
        """We were not running for `seconds` (our own process was stalled): that time is not
        the peer's silence."""
        if self.last_beat is None:
            self.listening_since += seconds
        else:
            self.last_beat += seconds

    def silent_for(self, now: float) -> float:
        return now - self._reference()

    def _move(self, new: PathState, silent: float) -> Change | None:
        if new is self.state:
            return None
        previous, self.state = self.state, new
        return Change(self.peer, new, previous, silent)
