"""One thread that does a disk heartbeat's blocking I/O, so that a hung disk never blocks the
actor's event loop (its liveness beat, its other timers, its requests).

The loop asks (`write`, `read`) and never waits: at most one write and one read are pending — a
newer frame replaces an unwritten older one, read requests coalesce — so a disk that hangs costs
one stuck thread and nothing that grows. Results come back on the loop (`on_read(took, data)`,
`on_error(what, exc)`). `busy_for(now)` says how long the current operation has been running: the
actor compares it with its deadline. A thread stuck in the kernel cannot be cancelled; `close`
waits a bounded time and otherwise leaves it (a daemon thread) to end with the process. The thread
owns the `SlotDisk` and closes it when it ends, so a descriptor is never closed under a running
operation (whose number the kernel could hand to another file meanwhile).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from actors.heartbeat.diskslots import SlotDisk


class DiskWorker:
    def __init__(
        self,
        disk: SlotDisk,
        index: int,
        loop: asyncio.AbstractEventLoop,
        on_read: Callable[[float, bytes], None],
        on_error: Callable[[str, OSError], None],
    ) -> None:
        self._disk, self._index, self._loop = disk, index, loop
        self._on_read, self._on_error = on_read, on_error
        self._cond = threading.Condition()
        self._write: bytes | None = None  # the newest slot content not yet written
        self._read = False
        self._stop = False
        self._busy_since: float | None = None
        self.replaced_writes = 0  # frames a newer one replaced before they reached the disk
        # Started from the actor's real-time loop thread: it inherits SCHED_RR.
        self._thread = threading.Thread(target=self._run, name="diskhb-io", daemon=True)
        self._thread.start()

    def write(self, slot: bytes) -> None:
        with self._cond:
            if self._write is not None:
                self.replaced_writes += 1
            self._write = slot
            self._cond.notify()

    def read(self) -> None:
        with self._cond:
            self._read = True
            self._cond.notify()

    def busy_for(self, now: float) -> float:
        since = self._busy_since
        return 0.0 if since is None else max(0.0, now - since)

    def close(self, timeout: float) -> bool:
        """Stop the thread; True if it ended (and closed the disk) within `timeout` seconds."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not (self._stop or self._write is not None or self._read):
                        self._cond.wait()
                    if self._stop:
                        return
                    slot, self._write = self._write, None
                    read, self._read = self._read, False
                    self._busy_since = time.monotonic()
                if slot is not None:
                    self._do("write", self._disk.write_slot, self._index, slot)
                if read:
                    started = time.monotonic()
                    self._busy_since = started
                    data = self._do("read", self._disk.read_area)
                    if data is not None:
                        self._deliver(self._on_read, time.monotonic() - started, data)
                self._busy_since = None
        finally:
            self._disk.close()

    def _do(self, what: str, operation: Callable[..., object], *args: object) -> object:
        try:
            return operation(*args)
        except OSError as exc:
            self._deliver(self._on_error, what, exc)
            return None

    def _deliver(self, callback: Callable[..., None], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the actor has ended, nobody to tell
            pass
