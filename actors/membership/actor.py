"""The membership actor: folds `hb.<heartbeat>.<server>` path events into the membership view,
and resolves network partitions.

Publishes `member.view` (the whole view, on every change of a path, a server or an NP resource,
and every few seconds so a late subscriber catches up) and alerts as `alert.<level>` events for
the alert service to route: server up/down, path lost/restored, heartbeat delay warning, only one
path left, NP decisions. The epoch is persisted in the state directory so that it keeps
increasing across restarts. At start it asks every heartbeat actor for its paths, so a restart
loses nothing.

At node start it waits up to `startup_wait` for every other server (alerts when the wait starts
and ends, complete or timed out); a restart of this actor within the same node run does not wait
again. The view carries `startup`: waiting | complete | timed_out.

When a server goes down, NP resolution runs (see `resolution.py`): an isolated server asks the
supervisor for the configured node-level action and from then on ignores every other loss (SPEC
§12-17: a server that is shutting itself down must not start failovers); a surviving one reports
the lost server `fenced` only after the fencing wait. A server whose every heartbeat reports a
stall longer than the timeout (it was paused or starved) has surely been declared dead by the
others: it fences itself at once.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from actors import exitcodes
from actors.base import Actor
from actors.counter_file import next_counter, store_counter
from actors.membership.resolution import NP_REQUEST_MARGIN, majority_survives
from actors.membership.view import Event, MembershipView
from bus import topics
from bus.envelope import Envelope
from bus.rpc import Handler, RequestError

REFRESH = 5.0  # seconds between unprompted `member.view` publications

class MembershipActor(Actor):
    subscriptions = (topics.HEARTBEAT, topics.HEARTBEAT_STALL, topics.NP)

    async def on_start(self) -> None:
        a = self.args
        self.me = self.ctx.launch.server
        self.heartbeat_actors: dict[str, str] = a["heartbeat_actors"]
        self.servers: list[str] = a["servers"]
        self.master: str = a["master"]
        self.nps: list[dict[str, Any]] = a["np"]
        self.on_isolation: str = a["on_isolation"]
        self.fence_wait = float(a["fence_wait"])
        self.timeout = float(a["timeout"])
        self.np_states: dict[str, str] = {np["name"]: "unknown" for np in self.nps}
        self.stalls: dict[str, float] = {}
        self.deaf: dict[tuple[str, str], bool] = {}  # (peer, heartbeat): it no longer hears us
        self.fencing = False
        self.pending_fences: dict[str, asyncio.TimerHandle] = {}
        self.epoch_file = os.path.join(self.ctx.paths.state_dir, "membership.epoch")
        # The epoch continues from the last one stored (or the clock): it never goes back.
        epoch = next_counter(self.epoch_file)
        self.view = MembershipView(self.me, a["peers"], float(a["settle"]), epoch)
        for heartbeat, actor in self.heartbeat_actors.items():
            await self._seed(heartbeat, actor)
        for np in self.nps:
            if np["actor"]:
                answer = await self._ask(np["actor"], "state", 2.0)
                if answer:
                    self.np_states[np["name"]] = answer["state"]
        self._emit(self.view.tick(time.monotonic()))
        restarted = self._begin_startup(float(a["startup_wait"]))
        self._publish_view()
        if restarted:
            # Restarted within the node's run: a resolution may have been cut short and the
            # fence timers are gone. Resolve again every loss we see (the full wait again).
            offline = [
                s for s, v in self.view.snapshot()["servers"].items() if v["state"] == "offline"
            ]
            await self._resolve(offline)
        self.every("tick", max(0.01, float(a["settle"]) / 4))
        self.every("refresh", REFRESH)

    async def on_stop(self) -> None:
        for handle in self.pending_fences.values():
            handle.cancel()

    async def _seed(self, heartbeat: str, actor: str) -> None:
        paths = await self._ask(actor, "paths", 2.0)
        if paths is None:
            return  # its events will come
        now = time.monotonic()
        for server, path in paths.items():
            self._emit(self.view.path_changed(server, heartbeat, path["state"], now))

    async def on_receive(self, env: Envelope) -> None:
        if self.fencing:
            return  # shutting ourselves down: nothing more may start a failover (SPEC §12-17)
        body = env.body
        if env.topic.startswith(topics.HEARTBEAT_STALL):
            await self._on_stall(body)
        elif env.topic.startswith(topics.NP):
            if body.get("np") in self.np_states and isinstance(body.get("state"), str):
                self.np_states[body["np"]] = body["state"]
                self._publish_view()
        else:
            heartbeat, peer, state = (body.get(k) for k in ("heartbeat", "peer", "state"))
            if isinstance(heartbeat, str) and isinstance(peer, str) and isinstance(state, str):
                self.deaf[(peer, heartbeat)] = body.get("deaf") is True
                events = self.view.path_changed(peer, heartbeat, state, time.monotonic())
                self._emit(events, path_changed=True)  # the view shows every path: always news
                await self._resolve_if_lost(events)
                await self._check_declared_dead(peer)

    async def on_timer(self, name: str) -> None:
        if self.fencing:
            return
        if name == "tick":
            events = self.view.tick(time.monotonic())
            self._emit(events)
            self._check_startup()
            await self._resolve_if_lost(events)
        else:
            self._publish_view()

    def requests(self) -> dict[str, Handler]:
        return {"view": lambda body: self._snapshot()}

    # cluster start -----------------------------------------------------------------------------
    def _begin_startup(self, wait: float) -> bool:
        """Wait for the others once per node run: the marker holds the run's id."""
        self.startup_marker = os.path.join(self.ctx.paths.state_dir, "startup.done")
        run = self.ctx.launch.node_run
        try:
            with open(self.startup_marker) as f:
                done = f.read().split()
        except FileNotFoundError:
            done = []
        if done[:1] == [run]:
            self.startup = done[1] if len(done) > 1 else "complete"
            return True  # this actor restarted within the run
        self.startup = "waiting"
        self.startup_deadline = time.monotonic() + wait
        missing = self._missing()
        if missing:
            self.alert("startup_wait", wait=f"{wait:g}", missing=missing)
        self._check_startup()
        return False

    def _missing(self) -> list[str]:
        online = set(self.view.online())
        return [s for s in self.servers if s != self.me and s not in online]

    def _check_startup(self) -> None:
        if self.startup != "waiting":
            return
        missing = self._missing()
        if not missing:
            self.startup = "complete"
            self.alert("startup_complete")
        elif time.monotonic() >= self.startup_deadline:
            self.startup = "timed_out"
            self.alert("startup_timeout", missing=missing)
        else:
            return
        with open(self.startup_marker, "w") as f:
            f.write(f"{self.ctx.launch.node_run} {self.startup}\n")
        self._publish_view()

    # partitions --------------------------------------------------------------------------------
    async def _resolve_if_lost(self, events: list[Event]) -> None:
        for e in events:
            if e.kind == "server_up":
                self._cancel_fence(e.server)
        # A server never seen up (not started yet, at cluster start) is no partition to resolve.
        lost = [
            e.server
            for e in events
            if e.kind == "server_down" and e.details.get("previous") == "online"
        ]
        await self._resolve(lost)

    async def _resolve(self, lost: list[str]) -> None:
        if not lost:
            return
        verdicts = {}
        for np in self.nps:
            verdicts[np["name"]] = await self._np_verdict(np)
        if all(verdicts.values()):  # with no NP resource configured, too: configure one!
            self.alert("np_survive", verdicts=self._describe(verdicts), lost_servers=lost)
            loop = asyncio.get_running_loop()
            for server in lost:
                self._cancel_fence(server)
                self.pending_fences[server] = loop.call_later(self.fence_wait, self._fenced, server)
        else:
            await self._fence_self(
                f"network partition: this server is isolated ({self._describe(verdicts)})"
            )

    async def _np_verdict(self, np: dict[str, Any]) -> bool:
        if np["type"] == "majority":
            return majority_survives(self.view.online(), self.me, self.servers, self.master)
        answer = await self._ask(np["actor"], "check", float(np["check_time"]) + NP_REQUEST_MARGIN)
        return bool(answer and answer.get("reachable"))  # no answer: cannot confirm: isolated

    def _cancel_fence(self, server: str) -> None:
        handle = self.pending_fences.pop(server, None)
        if handle is not None:
            handle.cancel()

    def _fenced(self, server: str) -> None:
        self.pending_fences.pop(server, None)
        if not self.fencing and self.view.mark_fenced(server):
            try:  # a timer callback: nothing above it would catch this
                store_counter(self.epoch_file, self.view.epoch)
            except OSError as exc:
                self.log.error("cannot store the membership epoch", error=str(exc))
            self._publish_view()
            self.alert("server_fenced", server=server)

    async def _check_declared_dead(self, peer: str) -> None:
        """A peer we hear but that hears us on no path has declared us down (a one-way loss):
        it resolves the partition as the survivor and will take over; we stand down."""
        paths = self.view.snapshot()["servers"].get(peer, {}).get("heartbeats", {})
        if peer not in self.view.online() or not any(self.deaf.get((peer, hb)) for hb in paths):
            return
        if all(self.deaf.get((peer, hb)) or state == "error" for hb, state in paths.items()):
            await self._fence_self(
                f"server {peer} no longer hears this server on any heartbeat path "
                "(a one-way loss): it has declared this server down"
            )

    async def _on_stall(self, body: dict[str, Any]) -> None:
        heartbeat = body.get("heartbeat")
        if heartbeat not in self.heartbeat_actors:
            return
        now = time.monotonic()
        self.stalls[heartbeat] = now
        recent = [hb for hb, at in self.stalls.items() if now - at < 2 * self.timeout]
        if set(recent) == set(self.heartbeat_actors):
            await self._fence_self(
                f"this server was stalled for {body.get('stalled_for')}s, longer than the "
                "heartbeat timeout: the other servers have declared it dead"
            )

    async def _fence_self(self, reason: str) -> None:
        self.fencing = True
        for server in list(self.pending_fences):
            self._cancel_fence(server)
        self._publish_view()  # `fencing`: the groups coordinator here decides nothing more
        self.alert("np_isolated", reason=reason, action=self.on_isolation)
        answer = await self._ask(
            "node", "node_action", 5.0, {"action": self.on_isolation, "reason": reason}
        )
        if answer is None:  # standing down is not optional: the exit-code contract's panic
            self.log.error("the supervisor did not take the node action; panic", reason=reason)
            self.stop(exitcodes.PANIC)

    # publishing --------------------------------------------------------------------------------
    def _emit(self, events: list[Event], path_changed: bool = False) -> None:
        """Publish what changed: the new epoch is stored and the view goes out before the
        alerts about it, so whoever reacts to an alert can already read the view."""
        server_changed = any(e.kind in ("server_up", "server_down") for e in events)
        if server_changed:
            store_counter(self.epoch_file, self.view.epoch)
        if server_changed or path_changed:
            self._publish_view()
        for e in events:
            self.alert(e.kind, server=e.server, **e.details)

    def _snapshot(self) -> dict[str, Any]:
        view = self.view.snapshot()
        # servers in the configured priority order (the master first), as an operator reads them
        view["servers"] = {s: view["servers"][s] for s in self.servers if s in view["servers"]}
        # `majority` has no actor: its state is what it would decide now (normal: this server
        # is in a majority partition)
        survives = majority_survives(self.view.online(), self.me, self.servers, self.master)
        majority = "normal" if survives else "error"
        np_states = {
            np["name"]: majority if np["type"] == "majority" else self.np_states[np["name"]]
            for np in self.nps
        }
        return {
            **view,
            "np": np_states,
            "fencing": self.fencing,
            "startup": getattr(self, "startup", "waiting"),
        }

    def _publish_view(self) -> None:
        self.publish(topics.MEMBER_VIEW, self._snapshot())

    @staticmethod
    def _describe(verdicts: dict[str, bool]) -> str:
        if not verdicts:
            return "no NP resource configured"
        return ", ".join(f"{n}: {'survive' if ok else 'isolated'}" for n, ok in verdicts.items())

    async def _ask(
        self, service: str, method: str, timeout: float, body: dict[str, Any] | None = None
    ) -> Any:
        try:
            return await self.ask(service, method, body, timeout)
        except RequestError as exc:
            self.log.warning("request failed", service=service, method=method, error=str(exc))
            return None
