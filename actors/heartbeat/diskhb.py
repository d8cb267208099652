"""Disk heartbeat (`diskhb`): the heartbeat frame in a slot of a shared disk — a path that needs
none of the networks, only the disk every server sees.

Every interval this server writes its frame into its own slot (`diskslots.py`: its position in
the cluster's server list); every check period it reads every slot. A peer beats when its slot
changes to a frame that is authentic, from that slot's server ("wrong slot" otherwise), for this
heartbeat and newer than the last (so a slot whose sequence does not advance is silence, and an
old frame written back is "replayed"). The first read of a slot is only the baseline: what a dead
peer left there is not a beat. Garbage in a slot (zeros, random bytes, a forged frame) is dropped
and counted once per change, never raised.

The I/O runs in `diskworker.py`'s thread. A read that took longer than an interval is not
counted as a beat (its data may be that old); an operation running longer than the heartbeat
timeout is a hung disk, logged once: meanwhile the peers' paths go silent and ours goes silent
for them, which is what a hung disk is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from actors.heartbeat.base import HeartbeatActor
from actors.heartbeat.diskslots import SLOT_BYTES, SlotDisk, pack_slot, unpack_slot
from actors.heartbeat.diskworker import DiskWorker
from actors.heartbeat.frame import FrameError

CLOSE_WAIT = 1.0  # seconds to let the I/O thread finish at stop (then it is left to the exit)


class DiskHeartbeat(HeartbeatActor):
    wrong_source = "wrong slot"

    async def open_path(self) -> None:
        a = self.args
        self.device: str = a["device"]
        self.disk = SlotDisk(self.device, int(a["offset"]), int(a["slots"]), self.log)
        self.seen: dict[str, bytes] = {}  # each peer's slot as last read
        self.reads = self.late_reads = self.io_errors = self.hangs = 0
        self.hung = False
        self.last_error = ""
        self.io = DiskWorker(
            self.disk, self.index, asyncio.get_running_loop(), self._on_area, self._on_io_error
        )

    def transmit(self, data: bytes) -> None:
        self.io.write(pack_slot(data))
        self.sent += 1

    def poll(self, now: float) -> None:
        busy = self.io.busy_for(now)
        if busy > self.timeout and not self.hung:
            self.hung = True
            self.hangs += 1
            self.log.error("the disk heartbeat's I/O hangs", device=self.device, for_s=busy)
        self.io.read()

    def from_source(self, sender: str, source: Any) -> bool:
        return sender == source

    def _on_area(self, took: float, area: bytes) -> None:
        self._notice_stall(time.monotonic())
        if self.hung:
            self.hung = False
            self.log.info("the disk heartbeat's I/O completed again", device=self.device)
        if took > self.interval:
            self.late_reads += 1  # what it read may be that old: not proof of a recent beat
            return
        self.reads += 1
        for peer, slot in self.peers.items():
            raw = area[slot * SLOT_BYTES : (slot + 1) * SLOT_BYTES]
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

    def _on_io_error(self, what: str, exc: OSError) -> None:
        self.io_errors += 1
        if str(exc) != self.last_error:
            self.last_error = str(exc)
            self.log.warning(f"disk heartbeat {what} failed", device=self.device, error=str(exc))

    def path_stats(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "direct_io": self.disk.direct,  # the I/O thread may have fallen back
            "reads": self.reads,
            "late_reads": self.late_reads,
            "io_errors": self.io_errors,
            "hangs": self.hangs,
            "replaced_writes": self.io.replaced_writes,
        }

    def close_path(self) -> None:
        io = getattr(self, "io", None)
        if io is not None and not io.close(CLOSE_WAIT):
            self.log.warning("the disk heartbeat's I/O is still hung at stop", device=self.device)
