"""LAN heartbeat (`lanhb`, and `lankhb`: the original's kernel-mode heartbeat, here the same UDP
heartbeat on its own port at real-time priority — robustness under load comes from scheduling,
not from a kernel module).

Every interval the actor sends an authenticated frame (see `frame.py`) to each peer's address on
its network, and it watches each peer's frames with a `PathTracker`. A frame that is garbage,
forged (wrong MAC: another cluster's key, or an attacker's), replayed, from an unknown sender, from
an address that is not that sender's, or our own, is dropped and counted — never raised.

Events: `hb.<heartbeat>.<peer>` on every change of a peer's path state
(`unknown|normal|caution|error`, body: state, previous, silent_for, seq, incarnation, status) or of
`deaf` (the peer's frames say it has lost ours on this path);
`hbstall.<heartbeat>` when this process itself was stalled (paused, starved) so long that its
frames stopped for (nearly) a timeout: the peers may have declared us dead — membership fences the
node when every heartbeat reports it. Time this actor was not running never counts as a peer's
silence;
requests: `paths` (every peer's state now) and `stats` (frame counters).
"""

from __future__ import annotations

import asyncio
import os
import socket
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

SO_PRIORITY_INTERACTIVE = 6  # the highest a process may set without CAP_NET_ADMIN


class LanHeartbeat(Actor):
    async def on_start(self) -> None:
        a = self.args
        self.heartbeat: str = a["heartbeat"]
        self.server = self.ctx.launch.server
        self.interval = float(a["interval"])
        self.timeout = float(a["timeout"])
        try:
            self.key = load_cluster_key(a["key_file"])
        except ClusterKeyError as exc:
            self.log.error("cannot start the heartbeat", error=str(exc))
            self.stop(exitcodes.FATAL)  # restarting will not make a key appear
            return
        self.peers: dict[str, tuple[str, int]] = {
            name: (address, int(a["port"])) for name, address in a["peers"].items()
        }
        self.peer_at = {address: name for name, (address, _) in self.peers.items()}
        self.dropped = DropCounter()
        self.received = self.accepted = self.sent = self.send_errors = 0
        self.guard = ReplayGuard()
        self.deaf_peers: dict[str, bool] = {}
        state_file = os.path.join(self.ctx.paths.state_dir, "hb", f"{self.name}.incarnation")
        self.incarnation = next_counter(state_file)
        self.seq = 0
        self.priority = request_realtime(self.log)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, SO_PRIORITY_INTERACTIVE)
        try:
            self.sock.bind((a["address"], int(a["port"])))
        except OSError as exc:
            self.sock.close()
            raise RuntimeError(f"cannot listen on {a['address']}:{a['port']}/udp: {exc}") from exc
        now = time.monotonic()
        self.last_turn = now  # when this actor last ran (to notice our own stalls)
        self.last_send = _boottime()  # counts time suspended too: the peers' clocks did run
        self.stall_reported_for = 0.0  # the last_send a stall was reported for (report once)
        self.check_period = check_period(self.interval, self.timeout)
        self.stall_after = stall_after(self.interval, self.timeout)
        share = float(a.get("delay_warning", 50)) / 100
        self.trackers = {peer: PathTracker(peer, self.timeout, share, now) for peer in self.peers}
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._on_readable)
        self.every("send", self.interval)
        self.every("check", self.check_period)
        self._send_all()
        self.log.info(
            "heartbeat started",
            heartbeat=self.heartbeat,
            peers=list(self.peers),
            incarnation=self.incarnation,
            **self.priority,
        )

    async def on_timer(self, name: str) -> None:
        now = time.monotonic()
        self._notice_stall(now)
        if name == "send":
            self._send_all()
        else:
            for tracker in self.trackers.values():
                self._report(tracker.check(now), None)

    def _notice_stall(self, now: float) -> None:
        """Called first in every callback. Our own absence is not the peers' silence; and if our
        frames stopped for at least timeout - interval, a peer may have declared us dead (its
        frames' arrival gaps can exceed our send gaps by the network's jitter: hence the
        interval's margin — a needless stand-down is safe, a missed one is not)."""
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

    async def on_stop(self) -> None:
        self._close()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        self._close()

    def requests(self) -> dict[str, Handler]:
        return {"paths": self._paths, "stats": self._stats}

    # sending -----------------------------------------------------------------------------------
    def _send_all(self) -> None:
        self.last_send = _boottime()
        self.seq += 1
        # The heartbeat's name is sealed in: a frame recorded on one path is refused on another.
        # Each peer is also told how we hear it: with a one-way loss, the side whose frames are
        # lost learns from the other's that it has been declared dead.
        for peer, address in self.peers.items():
            status = {
                "node": "running",
                "hb": self.heartbeat,
                "hears": str(self.trackers[peer].state),
            }
            data = frame.encode(self.key, Beat(self.server, self.incarnation, self.seq, status))
            try:
                self.sock.sendto(data, address)
                self.sent += 1
            except OSError:  # no route, buffer full: the peer's tracker will tell
                self.send_errors += 1

    # receiving ---------------------------------------------------------------------------------
    def _on_readable(self) -> None:
        self._notice_stall(time.monotonic())
        for _ in range(64):  # drain a burst, but never monopolise the loop
            try:
                data, (address, _port) = self.sock.recvfrom(frame.MAX_FRAME_BYTES + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.dropped.drop("receive error")
                return
            self.received += 1
            self._on_frame(data, address)

    def _on_frame(self, data: bytes, address: str) -> None:
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
        if self.peer_at.get(address) != beat.sender:
            self.dropped.drop("wrong source address")
            return
        if beat.status.get("hb") != self.heartbeat:
            self.dropped.drop("another heartbeat's frame")
            return
        if not self.guard.accept(beat):
            self.dropped.drop("replayed")
            return
        self.accepted += 1
        change = tracker.beat(time.monotonic())
        deaf = beat.status.get("hears") == "error"  # the peer has lost us on this path
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
        }

    def _close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None and sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()


def _boottime() -> float:
    """Monotonic, and counting time the machine was suspended (CLOCK_MONOTONIC does not)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)
