"""The trivial actor: ticks on the bus and answers requests. Used by the demo and the tests.

Arguments (all optional): `interval` (seconds or a duration string, default 1s) between
`echo.<name>.tick` events; `fail_start` (true: raise in on_start, for crash-loop tests);
`start_delay` (seconds on_start takes, as a slow start does).
Every echo actor answers an `echo.ping` event with `echo.<name>.pong` carrying the same body.
Requests: `echo` (returns its body), `info` (pid and tick count),
`exit {code}` (ends the process with that exit code — how tests exercise the exit-code contract),
`block {seconds}` (blocks the event loop, as a hung actor does).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from actors.base import Actor
from bus import topics
from bus.envelope import Envelope
from bus.rpc import Handler, RequestError
from config.durations import parse_duration


class EchoActor(Actor):
    subscriptions = (topics.ECHO_PING,)

    async def on_receive(self, env: Envelope) -> None:
        if env.topic == topics.ECHO_PING:
            self.publish(topics.echo_pong(self.name), env.body)

    async def on_start(self) -> None:
        interval = self.args.get("interval", 1.0)
        self.interval = parse_duration(interval) if isinstance(interval, str) else float(interval)
        await asyncio.sleep(float(self.args.get("start_delay", 0)))
        if self.args.get("fail_start"):
            raise RuntimeError("told to fail at start (fail_start)")
        self.ticks = 0
        self.every("tick", self.interval)
        self.log.info("echo actor started", interval=self.interval)

    async def on_timer(self, name: str) -> None:
        self.ticks += 1
        self.publish(topics.echo_tick(self.name), {"n": self.ticks})

    def requests(self) -> dict[str, Handler]:
        return {"echo": self._echo, "info": self._info, "exit": self._exit, "block": self._block}

    def _echo(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def _info(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "ticks": self.ticks, "interval": self.interval}

    def _exit(self, body: dict[str, Any]) -> dict[str, Any]:
        code = body.get("code", 0)
        if not isinstance(code, int) or not 0 <= code <= 255:
            raise RequestError("exit code must be an integer from 0 to 255")
        self.stop(code)
        return {"exiting": code}

    def _block(self, body: dict[str, Any]) -> dict[str, Any]:
        seconds = float(body.get("seconds", 10))
        time.sleep(seconds)  # deliberately blocks the loop: the beat stops too
        return {"blocked": seconds}
