"""The Actor base class: explicit lifecycle hooks, run by `actors.runtime` in its own process.

An actor subclass overrides the hooks it needs:
  on_start()           once, before anything is received; raising here is a failed start
  on_receive(env)      every envelope whose topic matches `subscriptions`
  on_timer(name)       each tick of a timer set with `every(name, seconds)`
  on_stop()            once, on SIGTERM or `stop()`, within the actor's shutdown deadline
  on_failure(exc)      after a hook raised; the process then exits RESTART
and may offer request handlers by returning them from `requests()` (answered one at a time unless
`concurrent_requests`).

Hooks run one at a time, even when one awaits (one inbox); request handlers run beside them. A
hook that blocks the loop also stops the liveness beat, and the supervisor treats the actor as
hung.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from actors.runtime import ActorContext
    from bus.envelope import Envelope
    from bus.rpc import Handler


class Actor:
    subscriptions: ClassVar[tuple[str, ...]] = ()
    concurrent_requests: ClassVar[bool] = False  # True: each request in its own task

    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx
        self.name = ctx.launch.name
        self.args: dict[str, Any] = dict(ctx.launch.args)
        self.log = ctx.log

    # lifecycle hooks ---------------------------------------------------------------------------
    async def on_start(self) -> None:
        pass

    async def on_receive(self, env: Envelope) -> None:
        pass

    async def on_timer(self, name: str) -> None:
        pass

    async def on_stop(self) -> None:
        pass

    async def on_failure(self, exc: BaseException) -> None:
        self.log.error("actor failed", error=repr(exc))

    def requests(self) -> dict[str, Handler]:
        return {}

    # services for subclasses -------------------------------------------------------------------
    def every(self, name: str, seconds: float) -> None:
        self.ctx.set_timer(name, seconds)

    def cancel_timer(self, name: str) -> None:
        self.ctx.cancel_timer(name)

    def publish(self, topic: str, body: dict[str, Any] | None = None) -> None:
        """Publish an event now (never blocks; dropped and counted if the bus is saturated)."""
        self.ctx.bus.publish(topic, body)

    def alert(self, event: str, **details: Any) -> None:
        """Raise an alert from the event catalogue (actors/alerts/catalogue.py): published as
        `alert.<level>` with its module, ID and rendered message, and logged here. `server`
        defaults to this server."""
        from actors.alerts.catalogue import alert_event

        details.setdefault("server", self.ctx.launch.server)
        topic, body = alert_event(event, **details)
        self.publish(topic, body)
        log = self.log.info if topic.endswith("info") else self.log.warning
        log(body["message"], alert=event)

    def stop(self, exit_code: int = 0) -> None:
        self.ctx.request_stop(exit_code)

    async def ask(
        self, service: str, method: str, body: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> Any:
        """One request to a service of this server's bus (another actor, or "node" for the
        supervisor). Raises bus.rpc.RequestError on an error answer or no answer in time."""
        from bus.rpc import AsyncClient

        client = AsyncClient(
            self.ctx.zctx, self.ctx.paths.service_endpoint(service), self.ctx.sender
        )
        try:
            return await client.request(method, body, timeout=timeout)
        finally:
            client.close()
