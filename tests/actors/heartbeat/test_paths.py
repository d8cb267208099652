"""A peer's state on one path, on synthetic timelines (pure: no sleeping)."""

from actors.heartbeat.paths import PathState, PathTracker

N, C, E, U = PathState.NORMAL, PathState.CAUTION, PathState.ERROR, PathState.UNKNOWN


def states(tracker: PathTracker, events: list[tuple[float, str]]) -> list[PathState]:
    out = []
    for now, what in events:
        change = tracker.beat(now) if what == "beat" else tracker.check(now)
        if change:
            out.append(change.state)
    return out


def test_down_exactly_at_the_timeout_never_before() -> None:
    t = PathTracker("p", timeout=2.0, delay_share=0.5, now=0.0)
    assert states(t, [(0.1, "beat"), (2.0999, "check")]) == [N, C]
    assert t.state is C
    assert t.check(2.1).state is E  # silent for exactly the timeout


def test_late_beat_is_a_caution_then_normal_again() -> None:
    t = PathTracker("p", timeout=2.0, delay_share=0.5, now=0.0)
    assert states(t, [(0.0, "beat"), (1.2, "check"), (1.3, "beat"), (1.5, "check")]) == [N, C, N]


def test_never_heard_peer_is_unknown_then_error() -> None:
    t = PathTracker("p", timeout=2.0, delay_share=0.5, now=10.0)
    assert t.check(11.5) is None and t.state is U  # no caution for a peer never heard
    change = t.check(12.0)
    assert change.state is E and change.previous is U


def test_restored_after_error() -> None:
    t = PathTracker("p", timeout=1.0, delay_share=0.5, now=0.0)
    assert states(t, [(0.0, "beat"), (5.0, "check"), (5.5, "beat")]) == [N, E, N]
    assert t.beats == 2


def test_regular_beats_cause_no_changes() -> None:
    t = PathTracker("p", timeout=0.2, delay_share=0.5, now=0.0)
    events = [(i * 0.04, "beat") for i in range(1, 100)] + [
        (i * 0.04 + 0.02, "check") for i in range(99)
    ]
    assert states(t, sorted(events)) == [N]


def test_our_own_absence_is_not_the_peers_silence() -> None:
    t = PathTracker("p", timeout=0.6, delay_share=0.5, now=0.0)
    t.beat(1.0)
    # We were stopped from 1.05 to 1.65; the peer's frames wait in our socket buffer.
    t.forgive(0.6)
    assert t.check(1.65) is None and t.state is N
    assert t.check(2.19).state is C  # 0.59 s of silence while we ran: late, not yet lost
    assert t.check(2.2).state is E
