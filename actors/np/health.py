"""An NP resource's own health (`normal|error`, `unknown` before the first probe), shared by the
NP actors: every change is published as `np.<name>.result` and alerted (an error as a warning,
the recovery as info). Health is not a verdict: an NP resource in error between partitions is
shown and alerted, never a reason to stand down (SPEC §4, §12-43)."""

from __future__ import annotations

from typing import Any

from actors.base import Actor
from bus import topics


class NpHealth:
    def __init__(self, actor: Actor, np_name: str) -> None:
        self.actor = actor
        self.np_name = np_name
        self.state = "unknown"

    def update(self, problem: str | None, recovered: str, /, **details: Any) -> None:
        """`problem` None means healthy; `recovered` says what works again; `details` go into
        the event's body."""
        state = "normal" if problem is None else "error"
        if state == self.state:
            return
        previous, self.state = self.state, state
        self.actor.publish(
            topics.np_result(self.np_name),
            {"np": self.np_name, "state": state, "previous": previous, **details},
        )
        if problem is not None:
            self.actor.alert("np_error", np=self.np_name, problem=problem)
        elif previous == "error":
            self.actor.alert("np_recovered", np=self.np_name, recovered=recovered)
