"""Counts of what a receiver dropped, by reason, so bad input is visible rather than silent."""

from __future__ import annotations

from collections import Counter


class DropCounter:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def drop(self, reason: str) -> None:
        self._counts[reason] += 1

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(self._counts)
