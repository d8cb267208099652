"""The shared disk area of `disknp`, and the worker thread that does its I/O with deadlines.

Disk I/O can hang (a lost path to a SAN, a dying disk) in a way no signal interrupts, so it never
runs on the actor's event loop: one daemon thread per area does every read and write in order,
and the loop waits for each with a deadline. An I/O that misses its deadline has failed ("cannot
confirm"); one still queued when its deadline passes is skipped, not done late. A hung thread is
abandoned on stop (it holds the fd until the kernel gives up; the process's exit closes it).

The area is opened with O_DIRECT where the file system allows it (not tmpfs; then without, which
is fine for a file that every node opens on one machine — the lab) and O_DSYNC: a write that
returned is on the device, a read comes from the device, never from this machine's page cache.
Buffers are page-aligned (mmap) and every offset and length a multiple of 4096 (SPEC §12-8).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import mmap
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from actors.np.disklease import SLOT_BYTES
from actors.np.leaseclock import now

ALIGN = 4096


class DiskError(Exception):
    """The area could not be used: a message a person can act on."""


class IoWorker:
    """One thread running blocking calls in order, each with a deadline."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
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
            if now() > deadline:
                future.set_exception(DiskError("skipped: an earlier I/O held it past its deadline"))
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the waiting coroutine
                future.set_exception(exc)

    async def run(self, fn: Callable[[], Any], timeout: float) -> Any:
        """fn() in the worker thread; DiskError if it takes longer than `timeout` seconds."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((fn, now() + timeout, future))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            future.cancel()
            raise DiskError(
                f"no answer from the disk within {timeout:g}s (the I/O hangs)"
            ) from None

    def close(self, then: Callable[[], None] | None = None, timeout: float = 0.5) -> bool:
        """Stop after the queued calls (and `then`, e.g. closing the fd); True if the thread
        ended within `timeout` (False: it hangs in an I/O and is abandoned)."""
        if then is not None:
            self._queue.put((then, float("inf"), concurrent.futures.Future()))
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()


class DiskArea:
    """`slots` slots of 4096 bytes at `offset` of `path` (a file or a block device). Blocking:
    called in the worker thread only. Read and write return (result, started, ended) times."""

    def __init__(self, path: str, offset: int, slots: int) -> None:
        if offset % ALIGN:
            raise DiskError(f"offset {offset} is not a multiple of {ALIGN}")
        self.path = path
        self.offset = offset
        self.slots = slots
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
                fd = os.open(self.path, flags)  # no O_DIRECT here (tmpfs): the page cache it is
                self.direct = False
        except OSError as exc:
            raise DiskError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            os.close(fd)
            raise DiskError(f"cannot find the size of {self.path}: {exc.strerror}") from None
        if end < self.offset + self.size:
            os.close(fd)
            raise DiskError(
                f"{self.path} is too small: the area needs {self.size} bytes from offset "
                f"{self.offset} (one 4096-byte slot per server), the device has {end}"
            )
        self.fd = fd

    def read_all(self) -> tuple[list[bytes], float, float]:
        fd = self._fd()
        started = now()
        try:
            n = os.preadv(fd, [self._read_buf], self.offset)
        except OSError as exc:
            raise DiskError(f"read of {self.path} failed: {exc.strerror or exc}") from None
        ended = now()
        if n != self.size:
            raise DiskError(f"short read of {self.path}: {n} of {self.size} bytes")
        data = bytes(self._read_buf)
        slots = [data[i * SLOT_BYTES : (i + 1) * SLOT_BYTES] for i in range(self.slots)]
        return slots, started, ended

    def write_slot(self, index: int, data: bytes) -> tuple[None, float, float]:
        fd = self._fd()
        self._write_buf[:] = data
        started = now()
        try:
            n = os.pwritev(fd, [self._write_buf], self.offset + index * SLOT_BYTES)
        except OSError as exc:
            raise DiskError(f"write to {self.path} failed: {exc.strerror or exc}") from None
        ended = now()
        if n != SLOT_BYTES:
            raise DiskError(f"short write to {self.path}: {n} of {SLOT_BYTES} bytes")
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
