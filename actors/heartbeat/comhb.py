"""COM heartbeat (`comhb`): the heartbeat frame over a serial line (RS-232C cross cable) joining
exactly two servers — a path that shares nothing with the networks.

The line is opened with pyserial at the configured baud (raw, 8N1, no flow control) and then used
through its file descriptor, non-blocking: reads come from `loop.add_reader`, writes never wait
(a frame the line cannot take now is dropped and counted; a partly written one is finished before
the next). Frames are cut out of the byte stream by `serialframe.py`; garbage, forged and replayed
frames are dropped and counted like on every path (`base.py`). A line that fails (the device
vanished, a hang-up) is closed and opened again every interval: meanwhile the peer's path goes
silent, which is the truth.
"""

from __future__ import annotations

import asyncio
import os
import termios
import time
from typing import Any

import serial

from actors.heartbeat.base import HeartbeatActor
from actors.heartbeat.serialframe import RecordReader, encode_record

READ_CHUNK = 4096
MAX_READS_PER_TURN = 16  # drain a burst, but never monopolise the loop


class ComHeartbeat(HeartbeatActor):
    async def open_path(self) -> None:
        self.device: str = self.args["device"]
        self.baud = int(self.args["baud"])
        self.line: serial.Serial | None = None
        self.unsent = b""  # the rest of a frame the line took only in part
        self.line_busy = self.line_failures = 0
        self.line_error: str | None = None  # why the line is closed now (logged once)
        self._open_line()
        if self.line is None:
            raise RuntimeError(f"cannot open the serial line {self.device}: {self.line_error}")

    def _open_line(self) -> None:
        try:
            line = serial.Serial(
                self.device,
                self.baud,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            if self.line_error is None:
                self.log.warning("cannot open the serial line", device=self.device, error=str(exc))
            self.line_error = str(exc)
            return
        try:
            fd = line.fileno()
            os.set_blocking(fd, False)
            # pyserial leaves VMIN=0, where a read with no data returns 0 bytes like a hang-up
            # does; with VMIN=1 "no data yet" is EAGAIN and an empty read means the line is gone.
            attrs = termios.tcgetattr(fd)
            attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 1, 0
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            line.reset_input_buffer()  # whatever waited there is from before us
            asyncio.get_running_loop().add_reader(fd, self._on_readable)
        except (OSError, termios.error, serial.SerialException) as exc:
            line.close()
            self.line_error = str(exc)
            return
        if self.line_error is not None:
            self.log.info("serial line open again", device=self.device)
        self.line, self.line_error, self.unsent = line, None, b""
        self.reader = RecordReader()

    def _line_failed(self, why: str) -> None:
        self.line_failures += 1
        self.log.warning("serial line failed; reopening it", device=self.device, error=why)
        self.line_error = why
        self._close_line()

    def _close_line(self) -> None:
        line, self.line = getattr(self, "line", None), None
        if line is not None:
            try:
                asyncio.get_running_loop().remove_reader(line.fileno())
            finally:
                line.close()

    def transmit(self, data: bytes) -> None:
        if self.line is None:
            self._open_line()
            if self.line is None:
                self.send_errors += 1
                return
        try:
            if self.unsent:
                self.unsent = self.unsent[os.write(self.line.fileno(), self.unsent) :]
            if self.unsent:  # the line still has not taken the last frame: skip this one
                self.line_busy += 1
                self.send_errors += 1
                return
            record = encode_record(data)
            self.unsent = record[os.write(self.line.fileno(), record) :]
            self.sent += 1
        except BlockingIOError:
            self.line_busy += 1
            self.send_errors += 1
        except OSError as exc:
            self.send_errors += 1
            self._line_failed(str(exc))

    def _on_readable(self) -> None:
        self._notice_stall(time.monotonic())
        for _ in range(MAX_READS_PER_TURN):
            if self.line is None:
                return
            try:
                chunk = os.read(self.line.fileno(), READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EIO: the other side of a pty is gone, a USB port unplugged
                self._line_failed(str(exc))
                return
            if not chunk:  # end of file: the same, and a level-triggered reader would spin
                self._line_failed("end of file")
                return
            for record in self.reader.feed(chunk):
                if record is None:
                    self.received += 1
                    self.dropped.drop("garbage")
                else:
                    self._on_frame(record)

    def path_stats(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "line_open": self.line is not None,
            "line_busy": self.line_busy,
            "line_failures": self.line_failures,
        }

    def close_path(self) -> None:
        self._close_line()
