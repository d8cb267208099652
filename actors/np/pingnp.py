"""Ping NP resolution (`pingnp`): can this server reach any of the targets (the router)?

Two uses. When a peer goes silent, membership asks `check`: a fresh probe, `retry` + 1 rounds of
`timeout` at most, answered as soon as any target replies — a server that reaches none is the
isolated one. Between partitions, a routine probe every `interval` keeps the NP resource's state:
a target that is down while the heartbeats are fine is an NP *error* to show and alert, never a
reason to shut anything down (SPEC §4, §12-43).

Events: `np.<name>.result` on every change of state (`normal|error`, and the target that answered).
"""

from __future__ import annotations

from typing import Any

from actors.base import Actor
from actors.np.health import NpHealth
from actors.np.icmp import IcmpProber
from bus.rpc import Handler


class PingNp(Actor):
    async def on_start(self) -> None:
        a = self.args
        self.np_name: str = a["np"]
        self.targets: list[str] = list(a["targets"])
        self.timeout = float(a["timeout"])
        self.retry = int(a["retry"])
        self.prober = IcmpProber()
        self.health = NpHealth(self, self.np_name)
        self.every("routine", float(a["interval"]))

    async def on_timer(self, name: str) -> None:
        self._update(await self._reachable())

    async def on_stop(self) -> None:
        self.prober.close()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        if hasattr(self, "prober"):
            self.prober.close()

    def requests(self) -> dict[str, Handler]:
        return {"check": self._check, "state": lambda body: {"state": self.health.state}}

    async def _check(self, body: dict[str, Any]) -> dict[str, Any]:
        target = await self._reachable()
        self._update(target)
        return {"reachable": target is not None, "target": target}

    async def _reachable(self) -> str | None:
        for _ in range(self.retry + 1):
            target = await self.prober.any_reachable(self.targets, self.timeout)
            if target is not None:
                return target
        return None

    def _update(self, target: str | None) -> None:
        error = None if target is not None else f"no target answers ({', '.join(self.targets)})"
        self.health.update(error, f"{target} answers again", target=target)
