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
        self._timer_handler: Any = None

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
            await self._timer_handler(name)

    def timers(self) -> list[asyncio.Task[None]]:
        return list(self._timers.values())


class _HookFailed(Exception):
    pass


def run(launch: ActorLaunch) -> int:
    logs.configure(launch.log_format)
    # The process may come from a fork of the template: start from clean signal handling.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    # Ctrl-C in a terminal reaches the whole process group; an actor stops only when its
    # supervisor says so (SIGTERM), in the supervisor's order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return asyncio.run(_main(launch))
    except KeyboardInterrupt:
        return exitcodes.OK


async def _main(launch: ActorLaunch) -> int:
    zctx = zmq.asyncio.Context()
    ctx = ActorContext(launch, zctx)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, ctx.request_stop, exitcodes.OK)
    orphan_watch = _watch_supervisor(ctx, loop)
    service: Service | None = None
    tasks: list[asyncio.Task[Any]] = []
    actor: Actor | None = None
    try:
        actor = registry.actor_class(launch.kind)(ctx)
        failed: list[BaseException] = []

        async def guarded(coro: Any) -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                failed.append(exc)
                ctx.request_stop(exitcodes.RESTART)
                raise _HookFailed() from exc

        ctx._timer_handler = lambda name: guarded(actor.on_timer(name))
        for prefix in type(actor).subscriptions:
            ctx.bus.subscribe(prefix)
        # The supervisor always listens for beats, so a subscription arrives within
        # milliseconds; the deadline only keeps a broken bus from holding the start.
        if not await ctx.bus.wait_for_subscribers(timeout=2.0):
            ctx.log.warning("no subscriber reached this actor within 2s; events may be lost")
        try:
            await actor.on_start()
        except Exception as exc:
            failed.append(exc)
            ctx.request_stop(exitcodes.RESTART)
        if not failed:
            handlers = actor.requests()
            if handlers:
                service = Service(
                    zctx, ctx.paths.service_endpoint(launch.name), ctx.sender, handlers
                )
                tasks.append(loop.create_task(service.serve(), name="service"))
            tasks.append(loop.create_task(_beat(ctx), name="beat"))
            if type(actor).subscriptions:
                tasks.append(loop.create_task(_inbox(ctx, actor, guarded), name="inbox"))
        await ctx.stopping.wait()
        if failed:
            with contextlib.suppress(Exception):
                await actor.on_failure(failed[0])
        else:
            try:
                async with asyncio.timeout(max(0.1, launch.stop_timeout * 0.8)):
                    await actor.on_stop()
            except TimeoutError:
                ctx.log.warning("on_stop exceeded its deadline", deadline=launch.stop_timeout)
                ctx.exit_code = ctx.exit_code or exitcodes.RESTART
            except Exception as exc:
                ctx.log.error("on_stop failed", error=repr(exc))
                ctx.exit_code = ctx.exit_code or exitcodes.RESTART
        return ctx.exit_code
    except Exception as exc:
        ctx.log.error("actor could not start", error=repr(exc))
        return exitcodes.RESTART
    finally:
        for task in tasks + ctx.timers():
            task.cancel()
        for task in tasks + ctx.timers():
            with contextlib.suppress(BaseException):
                await task
        if service is not None:
            service.close()
        if orphan_watch is not None:
            loop.remove_reader(orphan_watch)
            os.close(orphan_watch)
        ctx.bus.close()
        zctx.term()


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


async def _inbox(ctx: ActorContext, actor: Actor, guarded: Any) -> None:
    while True:
        env = await ctx.bus.receive()
        await guarded(actor.on_receive(env))


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
