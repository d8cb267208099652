import pytest

from supervisor.child import BadTransition, Child, ChildState
from supervisor.intensity import RestartIntensity, backoff_delay
from supervisor.spec import ChildSpec


def test_intensity_allows_r_restarts_in_t_seconds() -> None:
    r = RestartIntensity(max_restarts=3, window=10.0)
    assert [r.record(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert r.record(3.0) is False  # the fourth within 10 s escalates


def test_intensity_window_slides() -> None:
    r = RestartIntensity(max_restarts=2, window=10.0)
    assert r.record(0.0) and r.record(5.0)
    assert r.record(10.5)  # the restart at 0.0 has left the window
    assert r.recent == 2
    assert not r.record(11.0)


def test_backoff_doubles_to_a_ceiling() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3, 4, 5)] == [0.0, 0.1, 0.2, 0.4, 0.8]
    assert backoff_delay(50) == 5.0


def test_child_transitions_are_guarded() -> None:
    child = Child(ChildSpec("a", "echo"), RestartIntensity(1, 1))
    child.transition(ChildState.STARTING)
    child.transition(ChildState.RUNNING)
    with pytest.raises(BadTransition):
        child.transition(ChildState.STARTING)  # running → starting skips the exit
    assert child.since > 0
