"""Disk heartbeat (`diskhb`): the heartbeat frame in a slot of a shared disk — a path that needs
none of the networks, only the disk every server sees.

Every interval this server writes its frame into its own slot (`diskslots.py`: its position in
the cluster's server list); every check period it reads every slot. A peer beats when its slot
changes to a frame that is authentic, from that slot's server ("wrong slot" otherwise), for this
heartbeat and newer than the last (so a slot whose sequence does not advance is silence, and an
old frame written back is "replayed"). The first read of a slot is only the baseline: what a dead
peer left there is not a beat. Garbage in a slot (zeros, random bytes, a forged frame) is dropped
and counted once per change, never raised.

The I/O runs in the thread of `actors/diskio.py` (in order, each with a deadline), and never
piles up: at most one write and one read are queued or running. A newer frame replaces one still
waiting for its turn here (the newest wins: an older frame is stale), and a read asked for while
one is pending is that one. A read that took longer than an interval is not counted as a beat
(its data may be that old); an operation running longer than the heartbeat timeout is a hung
disk, logged once: meanwhile the peers' paths go silent and ours goes silent for them, which is
what a hung disk is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

from actors.diskio import DiskError, IoWorker, SlotArea
from actors.heartbeat.base import HeartbeatActor
from actors.heartbeat.diskslots import pack_slot, unpack_slot
from actors.heartbeat.frame import FrameError

CLOSE_WAIT = 1.0  # seconds to let the I/O thread finish at stop (then it is left to the exit)


class DiskHeartbeat(HeartbeatActor):
    wrong_source = "wrong slot"
    closed_io = False

    async def open_path(self) -> None:
        a = self.args
        self.device: str = a["device"]
        try:
            self.disk = SlotArea(self.device, int(a["offset"]), int(a["slots"]), self.log)
        except DiskError as exc:
            raise RuntimeError(f"the disk heartbeat's device: {exc}") from None
        try:
            self.disk.open()
        except DiskError as exc:
            self.disk.close()
            raise RuntimeError(f"the disk heartbeat's device: {exc}") from None
        self.seen: dict[str, bytes] = {}  # each peer's slot as last read
        self.reads = self.late_reads = self.io_errors = self.hangs = 0
        self.replaced_writes = 0  # frames a newer one replaced before they reached the disk
        self.hung = False
        self.last_error = ""
        self.loop = asyncio.get_running_loop()
        self.io = IoWorker("diskhb-io")
        # A write and a read handed to the thread whose result the loop has not had yet.
        self.writing: concurrent.futures.Future[Any] | None = None
        self.reading: concurrent.futures.Future[Any] | None = None
        self.next_write: bytes | None = None  # the newest slot waiting for that write to end

    def transmit(self, data: bytes) -> None:
        slot = pack_slot(data)
        self.sent += 1
        if self.writing is not None:
            if self.next_write is not None:
                self.replaced_writes += 1
            self.next_write = slot
            return
        self._write(slot)

    def _write(self, slot: bytes) -> None:
        self.writing = self.io.submit(lambda: self.disk.write_slot(self.index, slot), self.timeout)
        self._when_done(self.writing, self._written)

    def _written(self, future: concurrent.futures.Future[Any]) -> None:
        self.writing = None
        self._check(future, "write")
        if self.next_write is not None and not self.closed_io:
            slot, self.next_write = self.next_write, None
            self._write(slot)

    def poll(self, now: float) -> None:
        busy = self.io.busy_for(now)
        if busy > self.timeout and not self.hung:
            self.hung = True
            self.hangs += 1
            self.log.error("the disk heartbeat's I/O hangs", device=self.device, for_s=busy)
        if self.reading is None:
            self.reading = self.io.submit(self.disk.read_all, self.timeout)
            self._when_done(self.reading, self._read)

    def _when_done(
        self,
        future: concurrent.futures.Future[Any],
        then: Callable[[concurrent.futures.Future[Any]], None],
    ) -> None:
        """then(future) on the loop once the worker has done (or skipped) it."""

        def deliver(done: concurrent.futures.Future[Any]) -> None:
            try:
                self.loop.call_soon_threadsafe(then, done)
            except RuntimeError:  # the loop is closed: the actor has ended, nobody to tell
                pass

        future.add_done_callback(deliver)

    def _check(self, future: concurrent.futures.Future[Any], what: str) -> Any:
        """The result, or None after counting and logging (once per new message) its error."""
        exc = None if future.cancelled() else future.exception()
        if exc is None:
            return None if future.cancelled() else future.result()
        if not isinstance(exc, DiskError):
            raise exc
        self.io_errors += 1
        if str(exc) != self.last_error:
            self.last_error = str(exc)
            self.log.warning(f"disk heartbeat {what} failed", device=self.device, error=str(exc))
        return None

    def _read(self, future: concurrent.futures.Future[Any]) -> None:
        self.reading = None
        result = self._check(future, "read")
        if result is not None and not self.closed_io:
            area, started, ended = result
            self._on_area(ended - started, area)

    def from_source(self, sender: str, source: Any) -> bool:
        return sender == source

    def _on_area(self, took: float, area: list[bytes]) -> None:
        self._notice_stall(time.monotonic())
        if self.hung:
            self.hung = False
            self.log.info("the disk heartbeat's I/O completed again", device=self.device)
        if took > self.interval:
            self.late_reads += 1  # what it read may be that old: not proof of a recent beat
            return
        self.reads += 1
        for peer, slot in self.peers.items():
            raw = area[slot]
            first = peer not in self.seen
            if not first and self.seen[peer] == raw:
                continue  # no progress: silence
            self.seen[peer] = raw
            if first:
                continue  # the baseline: what was there before we looked proves nothing
            try:
                record = unpack_slot(raw)
            except FrameError as exc:
                self.received += 1
                self.dropped.drop(str(exc))
                continue
            self._on_frame(record, peer)

    def path_stats(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "direct_io": self.disk.direct,  # the I/O thread may have fallen back
            "reads": self.reads,
            "late_reads": self.late_reads,
            "io_errors": self.io_errors,
            "hangs": self.hangs,
            "replaced_writes": self.replaced_writes,
        }

    def close_path(self) -> None:
        io = getattr(self, "io", None)
        if io is None or self.closed_io:
            return
        self.closed_io = True
        # The thread closes the area after what is queued (skipped past its deadline).
        if not io.close(then=self.disk.close, timeout=CLOSE_WAIT):
            self.log.warning("the disk heartbeat's I/O is still hung at stop", device=self.device)
