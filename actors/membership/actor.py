"""The membership actor: folds `hb.<heartbeat>.<server>` path events into the membership view.

Publishes `member.view` (the whole view, on every change of a path or a server and every few
seconds so a late subscriber catches up) and alerts as `alert.<level>` events for the alert
service to route: server up/down, path lost/restored, heartbeat delay warning, only one path
left. The epoch is persisted in the state directory so that it keeps increasing across restarts.
At start it asks every heartbeat actor for its paths, so a restart loses nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

from actors.base import Actor
from actors.counter_file import next_counter, store_counter
from actors.membership.view import Event, MembershipView
from bus import topics
from bus.envelope import Envelope
from bus.rpc import AsyncClient, Handler, RequestError

REFRESH = 5.0  # seconds between unprompted `member.view` publications

MESSAGES = {
    "server_up": "server {server} is up",
    "server_down": "server {server} is down: every heartbeat path to it is silent",
    "path_lost": "heartbeat {heartbeat} to server {server} lost",
    "path_restored": "heartbeat {heartbeat} to server {server} restored",
    "delay_warning": "heartbeat {heartbeat} from server {server} is late",
    "one_path_left": "only one heartbeat path to server {server} is left ({heartbeat})",
}


class MembershipActor(Actor):
    subscriptions = (topics.HEARTBEAT,)

    async def on_start(self) -> None:
        a = self.args
        self.heartbeat_actors: dict[str, str] = a["heartbeat_actors"]
        self.epoch_file = os.path.join(self.ctx.paths.state_dir, "membership.epoch")
        # The epoch continues from the last one stored (or the clock): it never goes back.
        epoch = next_counter(self.epoch_file)
        self.view = MembershipView(self.ctx.launch.server, a["peers"], float(a["settle"]), epoch)
        for heartbeat, actor in self.heartbeat_actors.items():
            await self._seed(heartbeat, actor)
        self._emit(self.view.tick(time.monotonic()))
        self._publish_view()
        self.every("tick", max(0.01, float(a["settle"]) / 4))
        self.every("refresh", REFRESH)

    async def _seed(self, heartbeat: str, actor: str) -> None:
        client = AsyncClient(self.ctx.zctx, self.ctx.paths.service_endpoint(actor), self.ctx.sender)
        try:
            paths = await client.request("paths", timeout=2.0)
        except RequestError as exc:
            self.log.warning(
                "heartbeat actor did not answer; waiting for its events",
                heartbeat=heartbeat,
                error=str(exc),
            )
            return
        finally:
            client.close()
        now = time.monotonic()
        for server, path in paths.items():
            self._emit(self.view.path_changed(server, heartbeat, path["state"], now))

    async def on_receive(self, env: Envelope) -> None:
        heartbeat, peer, state = (env.body.get(k) for k in ("heartbeat", "peer", "state"))
        if isinstance(heartbeat, str) and isinstance(peer, str) and isinstance(state, str):
            events = self.view.path_changed(peer, heartbeat, state, time.monotonic())
            self._emit(events, path_changed=True)  # the view shows every path: always news

    async def on_timer(self, name: str) -> None:
        if name == "tick":
            self._emit(self.view.tick(time.monotonic()))
        else:
            self._publish_view()

    def requests(self) -> dict[str, Handler]:
        return {"view": lambda body: self.view.snapshot()}

    def _emit(self, events: list[Event], path_changed: bool = False) -> None:
        """Publish what changed: the new epoch is stored and the view goes out before the
        alerts about it, so whoever reacts to an alert can already read the view."""
        server_changed = any(e.kind in ("server_up", "server_down") for e in events)
        if server_changed:
            store_counter(self.epoch_file, self.view.epoch)
        if server_changed or path_changed:
            self._publish_view()
        for e in events:
            message = MESSAGES[e.kind].format(server=e.server, **e.details)
            body: dict[str, Any] = {
                "module": "membership",
                "event": e.kind,
                "server": e.server,
                "message": message,
                **e.details,
            }
            self.publish(topics.alert(e.level), body)
            log = self.log.warning if e.level != "info" else self.log.info
            log(message, alert=e.kind)

    def _publish_view(self) -> None:
        self.publish(topics.MEMBER_VIEW, self.view.snapshot())
