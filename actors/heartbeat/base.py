"""What every heartbeat actor does, whatever carries its frames (UDP, a serial line, a disk slot).

A subclass only moves bytes: `open_path` (sockets, devices; raise to fail the start),
`transmit(data)` (one frame to every peer, counting `sent` / `send_errors`), `close_path` (every fd;
safe to call twice or before `open_path`), and hands each received frame to `_on_frame(data,
source, at)`. Everything else is here, once:

- one frame per interval (see `frame.py`), the same bytes for every peer: the sender's status
  names the heartbeat (a frame recorded on one path is refused on another) and lists, by server
  position, the peers it has lost on this path — with a one-way loss the side whose frames are
  lost learns from the other's that it has been declared dead (`deaf` in the events);
- a `PathTracker` per peer, checked every `check_period`;
- drops counted by reason: garbage, forged (another key), replayed, unknown sender, our own frame,
  a frame from the wrong source (`wrong_source`: what the path knows of the sender, e.g. its
  address or slot, does not match the frame), another heartbeat's frame;
- our own stalls: time this actor was not running never counts as a peer's silence, and when our
  frames stopped for (nearly) a timeout, `hbstall.<heartbeat>` says the peers may have declared us
  dead — membership fences the node when every heartbeat reports it;
- the incarnation (larger at every start, so a restarted sender is not taken for a replay);
- requests `paths` (every peer's state now) and `stats` (frame counters, plus `path_stats()`).

Events: `hb.<heartbeat>.<peer>` on every change of a peer's path state (`unknown|normal|caution|
error`, body: state, previous, silent_for, heartbeat, peer, deaf, and with a frame seq,
incarnation, status).
"""

from __future__ import annotations

import os
import time
from typing import Any

from actors import exitcodes
from actors.base import Actor
from actors.counter_file import next_counter
from actors.heartbeat import frame
from actors.heartbeat.frame import Beat, FrameError, ReplayGuard
from actors.heartbeat.paths import Change, PathState, PathTracker
from actors.heartbeat.realtime import request_realtime
from actors.heartbeat.timing import check_period, stall_after
from bus import topics
from bus.counters import DropCounter
from bus.rpc import Handler
from config.clusterkey import ClusterKeyError, load_cluster_key


class HeartbeatActor(Actor):
    wrong_source = "wrong source address"  # the drop reason when `from_source` says no

    async def on_start(self) -> None:
        a = self.args
        self.heartbeat: str = a["heartbeat"]
        self.server = self.ctx.launch.server
        self.index = int(a["index"])  # this server's position in the cluster's server list
        self.interval = float(a["interval"])
        self.timeout = float(a["timeout"])
        try:
            self.key = load_cluster_key(a["key_file"])
        except ClusterKeyError as exc:
            self.log.error("cannot start the heartbeat", error=str(exc))
            self.stop(exitcodes.FATAL)  # restarting will not make a key appear
            return
        self.peers: dict[str, int] = {name: int(pos) for name, pos in a["peers"].items()}
        self.dropped = DropCounter()
        self.received = self.accepted = self.sent = self.send_errors = 0
        self.guard = ReplayGuard()
        self.deaf_peers: dict[str, bool] = {}
        state_file = os.path.join(self.ctx.paths.state_dir, "hb", f"{self.name}.incarnation")
        self.incarnation = next_counter(state_file)
        self.seq = 0
        self.priority = request_realtime(self.log)
        self.check_period = check_period(self.interval, self.timeout)
        self.stall_after = stall_after(self.interval, self.timeout)
        self.stall_reported_for = 0.0  # the last_send a stall was reported for (report once)
        self.last_send = _boottime()  # counts time suspended too: the peers' clocks did run
        self.last_turn = time.monotonic()  # when this actor last ran (to notice our own stalls)
        share = float(a.get("delay_warning", 50)) / 100
        self.trackers = {
            peer: PathTracker(peer, self.timeout, share, self.last_turn) for peer in self.peers
        }
        await self.open_path()
        self.every("send", self.interval)
        self.every("check", self.check_period)
        self._send()
        self.log.info(
            "heartbeat started",
            heartbeat=self.heartbeat,
            peers=list(self.peers),
            incarnation=self.incarnation,
            **self.priority,
        )

    # the path: overridden by every kind ----------------------------------------------------------
    async def open_path(self) -> None:
        raise NotImplementedError

    def transmit(self, data: bytes) -> None:
        """Send one frame to every peer (never blocks; counts `sent` and `send_errors`)."""
        raise NotImplementedError

    def close_path(self) -> None:
        raise NotImplementedError

    def poll(self, now: float) -> None:
        """Called every check period before the trackers are checked (paths that must fetch)."""

    def from_source(self, sender: str, source: Any) -> bool:
        """Does what the path knows of where the frame came from (`source`) fit its sender?"""
        return True

    def path_stats(self) -> dict[str, Any]:
        return {}

    # lifecycle -----------------------------------------------------------------------------------
    async def on_timer(self, name: str) -> None:
        now = time.monotonic()
        self._notice_stall(now)
        if name == "send":
            self._send()
        else:
            self.poll(now)
            for tracker in self.trackers.values():
                self._report(tracker.check(now), None)

    async def on_stop(self) -> None:
        self.close_path()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        self.close_path()

    def requests(self) -> dict[str, Handler]:
        return {"paths": self._paths, "stats": self._stats}

    def _notice_stall(self, now: float) -> None:
        """Called first in every callback. Our own absence is not the peers' silence; and if our
        frames stopped for at least timeout - interval, a peer may have declared us dead (its
        frames' arrival gaps can exceed our send gaps by the path's jitter: hence the interval's
        margin — a needless stand-down is safe, a missed one is not)."""
        gap, self.last_turn = now - self.last_turn, now
        if gap > 2 * self.check_period:
            for tracker in self.trackers.values():
                tracker.forgive(gap - self.check_period)
        silent = _boottime() - self.last_send
        if silent >= self.stall_after and self.stall_reported_for != self.last_send:
            self.stall_reported_for = self.last_send
            self.log.error("this server's heartbeat was stalled", frames_stopped_for=silent)
            self.publish(
                topics.heartbeat_stall(self.heartbeat),
                {"heartbeat": self.heartbeat, "stalled_for": round(silent, 3)},
            )

    # sending -------------------------------------------------------------------------------------
    def _send(self) -> None:
        """One frame for every peer. `last_send` is when we tried: a path that cannot carry the
        frame (no route, a hung disk) shows as silence at the peers, not as our own stall."""
        self.last_send = _boottime()
        self.seq += 1
        lost = sorted(self.peers[p] for p, t in self.trackers.items() if t.state is PathState.ERROR)
        status = {"node": "running", "hb": self.heartbeat, "lost": lost}
        self.transmit(frame.encode(self.key, Beat(self.server, self.incarnation, self.seq, status)))

    # receiving -----------------------------------------------------------------------------------
    def _on_frame(self, data: bytes, source: Any = None, at: float | None = None) -> None:
        """One received frame; `at` is when it was surely there (monotonic; default now)."""
        self.received += 1
        try:
            beat = frame.decode(self.key, data)
        except FrameError as exc:
            self.dropped.drop(str(exc))
            return
        if beat.sender == self.server:
            self.dropped.drop("own frame")
            return
        tracker = self.trackers.get(beat.sender)
        if tracker is None:
            self.dropped.drop("unknown sender")
            return
        if not self.from_source(beat.sender, source):
            self.dropped.drop(self.wrong_source)
            return
        if beat.status.get("hb") != self.heartbeat:
            self.dropped.drop("another heartbeat's frame")
            return
        if not self.guard.accept(beat):
            self.dropped.drop("replayed")
            return
        self.accepted += 1
        change = tracker.beat(time.monotonic() if at is None else at)
        lost = beat.status.get("lost")
        deaf = isinstance(lost, list) and self.index in lost  # the peer has lost us on this path
        if deaf != self.deaf_peers.get(beat.sender, False):
            self.deaf_peers[beat.sender] = deaf
            if change is None:  # no change of ours to report it with: report it alone
                change = Change(beat.sender, tracker.state, tracker.state, 0.0)
        self._report(change, beat)

    def _report(self, change: Change | None, beat: Beat | None) -> None:
        if change is None:
            return
        body: dict[str, Any] = {
            "state": str(change.state),
            "previous": str(change.previous),
            "silent_for": round(change.silent_for, 4),
            "heartbeat": self.heartbeat,
            "peer": change.peer,
            "deaf": self.deaf_peers.get(change.peer, False),  # it no longer hears us here
        }
        if beat is not None:
            body.update(seq=beat.seq, incarnation=beat.incarnation, status=beat.status)
        if change.state is PathState.ERROR:
            self.log.warning("heartbeat path lost", peer=change.peer, silent_for=body["silent_for"])
        elif change.previous is PathState.ERROR:
            self.log.info("heartbeat path restored", peer=change.peer)
        self.publish(topics.heartbeat_path(self.heartbeat, change.peer), body)

    # requests ------------------------------------------------------------------------------------
    def _paths(self, body: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        return {
            peer: {
                "state": str(t.state),
                "silent_for": round(t.silent_for(now), 4),
                "beats": t.beats,
            }
            for peer, t in self.trackers.items()
        }

    def _stats(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "send_errors": self.send_errors,
            "received": self.received,
            "accepted": self.accepted,
            "dropped": self.dropped.as_dict(),
            "incarnation": self.incarnation,
            **self.priority,
            **self.path_stats(),
        }


def _boottime() -> float:
    """Monotonic, and counting time the machine was suspended (CLOCK_MONOTONIC does not)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)
