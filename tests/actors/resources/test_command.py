"""The drivers' program runner: exact deadlines that end the whole process group, output kept."""

from __future__ import annotations

import asyncio
import os
import time

from actors.resources.command import run


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_timeout_ends_the_program_and_what_it_started(tmp_path):
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    done = asyncio.run(
        run(["sh", "-c", f"sleep 60 & echo $! > '{pidfile}'; echo begun; wait"], timeout=0.5)
    )
    assert done.timed_out and not done.ok
    assert time.monotonic() - started < 2.0
    assert "begun" in done.output
    assert "did not finish within its timeout" in done.describe("start script")
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(child)


def test_failure_is_described_with_its_last_line():
    done = asyncio.run(run(["sh", "-c", "echo one; echo 'bad thing' >&2; exit 3"], timeout=5))
    assert done.returncode == 3
    assert done.describe("mount") == "mount failed (exit 3): bad thing"


def test_a_daemon_left_running_does_not_hold_the_caller(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    started = time.monotonic()
    done = asyncio.run(run(["sh", "-c", f"sleep 30 & echo $! > '{pidfile}'"], timeout=10))
    assert done.ok and time.monotonic() - started < 2.0
    daemon = int(pidfile.read_text())
    assert _alive(daemon)  # a start script's daemon is left alone
    os.kill(daemon, 9)


def test_output_to_a_file_and_stdin(tmp_path):
    log = tmp_path / "out.log"
    done = asyncio.run(run(["cat"], timeout=5, stdin=b"hello\n", output=str(log)))
    assert done.ok and done.output == ""
    assert log.read_text() == "hello\n"


def test_cancelled_caller_kills_and_reaps(tmp_path):
    pidfile = tmp_path / "pid"

    async def main() -> None:
        task = asyncio.ensure_future(
            run(["sh", "-c", f"echo $$ > '{pidfile}'; exec sleep 60"], timeout=30)
        )
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 2.0
    assert not os.path.exists(f"/proc/{int(pidfile.read_text())}")  # ended and reaped
