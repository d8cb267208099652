"""The node supervisor: hosts the bus, starts the actors in order, watches them, restarts them,
escalates, and stops everything in reverse order within deadlines.

Exit is seen at once (a pidfd per child in the event loop); a hang by missing beats. Every child is
reaped, every socket closed and every ipc file removed before `run()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import secrets
import signal
import stat
import time
from typing import Any

import structlog
import zmq
import zmq.asyncio

from actors import exitcodes
from actors.alerts.catalogue import alert_event
from actors.launch import ActorLaunch
from bus import topics
from bus.connection import BusConnection
from bus.envelope import Envelope
from bus.paths import NodePaths, StateDirError
from bus.proxy import Proxy
from bus.rpc import RequestError, Service
from supervisor import node_actions, reaper
from supervisor.child import Child, ChildState
from supervisor.intensity import RestartIntensity, backoff_delay
from supervisor.launcher import LaunchError, SpawnLauncher, TemplateGone, TemplateLauncher
from supervisor.node_actions import NodeAction
from supervisor.spec import ChildSpec, Restart, SupervisorSettings
from supervisor.systemd import Notifier

SUPERVISOR = "supervisor"
RUNNING_MARKER = "running"  # present while a node runs; left behind by an unclean stop
UNKILLABLE_AFTER = 5.0  # seconds after SIGKILL: a process still there is stuck in the kernel


class NodeAlreadyRunning(RuntimeError):
    pass


class StateDirUnusable(RuntimeError):
    pass


class Node:
    def __init__(self, settings: SupervisorSettings, specs: list[ChildSpec]) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names) or SUPERVISOR in names:
            raise ValueError(f"child names must be unique and not {SUPERVISOR!r}: {names}")
        self.settings = settings
        self.paths = NodePaths(settings.state_dir)
        self.children: dict[str, Child] = {
            s.name: Child(s, RestartIntensity(settings.max_restarts, settings.restart_window))
            for s in specs
        }
        self.sender = f"{settings.server}/{SUPERVISOR}"
        self.log = structlog.get_logger().bind(server=settings.server, actor=SUPERVISOR)
        self.state = "starting"
        self.started_at = time.monotonic()
        self._escalation: tuple[NodeAction, str] | None = None
        self._operator_stop: NodeAction | None = None  # `haven server/cluster shutdown`
        self._lock_fd: int | None = None
        self._launcher: TemplateLauncher | SpawnLauncher | None = None
        self._notifier = Notifier()
        self._member_view: dict[str, Any] | None = None
        self.unclean_previous_stop = False
        self.run_id = secrets.token_hex(8)
        self._last_watchdog = 0.0

    # entry point -------------------------------------------------------------------------------
    def run(self) -> int:
        """Run in the foreground until SIGTERM/SIGINT or an escalation; returns the exit status."""
        try:
            self.paths.prepare()
            self._take_lock()
        except StateDirError as exc:
            raise StateDirUnusable(str(exc)) from None
        except OSError as exc:
            raise StateDirUnusable(
                f"cannot use state directory {self.paths.state_dir}: {exc.strerror or exc}"
            ) from None
        try:
            self._note_previous_stop()
            self._clear_stale_sockets()
            self._launcher = self._make_launcher()
            code = asyncio.run(self._main())
        finally:
            self._close_launcher()
            if self.state == "stopped":  # an orderly stop: the next start is a clean one
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.paths.state_dir, RUNNING_MARKER))
            self._release_lock()
        if self._escalation is not None:
            action, reason = self._escalation
            self.log.error(
                "node stopped by escalation",
                action=str(action),
                reason=reason,
                outcome=node_actions.after_stop(action, self.settings.lab),
            )
        elif self._operator_stop is not None:
            self.log.info(
                "node stopped by an operator",
                action=str(self._operator_stop),
                outcome=node_actions.after_stop(self._operator_stop, self.settings.lab),
            )
        return code

    def _make_launcher(self) -> TemplateLauncher | SpawnLauncher:
        if not reaper.become_subreaper():
            self.log.warning("could not become a child subreaper; using fresh spawns")
            return SpawnLauncher()
        if self.settings.launcher == "spawn":
            return SpawnLauncher()
        template = TemplateLauncher()
        template.start()  # before any ZeroMQ context exists in this process
        return template

    def _close_launcher(self, kill: bool = False) -> None:
        launcher, self._launcher = self._launcher, None
        if isinstance(launcher, TemplateLauncher) and launcher.pid is not None:
            launcher.close(kill)
            _wait_pid(launcher.pid, 2.0)

    def _take_lock(self) -> None:
        fd = os.open(self.paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NodeAlreadyRunning(
                f"another node is already running with state directory {self.paths.state_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _note_previous_stop(self) -> None:
        """A `running` marker left by the previous run means it did not stop in order (crash,
        SIGKILL, power loss): automatic start of groups is then held until an operator says
        so, as in the original. The marker goes when this run stops in order."""
        marker = os.path.join(self.paths.state_dir, RUNNING_MARKER)
        self.unclean_previous_stop = os.path.exists(marker)
        with open(marker, "w") as f:
            f.write(f"{os.getpid()}\n")

    def _clear_stale_sockets(self) -> None:
        # We hold the lock, so any socket file left here belongs to a node that died.
        for path in self.paths.socket_files():
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(path)

    # main loop ---------------------------------------------------------------------------------
    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._settled: dict[str, asyncio.Event] = {n: asyncio.Event() for n in self.children}
        self._exited: dict[str, asyncio.Event] = {n: asyncio.Event() for n in self.children}
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        # A closed terminal must not take the node down uncleanly.
        loop.add_signal_handler(signal.SIGHUP, self.log.info, "SIGHUP ignored")
        proxy_ctx = zmq.Context()
        proxy = Proxy(proxy_ctx, self.paths)
        zctx = zmq.asyncio.Context()
        tasks: list[asyncio.Task[Any]] = []
        self.bus: BusConnection | None = None
        service: Service | None = None
        try:
            proxy.start()
            self.bus = BusConnection(
                zctx, self.paths, self.sender, [topics.ACTOR, topics.MEMBER_VIEW]
            )
            service = Service(
                zctx,
                self.paths.service_endpoint("node"),
                self.sender,
                {
                    "status": self._status,
                    "ping": lambda body: {"pid": os.getpid()},
                    "node_action": self._node_action,
                    "shutdown": self._shutdown,
                    "config": self._config,
                    **self._log_bundles(),  # logs_bundle, logs_chunk, logs_done
                },
            )
            tasks = [
                loop.create_task(service.serve(), name="node-service"),
                loop.create_task(self._inbox(), name="inbox"),
                loop.create_task(self._patrol(), name="patrol"),
            ]
            await self._start_all()
            if not self._stop.is_set():
                self.state = "running"
                self._publish_node_state()
                self._alert("node_started", actors=len(self.children))
                if self.auto_start_held:
                    self._alert("auto_start_held")
                self._notifier.ready(self._status_line())
                self.log.info("node running", actors=len(self.children))
            await self._stop.wait()
            self._alert("node_stopping", reason=self._stop_reason())
            self.state = "stopping"
            self._notifier.stopping("stopping")
            self._publish_node_state()
            await self._stop_all()
            self.state = "stopped"
            self._publish_node_state()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await self._kill_leftovers()
            if service is not None:
                service.close()
            if self.bus is not None:
                self.bus.close()
            zctx.term()
            proxy.stop()
            proxy_ctx.term()
            self._notifier.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        self.log.info("node stopped")
        return node_actions.EXIT_ESCALATED if self._escalation else 0

    def request_stop(self) -> None:
        if not self._stop.is_set():
            self.log.info("stop requested")
            self._stop.set()

    # starting and stopping children ------------------------------------------------------------
    async def _start_all(self) -> None:
        """Start in order: the next child starts once this one runs (or has been given up on,
        or its start timeout has passed); a stop request ends the wait at once."""
        for child in self.children.values():
            if self._stop.is_set():
                return
            self._launch(child)
            waits = [
                asyncio.ensure_future(self._settled[child.spec.name].wait()),
                asyncio.ensure_future(self._stop.wait()),
            ]
            try:
                await asyncio.wait(
                    waits, timeout=child.spec.start_timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waits:
                    w.cancel()

    def _launch(self, child: Child) -> None:
        child.pending_restart = None
        if self._stop.is_set() or child.stop_requested:
            return
        spec = child.spec
        launch = ActorLaunch(
            name=spec.name,
            kind=spec.kind,
            server=self.settings.server,
            state_dir=self.settings.state_dir,
            beat_interval=self.settings.beat_interval,
            stop_timeout=spec.stop_timeout,
            args=spec.args,
            log_format=self.settings.log_format,
            supervisor_pid=os.getpid(),
            node_run=self.run_id,
        )
        child.launched_at = time.monotonic()
        child.last_beat = 0.0
        child.kill_reason = ""
        child.killed_at = 0.0
        self._settled[spec.name].clear()
        self._exited[spec.name].clear()
        try:
            pid = self._spawn(launch)
        except LaunchError as exc:
            self._set_state(child, ChildState.STARTING)
            self._on_exit(child, -1, why=f"could not be launched: {exc}")
            return
        child.pid = pid
        self._set_state(child, ChildState.STARTING)
        try:
            child.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone and reaped elsewhere: treat as an exit
            child.pidfd = None
            self._on_exit(child, -1)
            return
        asyncio.get_running_loop().add_reader(child.pidfd, self._on_pidfd, child)

    def _spawn(self, launch: ActorLaunch) -> int:
        assert self._launcher is not None
        try:
            return self._launcher.launch(launch)
        except TemplateGone as exc:
            self.log.error(
                "template process gone; actors start as fresh interpreters from now on",
                error=str(exc),
            )
            self._close_launcher(kill=True)
            self._launcher = SpawnLauncher()
            return self._launcher.launch(launch)

    def _on_pidfd(self, child: Child) -> None:
        assert child.pidfd is not None and child.pid is not None
        asyncio.get_running_loop().remove_reader(child.pidfd)
        os.close(child.pidfd)
        child.pidfd = None
        try:
            _, status = os.waitpid(child.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = -1  # not our child after all (no subreaper): exit status unknown
        self._on_exit(child, code)

    async def _stop_all(self) -> None:
        """Reverse order. After an escalation the node is standing down (fencing itself): the
        actors marked `fence_early` (heartbeats: the others must stop hearing us) go first, and
        the whole stop is bounded by the fence time, after which everything left is killed —
        the fencing wait of the surviving servers counts on that bound."""
        children = list(reversed(self.children.values()))
        if self._escalation is None:
            for child in children:
                await self._stop_child(child)
            return
        children.sort(key=lambda c: not c.spec.fence_early)  # stable: reverse order otherwise
        deadline = time.monotonic() + self.settings.fence_time
        for child in children:
            await self._stop_child(child, max(0.0, deadline - time.monotonic()))
        for child in children:
            if child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)

    async def _stop_child(self, child: Child, limit: float | None = None) -> None:
        child.stop_requested = True
        stop_timeout = (
            child.spec.stop_timeout if limit is None else min(limit, child.spec.stop_timeout)
        )
        if child.pending_restart is not None:
            child.pending_restart.cancel()
            child.pending_restart = None
        if child.pid is None:
            if child.state is not ChildState.STOPPED and child.state is not ChildState.FAILED:
                self._set_state(child, ChildState.STOPPED)
            return
        pid = child.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # a stopped (SIGSTOPped) process must wake to die
        try:
            async with asyncio.timeout(stop_timeout):
                await self._exited[child.spec.name].wait()
        except TimeoutError:
            self.log.warning(
                "actor did not stop in time; killing", name=child.spec.name, deadline=stop_timeout
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._exited[child.spec.name].wait()

    async def _kill_leftovers(self) -> None:
        """On the way out, always: nothing may outlive the node — neither an actor nor what an
        actor started and could not stop (the fencing wait of the other servers counts on it)."""
        for child in self.children.values():
            if child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                if child.pidfd is not None:
                    asyncio.get_running_loop().remove_reader(child.pidfd)
                    os.close(child.pidfd)
                    child.pidfd = None
                _wait_pid(child.pid, 2.0)
                child.pid = None
        template = getattr(self._launcher, "pid", None)
        killed = reaper.kill_descendants({template} if template else set())
        if killed:
            self.log.warning("killed what the actors left running", pids=killed)
            await asyncio.sleep(0.05)
        reaper.reap_strays(set())

    # exits, restarts, escalation ---------------------------------------------------------------
    def _on_exit(self, child: Child, code: int, why: str = "") -> None:
        name = child.spec.name
        child.pid = None
        child.last_exit = why or _describe_exit(code, child.kill_reason)
        self._exited[name].set()
        self._remove_service_socket(name)  # a killed actor cannot remove its own
        if code == exitcodes.PANIC:  # honoured even while stopping: the actor found us unsafe
            self._give_up(child, child.last_exit, escalate=False)
            self._escalate(NodeAction.PANIC, f"actor {name!r} asked to self-fence")
            return
        if child.state is ChildState.FAILED:
            return  # given up on already (it would not die); nothing to restart
        if child.stop_requested or self._stop.is_set():
            self._set_state(child, ChildState.STOPPED, child.last_exit)
            return
        self.log.warning("actor exited", name=name, exit=child.last_exit)
        if code == exitcodes.FATAL:
            self._give_up(child, child.last_exit, escalate=False)
            self._escalate(NodeAction.STOP_SERVICE, f"actor {name!r} exited fatal")
            return
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and code == 0):
            if code == 0:
                self._set_state(child, ChildState.STOPPED, child.last_exit)
            else:
                self._give_up(child, child.last_exit)
            return
        if not child.intensity.record(time.monotonic()):
            n, window = child.intensity.max_restarts, child.intensity.window
            self._give_up(child, f"more than {n} restarts in {window:g}s")
            return
        delay = backoff_delay(child.intensity.recent)
        child.restarts += 1
        self._alert("actor_restarted", actor=name, exit=child.last_exit, restarts=child.restarts)
        self._set_state(child, ChildState.RESTARTING, child.last_exit)
        child.pending_restart = asyncio.get_running_loop().call_later(delay, self._launch, child)

    def _give_up(self, child: Child, reason: str, escalate: bool = True) -> None:
        """Mark a child failed; for a critical one, that is the node's problem too."""
        if child.state is not ChildState.FAILED:
            self._set_state(child, ChildState.FAILED, reason)
            self._alert("actor_failed", actor=child.spec.name, reason=reason)
        if escalate and child.spec.critical:
            self._escalate(
                NodeAction(self.settings.on_critical_failure),
                f"critical actor {child.spec.name!r} failed: {reason}",
            )

    def _remove_service_socket(self, name: str) -> None:
        path = self.paths.service_endpoint(name).removeprefix("ipc://")
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)

    def _node_action(self, body: dict[str, Any]) -> dict[str, Any]:
        """An actor that found the node unsafe (e.g. isolated by NP resolution) asks for the
        configured node-level action."""
        try:
            action = NodeAction(body.get("action"))
        except ValueError:
            known = ", ".join(a.value for a in NodeAction)
            raise RequestError(
                f"unknown node action {body.get('action')!r} (one of: {known})"
            ) from None
        reason = str(body.get("reason") or "requested without a reason")
        self._escalate(action, reason)
        return {"action": str(action), "accepted": True}

    def _shutdown(self, body: dict[str, Any]) -> dict[str, Any]:
        """An operator stops this server (`haven server shutdown`, `haven cluster stop`): an
        orderly stop (groups released), then the OS action asked for; exit status 0."""
        then = body.get("then") or "stop_service"
        try:
            action = NodeAction(then)
        except ValueError:
            action = None
        if action not in node_actions.ORDERLY:
            raise RequestError(f"unknown shutdown {then!r} (stop_service, shutdown or reboot)")
        self.log.info("stop requested by an operator", then=str(action))
        self._operator_stop = action
        self.request_stop()
        return {"server": self.settings.server, "then": str(action), "stopping": True}

    def _escalate(self, action: NodeAction, reason: str) -> None:
        self.log.error("escalating to a node-level action", action=str(action), reason=reason)
        if self._escalation is None or action is NodeAction.PANIC:  # the one carried out
            self._alert("node_action", action=str(action), reason=reason)
            node_actions.record(self.paths.state_dir, action, reason, self.settings.lab)
        if action is NodeAction.PANIC:
            pids = [c.pid for c in self.children.values() if c.pid is not None]
            node_actions.panic_now(pids, self.settings.lab)
        if self._escalation is None:
            self._escalation = (action, reason)
        self.request_stop()

    def _alert(self, event: str, **details: Any) -> None:
        """An alert from the supervisor (actors do this with `Actor.alert`); dropped when the bus
        is not up (before the node starts, or after it stopped)."""
        if self.bus is None:
            return
        details.setdefault("server", self.settings.server)
        self.bus.publish(*alert_event(event, **details))

    def _stop_reason(self) -> str:
        if self._escalation is not None:
            return f"{self._escalation[0]}: {self._escalation[1]}"
        if self._operator_stop is not None:
            return f"operator: {self._operator_stop}"
        return "stop requested"

    # liveness ----------------------------------------------------------------------------------
    async def _inbox(self) -> None:
        assert self.bus is not None
        while True:
            env = await self.bus.receive()
            if env.topic == topics.MEMBER_VIEW:
                self._member_view = env.body  # the latest wins; shown by `status`
            elif env.topic.endswith(".beat"):
                self._on_beat(env)

    def _on_beat(self, env: Envelope) -> None:
        name = env.topic[len(topics.ACTOR) : -len(".beat")]
        child = self.children.get(name)
        if child is None or env.sender != f"{self.settings.server}/{name}":
            return
        if child.pid is None or env.body.get("pid") != child.pid:
            return  # a late beat of a previous incarnation
        child.last_beat = time.monotonic()
        dropped = env.body.get("dropped")
        if isinstance(dropped, int):
            child.bus_dropped = dropped
        if child.state is ChildState.STARTING:
            self._set_state(child, ChildState.RUNNING)

    async def _patrol(self) -> None:
        """Hang detection, the systemd watchdog, and reaping of strays, a few times per beat."""
        period = max(0.02, min(self.settings.beat_interval / 2, 0.25))
        last = time.monotonic()
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            gap, last = now - last, now
            if gap > 2 * period:
                # The whole node was stopped or starved, we with it: the silence of the actors
                # is ours, not theirs. Killing them now would also kill what must act on the
                # stall (membership standing the node down).
                for child in self.children.values():
                    if child.last_beat:
                        child.last_beat += gap - period
                    child.launched_at += gap - period
            for child in self.children.values():
                self._check_liveness(child, now)
            self._feed_watchdog(now)
            known = {c.pid for c in self.children.values() if c.pid is not None}
            reaper.reap_strays(known)

    def _check_liveness(self, child: Child, now: float) -> None:
        if child.pid is None or child.stop_requested:
            return
        if child.kill_reason:
            if now - child.killed_at > UNKILLABLE_AFTER and child.state is not ChildState.FAILED:
                self.log.error(
                    "actor survives SIGKILL (uninterruptible sleep?)",
                    name=child.spec.name,
                    pid=child.pid,
                )
                self._give_up(child, f"pid {child.pid} did not die after SIGKILL")
            return
        silent = now - child.last_beat
        if child.state is ChildState.RUNNING and silent > self.settings.beat_timeout:
            self._kill_hung(child, f"hung: no beat for {silent:.1f}s")
        elif (
            child.state is ChildState.STARTING
            and now - child.launched_at > child.spec.start_timeout
        ):
            self._kill_hung(child, f"no beat within {child.spec.start_timeout:g}s of start")

    def _kill_hung(self, child: Child, reason: str) -> None:
        if child.kill_reason:
            return  # already killed, the exit is on its way
        self.log.warning("killing actor", name=child.spec.name, reason=reason)
        child.kill_reason = reason
        child.killed_at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)

    @property
    def auto_start_held(self) -> bool:
        return self.unclean_previous_stop and self.settings.hold_after_unclean_stop

    def critical_live(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return all(
            c.state is ChildState.RUNNING and now - c.last_beat <= self.settings.beat_timeout
            for c in self.children.values()
            if c.spec.critical
        )

    def _feed_watchdog(self, now: float) -> None:
        interval = self._notifier.watchdog_interval
        if interval is None or self.state != "running" or now - self._last_watchdog < interval:
            return
        if self.critical_live(now):
            self._notifier.watchdog()
            self._last_watchdog = now

    # publishing and status ---------------------------------------------------------------------
    def _set_state(self, child: Child, new: ChildState, reason: str = "") -> None:
        old = child.transition(new)
        child.reason = reason
        if new in (ChildState.RUNNING, ChildState.FAILED, ChildState.STOPPED):
            self._settled[child.spec.name].set()  # what an ordered start waits for
        body = {
            "state": str(new),
            "previous": str(old),
            "pid": child.pid,
            "restarts": child.restarts,
            "reason": reason,
        }
        self.log.info("actor state", name=child.spec.name, **body)
        if self.bus is not None:
            self.bus.publish(topics.actor_state(child.spec.name), body)
        if self.state == "running":
            self._notifier.status(self._status_line())

    def _publish_node_state(self) -> None:
        if self.bus is not None:
            self.bus.publish(topics.NODE_STATE, {"state": self.state, "pid": os.getpid()})

    def _status_line(self) -> str:
        counts: dict[str, int] = {}
        for c in self.children.values():
            counts[c.state] = counts.get(c.state, 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"{self.state}: {parts or 'no actors'}"

    def _status(self, body: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        cluster_state = {"starting": "starting", "running": "online"}.get(self.state, "stopping")
        return {
            "cluster": {
                "name": self.settings.cluster,
                "state": cluster_state,
                "startup": (self._member_view or {}).get("startup", "complete"),
                "auto_start": "held" if self.auto_start_held else "enabled",
            },
            "server": self.settings.server,
            "servers": self._servers(),
            "np": [
                {"name": name, "state": state}
                for name, state in (self._member_view or {}).get("np", {}).items()
            ],
            "groups": [],
            "monitors": [],
            "node": {
                "pid": os.getpid(),
                "state": self.state,
                "uptime": round(now - self.started_at, 3),
                "launcher": getattr(self._launcher, "name", None),
                "critical_live": self.critical_live(now),
                "bus_dropped": self.bus.dropped.as_dict() if self.bus else {},
            },
            "actors": [
                {
                    "name": c.spec.name,
                    "kind": c.spec.kind,
                    "pid": c.pid,
                    "state": str(c.state),
                    "restarts": c.restarts,
                    "critical": c.spec.critical,
                    "last_beat_age": round(now - c.last_beat, 3) if c.last_beat else None,
                    "last_exit": c.last_exit or None,
                    "since": c.since or None,
                    "reason": c.reason or None,
                    "bus_dropped": c.bus_dropped,
                }
                for c in self.children.values()
            ],
        }

    def _config(self, body: dict[str, Any]) -> dict[str, Any]:
        """The configuration this node runs: the text as loaded at start, whatever the file now
        says (a `config push` changes the file; the node applies it when restarted)."""
        text = self.settings.config_text
        return {
            "path": self.settings.config_path,
            "text": text,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }

    def _log_bundles(self) -> dict[str, Any]:
        """This server's part of `haven logs collect` for a collector elsewhere, built by a
        process of its own so that nothing here waits on it (supervisor/logbundles.py)."""
        from supervisor.logbundles import LogBundles

        return LogBundles(self.settings).handlers()

    def _servers(self) -> list[dict[str, Any]]:
        """Every server as the membership view has it (this one alone without heartbeats)."""
        view = (self._member_view or {}).get("servers")
        if not isinstance(view, dict):
            return [{"name": self.settings.server, "state": "online", "heartbeats": {}}]
        return [{"name": name, **info} for name, info in view.items() if isinstance(info, dict)]


def _describe_exit(code: int, kill_reason: str) -> str:
    if code < 0:
        try:
            what = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            what = "exit status unknown" if code == -1 else f"killed by signal {-code}"
    else:
        what = f"exit {code} ({exitcodes.NAMES.get(code, 'restart')})"
    return f"{what}: {kill_reason}" if kill_reason else what


def _wait_pid(pid: int, timeout: float) -> bool:
    """Reap `pid`, SIGKILLing it if it outlives `timeout`; blocking, used only on the way out.
    False if even SIGKILL did not end it within a second (stuck in the kernel)."""
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if time.monotonic() > deadline:
            if killed:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 1.0
        time.sleep(0.01)
