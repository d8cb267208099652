"""The common part of every alert sender (syslog, mail, SNMP, exec): one actor per configured
`[[alert]]` destination, subscribing to alert events.

Why one shape for all: a destination that is down must never block or crash anything else, and
must not lose what it was asked to send while the alert log keeps the record anyway. So a sender
takes only this server's own alerts (each server tells of what happened on it; the others'
alerts reach their own senders), keeps those its routing lets through (level ≥ `min_level`, the
event in its `events` or the catalogue's default routes — actors/alerts/catalogue.py), queues
them (bounded: when full the oldest are dropped, counted, and said in an alert), and one worker
delivers them in order. A burst arriving within `batch_window` goes out as one delivery (mail
sets it: a failover storm is one mail, not a hundred). A failed delivery is retried with
back-off, the batch kept at the head of the queue (a sender with `retries = False` — exec — counts
it and goes on); the first failure and the recovery are alerts themselves (to the alert log and
syslog, never to the failing destination).

Subclasses implement `prepare()` (read `self.params`), `deliver(alerts)` — raise
`DeliveryError` (or OSError / TimeoutError) to have it retried — and `close()`.

Requests: `state` → counters and the last error; `test` {count?, text?} → publish `alert_test`
events addressed to this destination (through the alert log, the routing's level check and the
batching, like any alert: the operator's `haven alerts test`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any, ClassVar

from actors.alerts.catalogue import EVENTS, LEVELS, routed_to
from actors.alerts.record import Alert
from actors.base import Actor
from bus import topics
from bus.envelope import Envelope
from bus.rpc import Handler, RequestError

QUEUE = 1000  # alerts waiting for a destination before the oldest are dropped
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
TEST_MAX = 1000
FLUSH_AT_STOP = 3.0  # a stopping sender gives what it holds this long to go out


class DeliveryError(Exception):
    """The destination refused the alerts or could not be reached; they are retried."""


class PermanentDeliveryError(DeliveryError):
    """The destination refused these alerts for good (a mail server refusing every recipient with
    5xx): the same batch can never succeed, so it is counted as a failure and dropped, not retried
    (the alert log keeps it)."""


class AlertSender(Actor):
    subscriptions = (topics.ALERT,)
    batch_window: ClassVar[float] = 0.0  # seconds a burst is gathered into one delivery
    max_batch: ClassVar[int] = 1  # alerts handed to one deliver() call
    deliver_timeout: ClassVar[float] = 30.0  # a delivery that takes longer has failed
    retries: ClassVar[bool] = True  # False: a failed delivery is counted and not tried again

    async def on_start(self) -> None:
        a = self.args
        self.me = self.ctx.launch.server
        self.destination: str = a["destination"]
        self.kind: str = a["type"]
        self.min_level: str = a.get("min_level") or "info"
        events = a.get("events")
        self.events: tuple[str, ...] | None = tuple(events) if events is not None else None
        self.params: dict[str, Any] = dict(a.get("params") or {})
        self.queue: deque[Alert] = deque()
        self.wake = asyncio.Event()
        self.counts = {"sent": 0, "deliveries": 0, "failures": 0, "dropped": 0, "filtered": 0}
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.dropped_unsaid = 0
        await self.prepare()
        self.worker = asyncio.ensure_future(self._work())

    async def on_stop(self) -> None:
        self.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.worker
        if self.queue and self.failing_since is None:
            batch = list(self.queue)[: self.max_batch]
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FLUSH_AT_STOP):
                    await self.deliver(batch)
                    self.counts["sent"] += len(batch)
                    for _ in batch:
                        self.queue.popleft()
        if self.queue:
            self.log.warning("alerts not delivered at stop", count=len(self.queue))
        await self.close()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        if hasattr(self, "worker"):
            self.worker.cancel()
        with contextlib.suppress(Exception):
            await self.close()

    # what a subclass provides ----------------------------------------------------------------
    async def prepare(self) -> None:
        pass

    async def deliver(self, alerts: list[Alert]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    # routing -----------------------------------------------------------------------------------
    async def on_receive(self, env: Envelope) -> None:
        if env.server != self.me:
            return  # the server it happened on sends it
        alert = Alert.from_envelope(env)
        if self.takes(alert):
            self._enqueue(alert)
        else:
            self.counts["filtered"] += 1

    def takes(self, alert: Alert) -> bool:
        if alert.event == "alert_test":  # an operator's test: for the destination it names
            return alert.details.get("destination") == self.destination
        if alert.module == "alert" and alert.details.get("destination") == self.destination:
            return False  # never tell a destination about its own trouble
        if LEVELS.index(alert.level) < LEVELS.index(self.min_level):
            return False
        return routed_to(EVENTS.get(alert.event), self.kind, self.events)

    def _enqueue(self, alert: Alert) -> None:
        trouble = alert.module == "alert" and alert.event != "alert_test"
        if trouble and (self.failing_since or len(self.queue) >= QUEUE):
            return  # news of other destinations' trouble, while in trouble: never a ping-pong
        if len(self.queue) >= QUEUE:
            self.queue.popleft()
            self.counts["dropped"] += 1
            self.dropped_unsaid += 1
        self.queue.append(alert)
        self.wake.set()

    # delivery ----------------------------------------------------------------------------------
    async def _work(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            await self.wake.wait()
            if self.batch_window and self.failing_since is None:
                await asyncio.sleep(self.batch_window)  # let the burst gather
            self.wake.clear()
            while self.queue:
                self._say_dropped()
                batch = [self.queue[i] for i in range(min(self.max_batch, len(self.queue)))]
                try:
                    async with asyncio.timeout(self.deliver_timeout):
                        await self.deliver(batch)
                except (DeliveryError, OSError, TimeoutError) as exc:
                    self._failed(exc)
                    if self.retries and not isinstance(exc, PermanentDeliveryError):
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, BACKOFF_MAX)
                        continue
                    for _ in batch:
                        self.queue.popleft()
                    continue
                except Exception as exc:  # a sender's bug or an alert it cannot take: never
                    self.log.error("alert delivery failed", error=repr(exc))  # a dead worker
                    self._failed(exc)
                    for _ in batch:
                        self.queue.popleft()
                    continue
                for _ in batch:
                    self.queue.popleft()
                self.counts["sent"] += len(batch)
                self.counts["deliveries"] += 1
                backoff = BACKOFF_FIRST
                if self.failing_since is not None:
                    self.failing_since = None
                    self.log.info("alert destination delivers again", destination=self.destination)
                    self.alert(
                        "alert_delivery_restored",
                        destination=self.destination,
                        type=self.kind,
                        pending=len(self.queue),
                    )

    def _failed(self, exc: BaseException) -> None:
        self.counts["failures"] += 1
        error = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            error = f"no answer within {self.deliver_timeout:g}s"
        self.last_error = error
        if self.failing_since is None:
            self.failing_since = time.time()
            self.log.warning("alert destination failing", destination=self.destination, error=error)
            self.alert(
                "alert_delivery_failing", destination=self.destination, type=self.kind, error=error
            )

    def _say_dropped(self) -> None:
        if self.dropped_unsaid:
            count, self.dropped_unsaid = self.dropped_unsaid, 0
            self.alert("alerts_dropped", destination=self.destination, count=count)

    # requests ----------------------------------------------------------------------------------
    def requests(self) -> dict[str, Handler]:
        return {"state": self._state, "test": self._test}

    def _state(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "type": self.kind,
            "queued": len(self.queue),
            "failing_since": self.failing_since,
            "last_error": self.last_error,
            **self.counts,
        }

    def _test(self, body: dict[str, Any]) -> dict[str, Any]:
        count = body.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= TEST_MAX:
            raise RequestError(f"'count' must be a whole number from 1 to {TEST_MAX}")
        text = str(body.get("text") or "this is a test")
        for i in range(count):
            suffix = f" ({i + 1} of {count})" if count > 1 else ""
            self.alert("alert_test", destination=self.destination, text=text + suffix)
        return {"destination": self.destination, "published": count}
