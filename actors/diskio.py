"""Slots on a shared disk and the thread that does their I/O: shared by the disk heartbeat
(`heartbeat/diskhb.py`) and disk NP (`np/disknp.py`, through `np/diskprotocol.py`). Not an actor:
both need the same careful bytes-on-the-device code, and actors never import each other.

    offset + i * 4096: the slot of the i-th server of the cluster's server list

Slots are 4096 bytes and aligned (the offset is a multiple of 4096), so each server writes one
whole block of its own and no two servers ever write the same block: no locking, and a torn write
can only spoil the writer's own slot. The device is opened with O_DIRECT, so a read sees the disk
and not this machine's page cache (on a shared disk, the other server's writes never reach our
cache), and O_DSYNC, so a write has reached the disk when it returns. Buffers are page-aligned
(mmap), as O_DIRECT requires. A file system that refuses O_DIRECT, at open or at the first I/O
(tmpfs before Linux 6.6, ramfs, some FUSE), gets buffered I/O, said once in the log: fine for a lab
where the servers share one page cache, not for a real shared disk.

Disk I/O can hang (a lost path to a SAN, a dying disk) in a way no signal interrupts, so it never
runs on an actor's event loop: one daemon thread (`IoWorker`) does every read and write in order,
each with a deadline. One still queued when its deadline passes is skipped, not done late; the
loop either awaits a call with that deadline (`run`) or hands it over and looks at `busy_for`
(`submit`; the caller keeps what it queues bounded). A thread stuck in the kernel cannot be
cancelled: `close` waits a bounded time and otherwise leaves it to end with the process; the
descriptor is closed by the thread itself, never under a running operation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import mmap
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

SLOT_BYTES = 4096


def area_bytes(offset: int, slots: int) -> int:
    """How large the device must be for `slots` servers' slots at `offset`."""
    return offset + slots * SLOT_BYTES


class DiskError(Exception):
    """The area could not be used: a message a person can act on."""


class IoWorker:
    """One thread running blocking calls in order, each with a deadline. `clock` measures the
    deadlines and `busy_for` (monotonic; disk NP uses CLOCK_BOOTTIME)."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._busy_since: float | None = None
        # Started from the actor's loop thread: it inherits its scheduling (SCHED_RR for diskhb).
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, deadline, future = item
            if not future.set_running_or_notify_cancel():
                continue
            self._busy_since = self._clock()
            if self._busy_since > deadline:
                self._busy_since = None
                future.set_exception(DiskError("skipped: an earlier I/O held it past its deadline"))
                continue
            try:
                result = fn()
            except BaseException as exc:  # handed to whoever waits for it
                self._busy_since = None
                future.set_exception(exc)
            else:
                self._busy_since = None
                future.set_result(result)

    def submit(self, fn: Callable[[], Any], timeout: float) -> concurrent.futures.Future[Any]:
        """Queue fn() (skipped if it has not started within `timeout` seconds); never waits."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((fn, self._clock() + timeout, future))
        return future

    async def run(self, fn: Callable[[], Any], timeout: float) -> Any:
        """fn() in the worker thread; DiskError if it takes longer than `timeout` seconds."""
        future = self.submit(fn, timeout)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            future.cancel()
            raise DiskError(
                f"no answer from the disk within {timeout:g}s (the I/O hangs)"
            ) from None

    def busy_for(self, now: float) -> float:
        """How long the running call has been running at `now` (of `clock`); 0 when idle."""
        since = self._busy_since
        return 0.0 if since is None else max(0.0, now - since)

    def close(self, then: Callable[[], None] | None = None, timeout: float = 0.5) -> bool:
        """Stop after the queued calls (and `then`, e.g. closing the area); True if the thread
        ended within `timeout` (False: it hangs in an I/O and is abandoned)."""
        if then is not None:
            self._queue.put((then, float("inf"), concurrent.futures.Future()))
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()


class SlotArea:
    """`slots` slots of 4096 bytes at `offset` of `path` (a file or a block device). Blocking:
    used by one thread at a time (the worker's, but for `open` where the caller says so). Reads
    and writes return (result, started, ended) times of `clock`. `log` (optional) hears of a
    fallback to buffered I/O."""

    def __init__(
        self,
        path: str,
        offset: int,
        slots: int,
        log: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if offset % SLOT_BYTES:
            raise DiskError(f"offset {offset} is not a multiple of {SLOT_BYTES}")
        self.path, self.offset, self.slots, self.log, self._clock = path, offset, slots, log, clock
        self.fd: int | None = None
        self.direct = False
        self._read_buf = mmap.mmap(-1, slots * SLOT_BYTES)
        self._write_buf = mmap.mmap(-1, SLOT_BYTES)

    @property
    def size(self) -> int:
        return self.slots * SLOT_BYTES

    def open(self) -> None:
        flags = os.O_RDWR | os.O_DSYNC | os.O_CLOEXEC
        try:
            try:
                fd = os.open(self.path, flags | os.O_DIRECT)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                fd = os.open(self.path, flags)
                self._buffered("the file system refused O_DIRECT at open")
        except OSError as exc:
            raise DiskError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        try:
            end = os.lseek(fd, 0, os.SEEK_END)  # a file's size or a block device's
        except OSError as exc:
            os.close(fd)
            raise DiskError(f"cannot find the size of {self.path}: {exc.strerror}") from None
        needed = area_bytes(self.offset, self.slots)
        if end < needed:
            os.close(fd)
            raise DiskError(
                f"{self.path} is too small: it has {end} bytes, the area needs {needed} "
                f"(offset {self.offset} + {self.slots} servers x {SLOT_BYTES})"
            )
        self.fd = fd

    def _buffered(self, why: str) -> None:
        self.direct = False
        if self.log is not None:
            self.log.warning(
                "shared disk area without O_DIRECT: reads may come from this machine's page "
                "cache; fine in a lab, not on a real shared disk",
                device=self.path,
                why=why,
            )

    def _io(self, what: str, call: Callable[[int], int], expected: int) -> tuple[float, float]:
        """call(fd) once (and again without O_DIRECT if only the I/O refuses it)."""
        fd = self._fd()
        started = self._clock()
        try:
            try:
                n = call(fd)
            except OSError as exc:
                # Some file systems accept O_DIRECT at open and refuse the I/O: reopen without.
                if not self.direct or exc.errno != errno.EINVAL:
                    raise
                self.fd = os.open(self.path, os.O_RDWR | os.O_DSYNC | os.O_CLOEXEC)
                os.close(fd)
                self._buffered(f"direct I/O failed: {exc}")
                n = call(self.fd)
        except OSError as exc:
            raise DiskError(f"{what} of {self.path} failed: {exc.strerror or exc}") from None
        ended = self._clock()
        if n != expected:
            raise DiskError(f"short {what} of {self.path}: {n} of {expected} bytes")
        return started, ended

    def read_all(self) -> tuple[list[bytes], float, float]:
        """Every slot, in one read."""
        started, ended = self._io(
            "read", lambda fd: os.preadv(fd, [self._read_buf], self.offset), self.size
        )
        data = bytes(self._read_buf)
        slots = [data[i * SLOT_BYTES : (i + 1) * SLOT_BYTES] for i in range(self.slots)]
        return slots, started, ended

    def write_slot(self, index: int, data: bytes) -> tuple[None, float, float]:
        self._write_buf[:] = data
        at = self.offset + index * SLOT_BYTES
        started, ended = self._io(
            "write", lambda fd: os.pwritev(fd, [self._write_buf], at), SLOT_BYTES
        )
        return None, started, ended

    def _fd(self) -> int:
        if self.fd is None:
            raise DiskError(f"{self.path} is not open")
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self._read_buf.close()
        self._write_buf.close()
