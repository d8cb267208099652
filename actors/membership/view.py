"""The membership view as a pure function of heartbeat path states and time (monotonic).

A server is `offline` only when every heartbeat path to it is in `error` (silent for the whole
heartbeat timeout); it is `online` again after its first good beat on any path plus a settle
time, so a flapping path does not flap the server. `unknown` until first heard or given up on.
Every change of a server's state raises the view's epoch. The caller feeds path changes and
calls `tick(now)`; both return the events to publish, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ALIVE = ("normal", "caution")


class ServerState(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Event:
    """Something to publish: a view change or an alert (kind, level, details)."""

    kind: str  # server_up | server_down | path_lost | path_restored | delay_warning | one_path_left
    level: str  # info | warning | error
    server: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Peer:
    paths: dict[str, str]
    state: ServerState = ServerState.UNKNOWN
    alive_since: float | None = None  # when a path came alive while not online (settling)
    one_path_alerted: bool = False
    fenced: bool = False  # offline and, by NP resolution's timing rule, surely stopped


class MembershipView:
    def __init__(self, me: str, peers: dict[str, list[str]], settle: float, epoch: int = 0) -> None:
        """`peers`: each other server and the heartbeats that reach it; `epoch`: where the
        previous incarnation of the view stopped (the epoch only ever increases)."""
        self.me = me
        self.settle = settle
        self.epoch = epoch
        self.peers = {s: _Peer({hb: "unknown" for hb in hbs}) for s, hbs in peers.items()}

    def path_changed(self, server: str, heartbeat: str, state: str, now: float) -> list[Event]:
        peer = self.peers.get(server)
        if peer is None or heartbeat not in peer.paths:
            return []
        previous = peer.paths[heartbeat]
        peer.paths[heartbeat] = state
        events = []
        where = {"heartbeat": heartbeat}
        if state == "error" and previous != "error":
            events.append(Event("path_lost", "warning", server, where))
        elif previous == "error" and state in ALIVE:
            events.append(Event("path_restored", "info", server, where))
        if state == "caution" and previous == "normal":
            events.append(Event("delay_warning", "warning", server, where))
        events += self._one_path_left(server, peer)
        return events + self._fold(server, peer, now)

    def tick(self, now: float) -> list[Event]:
        events: list[Event] = []
        for server, peer in self.peers.items():
            events += self._fold(server, peer, now)
        return events

    def _one_path_left(self, server: str, peer: _Peer) -> list[Event]:
        alive = [hb for hb, s in peer.paths.items() if s in ALIVE]
        lost = any(s == "error" for s in peer.paths.values())  # not merely unheard yet
        if lost and len(alive) == 1 and not peer.one_path_alerted:
            peer.one_path_alerted = True
            return [Event("one_path_left", "warning", server, {"heartbeat": alive[0]})]
        if len(alive) != 1:
            peer.one_path_alerted = False
        return []

    def _fold(self, server: str, peer: _Peer, now: float) -> list[Event]:
        states = set(peer.paths.values())
        if states & set(ALIVE):
            if peer.state is ServerState.ONLINE:
                return []
            if peer.alive_since is None:
                peer.alive_since = now
            if now - peer.alive_since < self.settle and peer.state is ServerState.OFFLINE:
                return []  # back, but not settled yet
            return self._move(server, peer, ServerState.ONLINE, "server_up", "info")
        peer.alive_since = None
        if states == {"error"}:
            return self._move(server, peer, ServerState.OFFLINE, "server_down", "error")
        return []  # some path still unknown: not enough to say

    def _move(self, server: str, peer: _Peer, new: ServerState, kind: str, level: str):
        if peer.state is new:
            return []
        previous, peer.state = peer.state, new
        peer.fenced = False
        self.epoch += 1
        return [Event(kind, level, server, {"previous": str(previous), "epoch": self.epoch})]

    def online(self) -> list[str]:
        return [s for s, p in self.peers.items() if p.state is ServerState.ONLINE]

    def mark_fenced(self, server: str) -> bool:
        """Record that an offline server has surely fenced itself (False if it is back)."""
        peer = self.peers.get(server)
        if peer is None or peer.state is not ServerState.OFFLINE or peer.fenced:
            return False
        peer.fenced = True
        self.epoch += 1
        return True

    def snapshot(self) -> dict[str, Any]:
        servers = {self.me: {"state": "online", "heartbeats": {}, "fenced": False}}
        for server, peer in self.peers.items():
            servers[server] = {
                "state": str(peer.state),
                "heartbeats": dict(peer.paths),
                "fenced": peer.fenced,
            }
        return {"epoch": self.epoch, "me": self.me, "servers": servers}
