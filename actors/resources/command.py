"""The one way drivers run a program: in its own session, with a deadline, always reaped.

At the deadline the whole process group is killed (SIGKILL): the program and whatever it started
end at the timeout, not later (SPEC: exact timeouts). A cancelled caller (the actor stopping)
kills the group too. A program that ends in time may leave a daemon running (a start script):
that is left alone. Output goes to a file the caller names (appended; an exec resource's log)
or is captured, keeping the last `CAPTURE_LIMIT` bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CAPTURE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int | None  # None: killed at the deadline
    output: str  # captured stdout+stderr (tail), "" when it went to a file
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def describe(self, what: str | None = None) -> str:
        """`mount -t ext4 ... failed (exit 32): mount: wrong fs type` — one line for an error."""
        what = what or " ".join(self.argv[:4]) + (" ..." if len(self.argv) > 4 else "")
        if self.timed_out:
            head = f"{what} did not finish within its timeout ({self.elapsed:.1f}s): ended"
        elif self.returncode is not None and self.returncode < 0:
            head = f"{what} was killed by signal {-self.returncode}"
        else:
            head = f"{what} failed (exit {self.returncode})"
        last = self.output.strip().splitlines()[-1:] if self.output else []
        return f"{head}: {last[0]}" if last else head


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    output: str | None = None,
    stdin: bytes | None = None,
) -> Completed:
    """Run `argv` to its end or its deadline. Raises OSError only if it cannot be started.

    Output goes to a file, never a pipe: on Python 3.11 asyncio's `wait()` also waits for the
    pipes to close, which a daemon the program left running would hold open."""
    started = time.monotonic()
    with (
        open(output, "ab") if output else tempfile.TemporaryFile() as out,
    ):
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        returncode: int | None = None
        try:
            async with asyncio.timeout(timeout):
                if stdin is not None and proc.stdin is not None:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        proc.stdin.write(stdin)
                        await proc.stdin.drain()
                    proc.stdin.close()
                returncode = await proc.wait()
        except TimeoutError:
            returncode = None
        finally:
            if proc.returncode is None or returncode is None:
                kill_group(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.shield(proc.wait())  # reaped even when we are cancelled
        captured = ""
        if not output:
            out.seek(0, os.SEEK_END)
            out.seek(max(0, out.tell() - CAPTURE_LIMIT))
            captured = out.read().decode(errors="replace")
    return Completed(tuple(argv), returncode, captured, time.monotonic() - started)
