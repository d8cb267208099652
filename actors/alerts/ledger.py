"""What an alert log holds, per origin server, and so what it must ask a peer for — pure
bookkeeping, no files and no bus (actors/alertlog.py does those).

Every alert is named by (origin, n); an origin numbers its own alerts consecutively, with a jump
at each start of its log (numbers restart from the clock, so a restored snapshot never reuses
old ones). Per origin the ledger keeps:

- `held`: every n the log's files hold now (exact: a record is stored once);
- `mark`: every record of that origin with a number up to the mark that still exists anywhere
  is held — consecutive arrivals advance it; so does a peer's complete answer (`adopt`): it
  held everything up to its own mark and sent whatever of that this log lacked. An origin never
  heard of starts at 0: a new server fetches the whole history the others hold;
- so the only records this log may lack are above its mark and not among those it holds there
  (`ahead`). A request says both (`request`); the answering peer sends exactly the records it
  holds that the request does not cover (`wanted`) — nothing at all, without reading a file,
  when the requester has everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

AHEAD_SENT = 2000  # numbers above a mark a request lists per origin (more are merely re-sent)


class Ledger:
    def __init__(self) -> None:
        self.held: dict[str, set[int]] = {}
        self.marks: dict[str, int] = {}

    def holds(self, origin: str, n: int) -> bool:
        return n in self.held.get(origin, ())

    def high(self, origin: str) -> int:
        held = self.held.get(origin)
        return max(held) if held else 0

    def add(self, origin: str, n: int) -> bool:
        """Note a record now stored; False when it was held already."""
        held = self.held.setdefault(origin, set())
        if n in held:
            return False
        held.add(n)
        self._advance(origin)
        return True

    def start(self, marks: Mapping[str, int]) -> None:
        """After loading the files: the marks stored at the last sync (an origin without one
        starts at 0: what this log lacks of it is fetched, even what it once held and rotated
        out — better twice than never)."""
        for origin, mark in marks.items():
            if isinstance(origin, str) and isinstance(mark, int):
                self.marks[origin] = mark
        for origin in self.held:
            self._advance(origin)

    def forget(self, origin: str, numbers: Iterable[int]) -> None:
        """Records rotated out of the files: no longer held, and not to be fetched again (the
        mark stays: what fell off the end is gone for everyone)."""
        held = self.held.get(origin, set())
        held.difference_update(numbers)

    def adopt(self, marks: Mapping[str, int]) -> None:
        """A peer answered a request in full: up to its marks, nothing this log lacks exists."""
        for origin, mark in marks.items():
            if isinstance(mark, int) and mark > self.marks.get(origin, 0):
                self.marks[origin] = mark
                self._advance(origin)

    def _advance(self, origin: str) -> None:
        held, mark = self.held.get(origin, set()), self.marks.get(origin, 0)
        while mark + 1 in held:
            mark += 1
        self.marks[origin] = mark

    def ahead(self, origin: str) -> list[int]:
        mark = self.marks.get(origin, 0)
        return sorted(n for n in self.held.get(origin, ()) if n > mark)

    def request(self) -> dict[str, dict[str, object]]:
        """What a peer needs to know to send exactly what this log lacks."""
        ahead = {o: self.ahead(o)[-AHEAD_SENT:] for o in self.held}
        return {"marks": dict(self.marks), "ahead": {o: a for o, a in ahead.items() if a}}

    def wanted(
        self, marks: Mapping[str, int], ahead: Mapping[str, Iterable[int]]
    ) -> dict[str, list[int]]:
        """Per origin, the numbers held here that a requester with these marks and these
        numbers above them lacks (ascending)."""
        out: dict[str, list[int]] = {}
        for origin, held in self.held.items():
            mark = marks.get(origin, 0)
            has = set(ahead.get(origin, ()))
            lacks = sorted(n for n in held if n > mark and n not in has)
            if lacks:
                out[origin] = lacks
        return out
