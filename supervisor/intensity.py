"""Restart intensity (at most R restarts in T seconds, as OTP) and back-off between restarts.

Monotonic time only; the caller passes `now` so the logic is a pure, testable function of time.
"""

from __future__ import annotations

from collections import deque


class RestartIntensity:
    def __init__(self, max_restarts: int, window: float) -> None:
        self.max_restarts = max_restarts
        self.window = window
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Record a restart at `now`; False when it exceeds the intensity (escalate instead)."""
        self._times.append(now)
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return len(self._times) <= self.max_restarts

    @property
    def recent(self) -> int:
        return len(self._times)


def backoff_delay(recent_restarts: int, base: float = 0.1, ceiling: float = 5.0) -> float:
    """No delay for the first restart in the window (a lone crash costs no time: a heartbeat actor
    must be back at once), then 0.1 s doubling for each further one, at most 5 s."""
    if recent_restarts <= 1:
        return 0.0
    return min(ceiling, base * (2 ** (recent_restarts - 2)))
