"""Runs one actor in the current process: its event loop, bus connection, beats, timers, requests.

`run(launch)` returns the process exit code (see `actors.exitcodes`). It owns every socket and task
it creates and closes them on the way out, also when a hook raised or the stop deadline ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import traceback
from typing import Any

import structlog
import zmq
import zmq.asyncio

from actors import exitcodes, logs, registry
from actors.base import Actor
from actors.launch import LAUNCH_ENV, ActorLaunch
from bus import topics
from bus.connection import BusConnection
from bus.paths import NodePaths
from bus.rpc import Service


class ActorContext:
    def __init__(self, launch: ActorLaunch, zctx: zmq.asyncio.Context) -> None:
        self.launch = launch
        self.zctx = zctx
        self.paths = NodePaths(launch.state_dir)
        self.sender = f"{launch.server}/{launch.name}"
        self.log = structlog.get_logger().bind(server=launch.server, actor=launch.name)
        self.bus = BusConnection(zctx, self.paths, self.sender)
        self.stopping = asyncio.Event()
        self.exit_code = exitcodes.OK
        self._timers: dict[str, asyncio.Task[None]] = {}
        self.timer_handler: Any = None  # set by the lifecycle: runs on_timer as a hook

    def request_stop(self, exit_code: int = exitcodes.OK) -> None:
        if not self.stopping.is_set():
            self.exit_code = exit_code
            self.stopping.set()

    def set_timer(self, name: str, seconds: float) -> None:
        self.cancel_timer(name)
        self._timers[name] = asyncio.get_running_loop().create_task(
            self._tick(name, seconds), name=f"timer:{name}"
        )

    def cancel_timer(self, name: str) -> None:
        task = self._timers.pop(name, None)
        if task is not None:
            task.cancel()

    async def _tick(self, name: str, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + seconds
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += seconds
            if next_at < loop.time():  # we fell behind (a long hook): skip, don't burst
                next_at = loop.time() + seconds
            await self.timer_handler(name)

    def take_timers(self) -> list[asyncio.Task[None]]:
        """Every timer task, forgotten here: the caller cancels them."""
        tasks = list(self._timers.values())
        self._timers.clear()
        return tasks


def run(launch: ActorLaunch) -> int:
    try:
        logs.configure(launch.log_format)
        # The process may come from a fork of the template: start from clean signal handling.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # A terminal's Ctrl-C or hang-up reaches the whole process group; an actor stops only
        # when its supervisor says so (SIGTERM), in the supervisor's order.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        return asyncio.run(_main(launch))
    except BaseException:  # the supervisor sees only the exit code: say why here
        traceback.print_exc()
        return exitcodes.RESTART


async def _main(launch: ActorLaunch) -> int:
    loop = asyncio.get_running_loop()
    zctx = zmq.asyncio.Context()
    ctx: ActorContext | None = None
    orphan_watch: int | None = None
    try:
        ctx = ActorContext(launch, zctx)
        loop.add_signal_handler(signal.SIGTERM, ctx.request_stop, exitcodes.OK)
        orphan_watch = _watch_supervisor(ctx, loop)
        try:
            actor = registry.actor_class(launch.kind)(ctx)
        except Exception as exc:
            ctx.log.error("actor could not be created", error=repr(exc))
            return exitcodes.RESTART
        return await _Lifecycle(ctx, actor).run()
    finally:
        if orphan_watch is not None:
            loop.remove_reader(orphan_watch)
            os.close(orphan_watch)
        if ctx is not None:
            ctx.bus.close()
        zctx.destroy(linger=0)  # also closes any socket the actor left open; never waits on it


class _Lifecycle:
    """Runs the hooks of one actor in order; the first failure ends it with `on_failure`."""

    def __init__(self, ctx: ActorContext, actor: Actor) -> None:
        self.ctx = ctx
        self.actor = actor
        self.failure: BaseException | None = None
        self.service: Service | None = None
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        # One hook at a time, even when a hook awaits (a timer must not run inside on_receive).
        self.turn = asyncio.Lock()
        ctx.timer_handler = lambda name: self.hook(actor.on_timer(name))

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            self.ctx.log.error("actor failed", error=repr(exc), exc_info=exc)
        self.ctx.request_stop(exitcodes.RESTART)

    async def hook(self, coro: Any) -> None:
        try:
            async with self.turn:
                await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.fail(exc)

    def spawn(self, name: str, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self.tasks[name] = task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.fail(task.exception())  # e.g. the request service died: restart, don't limp on

    async def cancel(self, *names: str) -> None:
        """Cancel the named tasks and every timer; with no names, every task."""
        tasks = [self.tasks.pop(n) for n in (names or tuple(self.tasks)) if n in self.tasks]
        tasks += self.ctx.take_timers()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def bounded(self, coro: Any, what: str) -> None:
        deadline = max(0.1, self.ctx.launch.stop_timeout * 0.8)
        try:
            async with asyncio.timeout(deadline):
                await coro
        except TimeoutError:
            self.ctx.log.warning(f"{what} exceeded its deadline", deadline=deadline)
            self.ctx.exit_code = self.ctx.exit_code or exitcodes.RESTART
        except Exception as exc:
            self.ctx.log.error(f"{what} failed", error=repr(exc))
            self.ctx.exit_code = self.ctx.exit_code or exitcodes.RESTART

    async def run(self) -> int:
        ctx, actor = self.ctx, self.actor
        try:
            for prefix in type(actor).subscriptions:
                ctx.bus.subscribe(prefix)
            # The supervisor always listens for beats, so a subscription arrives within
            # milliseconds; the deadline only keeps a broken bus from holding the start.
            if not await ctx.bus.wait_for_subscribers(timeout=2.0):
                ctx.log.warning("no subscriber reached this actor within 2s; events may be lost")
            if not await self._start():
                return ctx.exit_code  # told to stop before it had started: nothing to stop
            if self.failure is None:
                try:
                    self._serve_requests()
                except Exception as exc:
                    self.fail(exc)
            if self.failure is None:
                self.spawn("beat", _beat(ctx))  # the first beat says: started
                if type(actor).subscriptions:
                    self.spawn("inbox", self._inbox())
            await ctx.stopping.wait()
            # One hook at a time: nothing else runs while the actor stops. The beat goes on, so
            # a slow but progressing stop is not mistaken for a hang.
            await self.cancel("inbox", "service")
            if self.failure is not None:
                await self.bounded(actor.on_failure(self.failure), "on_failure")
            else:
                await self.bounded(actor.on_stop(), "on_stop")
            return ctx.exit_code
        finally:
            await self.cancel()
            if self.service is not None:
                self.service.close()

    async def _start(self) -> bool:
        """on_start, unless a stop request comes first (then on_start is cancelled: False)."""
        start = asyncio.ensure_future(self.hook(self.actor.on_start()))
        stop = asyncio.ensure_future(self.ctx.stopping.wait())
        await asyncio.wait({start, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if start.done():
            return True
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await start
        self.ctx.log.info("stopped while starting")
        return False

    def _serve_requests(self) -> None:
        handlers = self.actor.requests()
        if handlers:
            endpoint = self.ctx.paths.service_endpoint(self.ctx.launch.name)
            self.service = Service(
                self.ctx.zctx,
                endpoint,
                self.ctx.sender,
                handlers,
                concurrent=type(self.actor).concurrent_requests,
            )
            self.spawn("service", self.service.serve())

    async def _inbox(self) -> None:
        while True:
            env = await self.ctx.bus.receive()
            await self.hook(self.actor.on_receive(env))
            # A receive that finds its message waiting does not yield: through a backlog (a
            # burst of thousands of events) the beat and the requests would starve and the
            # supervisor take the actor for hung. Let them run between two messages.
            await asyncio.sleep(0)


def _watch_supervisor(ctx: ActorContext, loop: asyncio.AbstractEventLoop) -> int | None:
    """An actor never outlives its supervisor: if it dies (even by SIGKILL), stop at once."""
    pid = ctx.launch.supervisor_pid
    if not pid:
        return None
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        ctx.request_stop(exitcodes.OK)
        return None

    def supervisor_died() -> None:
        loop.remove_reader(fd)  # level-triggered: once is enough
        ctx.log.warning("supervisor died; stopping", supervisor_pid=pid)
        ctx.request_stop(exitcodes.OK)

    loop.add_reader(fd, supervisor_died)
    return fd


async def _beat(ctx: ActorContext) -> None:
    """Liveness: the supervisor restarts an actor whose beats stop (a hung loop stops them too)."""
    pid = os.getpid()
    n = 0
    interval = ctx.launch.beat_interval
    while True:
        n += 1
        # The beat also carries what the actor's bus dropped, so `haven status` can show it.
        ctx.bus.publish(
            topics.actor_beat(ctx.launch.name),
            {"pid": pid, "n": n, "dropped": ctx.bus.dropped.total},
        )
        await asyncio.sleep(interval)


def main() -> int:
    """Fresh-interpreter entry (`python -m actors.runtime NAME`, the launch in the environment)."""
    import json

    raw = os.environ.pop(LAUNCH_ENV, "")
    if not raw:
        print(
            f"actors.runtime: {LAUNCH_ENV} is not set; actors are started by the supervisor",
            file=sys.stderr,
        )
        return exitcodes.FATAL
    return run(ActorLaunch.from_dict(json.loads(raw)))


if __name__ == "__main__":
    sys.exit(main())
