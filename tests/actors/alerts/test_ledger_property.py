"""The alert-log ledger under arbitrary histories: servers raise alerts (their numbers jumping at
each restart), live copies are lost at random, servers restart, pairs sync. Whatever happened,
once every server has synced with every other, every server holds every alert exactly once."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.alerts.ledger import Ledger

SERVERS = ("a", "b", "c")


class Server:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ledger = Ledger()
        self.stored: list[tuple[str, int]] = []  # the log file, in arrival order
        self.saved_marks: dict[str, int] = {}
        self.next = 1_000

    def store(self, origin: str, n: int) -> bool:
        if self.ledger.holds(origin, n):
            return False
        self.stored.append((origin, n))
        self.ledger.add(origin, n)
        return True

    def raise_alert(self) -> tuple[str, int]:
        n, self.next = self.next, self.next + 1
        self.store(self.name, n)
        self.ledger.adopt({self.name: n})
        return (self.name, n)

    def restart(self, jump: int) -> None:
        """The actor starts again from its file: numbering jumps, marks from the stored ones."""
        self.ledger = Ledger()
        for origin, n in self.stored:
            self.ledger.add(origin, n)
        self.ledger.start(self.saved_marks)
        self.ledger.adopt({self.name: self.ledger.high(self.name)})
        self.next = max(self.ledger.high(self.name) + 1, self.next + jump)


def sync(asker: Server, peer: Server, page: int) -> None:
    """alertlog._sync against alertlog._since, with pages of `page` records."""
    first_marks = None
    while True:
        request = asker.ledger.request()
        wanted = peer.ledger.wanted(request["marks"], request["ahead"])
        if first_marks is None:
            first_marks = dict(peer.ledger.marks)
        keys = sorted((o, n) for o, ns in wanted.items() for n in ns)
        new = sum(asker.store(o, n) for o, n in keys[:page] if o != asker.name)
        if len(keys) <= page:
            break
        assert new, "a page that brings nothing new would stop the sync"
    asker.ledger.adopt({o: m for o, m in first_marks.items() if o != asker.name})
    asker.saved_marks = dict(asker.ledger.marks)


step = st.one_of(
    st.tuples(st.just("raise"), st.sampled_from(SERVERS), st.sets(st.sampled_from(SERVERS))),
    st.tuples(st.just("restart"), st.sampled_from(SERVERS), st.integers(1, 10_000)),
    st.tuples(st.just("sync"), st.sampled_from(SERVERS), st.sampled_from(SERVERS)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60), st.integers(1, 5))
def test_every_server_ends_with_every_alert_once(history, page):
    servers = {s: Server(s) for s in SERVERS}
    raised = set()
    for op, who, arg in history:
        if op == "raise":
            alert = servers[who].raise_alert()
            raised.add(alert)
            for peer in arg - {who}:  # the live copies that got through
                servers[peer].store(*alert)
        elif op == "restart":
            servers[who].restart(arg)
        elif who != arg:
            sync(servers[who], servers[arg], page)
        for s in servers.values():
            assert len(s.stored) == len(set(s.stored)), "an alert stored twice"
    for asker, peer in itertools.permutations(SERVERS, 2):
        sync(servers[asker], servers[peer], page)
    for s in servers.values():
        assert set(s.stored) == raised, s.name
        # and nothing more is asked of anyone
        for peer in servers.values():
            request = s.ledger.request()
            assert peer.ledger.wanted(request["marks"], request["ahead"]) == {}
