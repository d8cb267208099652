"""The disk heartbeat's area on the shared device and the blocking I/O on it (run by
`diskworker.py`, never on the event loop).

    offset + i * 4096: the slot of the i-th server of the cluster's server list
        length u16 (big-endian) | the heartbeat frame (frame.py) | zeros up to 4096 bytes

Slots are 4096 bytes and aligned (the offset is a multiple of 4096), so each server writes one
whole block of its own and no two servers ever write the same block: no locking, and a torn write
can only spoil the writer's own slot, which its MAC then refuses. The device is opened with
O_DIRECT, so a read sees the disk and not this machine's page cache (on a shared disk, the other
server's writes never reach our cache), and O_DSYNC, so a write has reached the disk when it
returns. A file system that refuses O_DIRECT (tmpfs before Linux 6.6, ramfs, some FUSE) gets
buffered I/O, said once in the log: fine for a lab where the servers share one page cache, not
for a real shared disk.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import struct
from typing import Any

from actors.heartbeat.frame import MAX_FRAME_BYTES, FrameError

SLOT_BYTES = 4096
_LEN = struct.Struct("!H")
assert _LEN.size + MAX_FRAME_BYTES <= SLOT_BYTES


def area_bytes(offset: int, slots: int) -> int:
    """How large the device must be for `slots` servers' slots at `offset`."""
    return offset + slots * SLOT_BYTES


def pack_slot(frame: bytes) -> bytes:
    return (_LEN.pack(len(frame)) + frame).ljust(SLOT_BYTES, b"\x00")


def unpack_slot(raw: bytes) -> bytes:
    """The frame in a slot's bytes; FrameError("empty slot") for a slot never written (zeros),
    FrameError("garbage") for one whose length cannot be a frame's."""
    (length,) = _LEN.unpack_from(raw)
    if length == 0:
        raise FrameError("empty slot" if not any(raw) else "garbage")
    if length > min(MAX_FRAME_BYTES, len(raw) - _LEN.size):
        raise FrameError("garbage")
    return bytes(raw[_LEN.size : _LEN.size + length])


class SlotDisk:
    """The open device (or file) of one disk heartbeat: blocking reads and writes of slots.
    Used by one thread at a time; `close()` releases the descriptor and the buffers."""

    def __init__(self, path: str, offset: int, slots: int, log: Any) -> None:
        if offset % SLOT_BYTES:
            raise RuntimeError(f"the disk heartbeat's offset {offset} is not a multiple of 4096")
        self.path, self.offset, self.slots, self.log = path, offset, slots, log
        self.direct = True
        self.fd = self._open(path)
        try:
            size = _size(self.fd)
            needed = area_bytes(offset, slots)
            if size < needed:
                raise RuntimeError(
                    f"{path} has {size} bytes; the disk heartbeat needs {needed} "
                    f"(offset {offset} + {slots} servers x {SLOT_BYTES})"
                )
            # Page-aligned buffers, as O_DIRECT requires.
            self.slot_buffer = mmap.mmap(-1, SLOT_BYTES)
            self.area_buffer = mmap.mmap(-1, slots * SLOT_BYTES)
        except BaseException:
            os.close(self.fd)
            raise

    def _open(self, path: str) -> int:
        flags = os.O_RDWR | os.O_DSYNC | os.O_CLOEXEC
        try:
            try:
                return os.open(path, flags | os.O_DIRECT)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
            self._buffered("the file system refused O_DIRECT at open")
            return os.open(path, flags)
        except OSError as exc:
            raise RuntimeError(f"cannot open the disk heartbeat's device {path}: {exc}") from exc

    def _buffered(self, why: str) -> None:
        self.direct = False
        self.log.warning(
            "disk heartbeat without O_DIRECT: reads may come from this machine's page cache; "
            "fine in a lab, not on a real shared disk",
            device=self.path,
            why=why,
        )

    def _retry_buffered(self, exc: OSError) -> bool:
        """Some file systems accept O_DIRECT at open and refuse the I/O: reopen without it."""
        if not self.direct or exc.errno != errno.EINVAL:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_DSYNC | os.O_CLOEXEC)
        os.close(self.fd)
        self.fd = fd
        self._buffered(f"direct I/O failed: {exc}")
        return True

    def write_slot(self, index: int, data: bytes) -> None:
        self.slot_buffer[:] = data
        at = self.offset + index * SLOT_BYTES
        try:
            written = os.pwritev(self.fd, [self.slot_buffer], at)
        except OSError as exc:
            if not self._retry_buffered(exc):
                raise
            written = os.pwritev(self.fd, [self.slot_buffer], at)
        if written != SLOT_BYTES:
            raise OSError(errno.EIO, f"short write ({written} of {SLOT_BYTES} bytes)")

    def read_area(self) -> bytes:
        """Every slot, in one read."""
        try:
            got = os.preadv(self.fd, [self.area_buffer], self.offset)
        except OSError as exc:
            if not self._retry_buffered(exc):
                raise
            got = os.preadv(self.fd, [self.area_buffer], self.offset)
        if got != len(self.area_buffer):
            raise OSError(errno.EIO, f"short read ({got} of {len(self.area_buffer)} bytes)")
        return bytes(self.area_buffer)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for buffer in (getattr(self, "slot_buffer", None), getattr(self, "area_buffer", None)):
            if buffer is not None:
                buffer.close()


def _size(fd: int) -> int:
    st = os.fstat(fd)
    if stat.S_ISBLK(st.st_mode):
        return os.lseek(fd, 0, os.SEEK_END)
    return st.st_size
