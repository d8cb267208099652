"""The `exec` resource: the business application, started and stopped by the user's scripts.

A synchronous start script runs to its end within `start_timeout` (command.run: the script and
whatever it started are killed at the deadline, SPEC §12.48). An asynchronous one is left running
in a session of its own; its PID is the resource: `active()` is "that process is alive", `pidw`
watches it, and the stop script gets it as `CLP_PID` (SPEC §12.18). While the actor that started
it lives, the process is its child, reaped the moment it exits (a pidfd in the event loop). After
an actor restart it is known only by PID, start time and boot id (`saved()`), and its liveness is
read from /proc; a PID whose start time or boot id differ is someone else's and is never
signalled.

The scripts inherit the server's resource limits (the original ran them with a 2 MB stack; we do
not change limits, SPEC §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import time
from dataclasses import replace
from typing import Any

from actors.resources import exec_files
from actors.resources.base import Driver, ResourceContext, ResourceError, Why
from actors.resources.command import Completed, kill_group, run

SETTLE = 0.1  # an asynchronous start script that ends within this has failed (or daemonized)
STOP_GRACE = 5.0  # SIGTERM → SIGKILL, at most; never past the stop timeout
KILL_WAIT = 2.0  # how long a SIGKILLed group may take to disappear before the stop fails
POLL = 0.02


@functools.cache
def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on: the command name before it may hold anything."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].decode().split()


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: with the boot id, what tells a process from a reused PID."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def _running(pid: int, started: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) == started


def _group_alive(pgid: int) -> bool:
    """Does the process group still have a member that is not a zombie?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


class _Started:
    """What an asynchronous start script left running: our child (`popen`), or, after an actor
    restart, a process we know only by its PID and start time."""

    def __init__(self, pid: int, started: int, popen: subprocess.Popen | None = None) -> None:
        self.pid = pid
        self.started = started
        self.popen = popen
        self._pidfd: int | None = None

    def watch(self) -> None:
        """Reap our child the moment it exits, so no zombie waits for the next `active()`."""
        assert self.popen is not None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except OSError:  # a kernel before 5.3: reaped at the next alive() instead
            return
        asyncio.get_running_loop().add_reader(self._pidfd, self._exited)

    def _exited(self) -> None:
        self.unwatch()
        self.alive()

    def unwatch(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None  # reaps it if it has ended
        return _running(self.pid, self.started)


class ExecDriver(Driver):
    def __init__(self, ctx: ResourceContext) -> None:
        super().__init__(ctx)
        p = self.params
        self.name = ctx.resource
        self.start_script = exec_files.script_path(ctx, p.get("start") or "start.sh")
        stop = p.get("stop") or "stop.sh"
        self.stop_script = exec_files.script_path(ctx, stop)
        self.stop_optional = stop == "stop.sh"  # the default: nothing to run when it is absent
        self.start_sync = bool(p.get("start_sync", True))
        self.stop_sync = bool(p.get("stop_sync", True))
        self.start_timeout = float(p.get("start_timeout") or 1800.0)
        self.stop_timeout = float(p.get("stop_timeout") or 1800.0)
        self.log_file = exec_files.log_path(ctx)
        self.rotate_size = p.get("log_rotate_size")
        self._started = False  # a synchronous start succeeded and no stop has followed
        self._process: _Started | None = None
        self._background: set[asyncio.Task] = set()  # asynchronous stop scripts

    # --- the contract -------------------------------------------------------------------------

    async def start(self, why: Why) -> None:
        script = self._existing(self.start_script, "start")
        env = self._env(why, script)
        if self.start_sync:
            await self._run(script, env, self.start_timeout, "start")
            self._started = True
            return
        if self._process is not None and self._process.alive():
            self._note("asynchronous start process still running; not started again")
            return
        self._process = await self._spawn(script, env)

    async def stop(self, why: Why) -> None:
        deadline = time.monotonic() + self.stop_timeout
        process = self._process if self._process is not None and self._process.alive() else None
        if os.path.isfile(self.stop_script):
            env = self._env(why, self.stop_script, stop=True, pid=process.pid if process else None)
            if self.stop_sync:
                # On failure the application is left as it is: the resource is still active, and
                # a retry of the stop gets the same CLP_PID.
                await self._run(self.stop_script, env, self.stop_timeout, "stop")
            else:
                task = asyncio.create_task(self._stop_async(env))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        elif not self.stop_optional:
            self._existing(self.stop_script, "stop")
        if process is not None:
            await self._end(process, deadline)
        self._started = False
        self._forget()

    async def active(self) -> bool:
        if self.start_sync:
            return self._started
        return self._process is not None and self._process.alive()

    async def on_others(self, verb: str, why: Why) -> None:
        """The group started or stopped on another server: with `start_on_others` /
        `stop_on_others` the script runs here too, with CLP_SERVER=OTHER, to its end whatever
        `start_sync` / `stop_sync` say."""
        if verb == "start" and self.params.get("start_on_others"):
            script = self._existing(self.start_script, "start")
            env = self._env(replace(why, home=False), script)
            await self._run(script, env, self.start_timeout, "start")
        elif verb == "stop" and self.params.get("stop_on_others"):
            script = self._existing(self.stop_script, "stop")
            env = self._env(replace(why, home=False), script, stop=True)
            await self._run(script, env, self.stop_timeout, "stop")

    def details(self) -> dict[str, Any]:
        if self._process is not None and self._process.alive():
            return {"pid": self._process.pid}
        return {}

    def saved(self) -> dict[str, Any]:
        if self._process is not None and self._process.alive():
            return {
                "pid": self._process.pid,
                "start_time": self._process.started,
                "boot_id": boot_id(),
            }
        return {"started": True} if self._started else {}

    def restore(self, saved: dict[str, Any]) -> None:
        self._started = bool(saved.get("started"))
        if "pid" not in saved:
            return
        try:
            pid, started = int(saved["pid"]), int(saved["start_time"])
        except (KeyError, TypeError, ValueError):
            pid, started = 0, -1
        if pid > 0 and saved.get("boot_id") == boot_id() and _running(pid, started):
            self._process = _Started(pid, started)
            self._note("asynchronous start process found again", pid=pid)
        else:
            self._note("asynchronous start process is gone (or its PID is reused)", saved=saved)

    async def close(self) -> None:
        if self._process is not None:
            self._process.unwatch()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=KILL_WAIT)

    # --- running scripts ----------------------------------------------------------------------

    def _existing(self, script: str, which: str) -> str:
        if not os.path.isfile(script):
            raise ResourceError(
                f"{which} script of exec resource {self.name} not found: {script} "
                f"(create it, or set `{which}` to the right path)"
            )
        return script

    def _env(
        self, why: Why, script: str, *, stop: bool = False, pid: int | None = None
    ) -> dict[str, str]:
        env = {**os.environ, **self.ctx.env}
        env.pop("CLP_PID", None)
        env.update(
            CLP_EVENT=why.event,
            CLP_SERVER="HOME" if why.home else "OTHER",
            CLP_FACTOR=why.factor if stop else "",
            CLP_GROUPNAME=self.ctx.group,
            CLP_RESOURCENAME=self.ctx.resource,
            CLP_DISK="SUCCESS" if why.disk_ok else "FAILURE",
            CLP_PRIORITY=str(self.ctx.priority),
            CLP_PATH=os.path.dirname(script),
            HAVEN_SERVER=self.ctx.server,
        )
        if pid is not None:
            env["CLP_PID"] = str(pid)
        return env

    async def _run(self, script: str, env: dict[str, str], timeout: float, which: str) -> None:
        try:
            offset = exec_files.prepare_log(self.log_file, self.rotate_size)
            done = await run(
                _argv(script),
                timeout=timeout,
                env=env,
                cwd=os.path.dirname(script),
                output=self.log_file,
            )
        except OSError as exc:
            raise ResourceError(f"{which} script of exec resource {self.name}: {exc}") from exc
        if not done.ok:
            raise self._failure(done, which, offset)

    async def _stop_async(self, env: dict[str, str]) -> None:
        """An asynchronous stop script: nobody waits for it, but it still ends at its timeout."""
        try:
            await self._run(self.stop_script, env, self.stop_timeout, "stop")
        except ResourceError as exc:
            self._note("asynchronous stop script failed", error=str(exc))

    async def _spawn(self, script: str, env: dict[str, str]) -> _Started | None:
        argv = _argv(script)
        began = time.monotonic()
        try:
            offset = exec_files.prepare_log(self.log_file, self.rotate_size)
            with open(self.log_file, "ab") as out:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=os.path.dirname(script),
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise ResourceError(f"start script of exec resource {self.name}: {exc}") from exc
        process = _Started(popen.pid, start_time(popen.pid) or 0, popen)  # unreaped: stat exists
        process.watch()
        await asyncio.sleep(SETTLE)
        code = popen.poll()
        if code is None:
            self._note("asynchronous start process running", pid=popen.pid)
            return process
        process.unwatch()
        if code == 0:
            self._note("asynchronous start script ended at once (exit 0); nothing to watch")
            return None
        done = Completed(tuple(argv), code, "", time.monotonic() - began)
        raise self._failure(done, "start", offset)

    async def _end(self, process: _Started, deadline: float) -> None:
        """End what the start script left running, and its process group: SIGTERM, then SIGKILL
        after a grace that never runs past the stop timeout.

        The group is signalled only while its leader is proven ours (our unreaped child, or the
        right start time): once the leader and the group are gone the PID may belong to someone
        else. The group is polled often enough that it cannot vanish and come back unnoticed."""
        pgid = process.pid
        if not process.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        if await _gone(process, min(time.monotonic() + STOP_GRACE, deadline)):
            return
        kill_group(pgid)
        if process.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)  # it left its group: still ours to end
        if not await _gone(process, time.monotonic() + KILL_WAIT):
            raise ResourceError(
                f"process {process.pid} of exec resource {self.name} did not end after SIGKILL "
                "(stuck in the kernel?)"
            )
        self._note("asynchronous start process ended by signal", pid=process.pid)

    def _forget(self) -> None:
        if self._process is not None:
            self._process.unwatch()
            self._process = None

    def _failure(self, done: Completed, which: str, offset: int) -> ResourceError:
        tail = exec_files.last_line(self.log_file, offset)
        told = Completed(done.argv, done.returncode, tail, done.elapsed)
        what = f"{which} script of exec resource {self.name}"
        return ResourceError(f"{told.describe(what)}; log: {self.log_file}")

    def _note(self, event: str, **kw: Any) -> None:
        if self.ctx.log is not None:
            self.ctx.log.info(event, **kw)


def _argv(script: str) -> list[str]:
    """Directly when executable (its `#!` line chooses), else through /bin/sh."""
    return [script] if os.access(script, os.X_OK) else ["/bin/sh", script]


async def _gone(process: _Started, until: float) -> bool:
    """Wait, at most until `until`, for the leader and every member of its group to end."""
    while True:
        if not process.alive() and not _group_alive(process.pid):
            return True
        if time.monotonic() >= until:
            return False
        await asyncio.sleep(POLL)
