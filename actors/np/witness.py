"""Witness NP resolution (`witness`): a lease from a witness service on a third host.

When a peer goes silent, membership asks `check`: this server asks the witness
(`haven witness serve`, see `witness_server.py`) for its cluster's lease, for `hold` seconds —
the cluster's fencing wait, so the lease outlasts every check the other side can still make for
this partition. The witness grants it to the first asker and refuses the others until it runs
out: `reachable` is true only if it was granted to us now (the holder's own request extends
it). No answer, a refusal, or an answer that is not sealed with this cluster's token: isolated.
`stats` shows how long a granted lease surely still runs (`witness_protocol.valid_for`).

Between partitions a `probe` every `interval` (authenticated, changes nothing) keeps the NP
resource's state: a witness that cannot be reached while the heartbeats are fine is an NP
*error* to show and alert, never a reason to shut anything down (SPEC §4). The probe asks for
the hold too, so a witness that would refuse a lease that long shows as an error at once rather
than during a partition.

Events: `np.<name>.result` on every change of state (`normal|error`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors import exitcodes
from actors.base import Actor
from actors.np import witness_protocol as wp
from actors.np.health import NpHealth
from actors.np.leaseclock import now
from actors.np.witness_client import Answer, WitnessClient, WitnessError
from bus.rpc import Handler
from config.clusterkey import ClusterKeyError, load_cluster_key
from config.witness import WitnessUrlError


def check_time(timeout: float) -> float:
    """The longest a check takes: two requests (challenge, lease), each within `timeout`."""
    return 2 * timeout


class WitnessNp(Actor):
    async def on_start(self) -> None:
        a = self.args
        self.np_name: str = a["np"]
        self.url: str = a["url"]
        self.timeout = float(a["timeout"])
        self.hold = float(a["hold"])
        self.health = NpHealth(self, self.np_name)
        self.error: str | None = None
        self.valid_until = 0.0  # our clock: until when a lease granted to us surely runs
        self.counts = {"probes": 0, "checks": 0, "granted": 0, "refused": 0, "failed": 0}
        self.client: WitnessClient | None = None
        try:
            token = wp.cluster_token(load_cluster_key(a["key_file"]))
            self.client = WitnessClient(self.url, token, self.ctx.launch.server)
        except (ClusterKeyError, WitnessUrlError, TypeError) as exc:
            self.log.error("cannot start the witness NP resource", error=str(exc))
            self.stop(exitcodes.FATAL)  # a restart will not fix the configuration
            return
        self.every("probe", float(a["interval"]))
        self.first = asyncio.get_running_loop().create_task(self._probe(), name="first probe")
        self.log.info("witness NP started", url=self.url, cluster=self.client.cluster)

    async def on_timer(self, name: str) -> None:
        await self._probe()

    async def on_stop(self) -> None:
        first = getattr(self, "first", None)
        if first is not None:
            first.cancel()

    def requests(self) -> dict[str, Handler]:
        return {
            "check": self._check,
            "state": lambda body: {"state": self.health.state},
            "stats": lambda body: {
                "state": self.health.state,
                "error": self.error,
                "url": self.url,
                "holding_for": max(0.0, self.valid_until - now()),
                **self.counts,
            },
        }

    async def _call(self, op: str) -> Answer:
        assert self.client is not None
        try:
            async with asyncio.timeout(check_time(self.timeout)):
                return await self.client.call(op, wp.lease_duration(self.hold))
        except TimeoutError:
            limit = check_time(self.timeout)
            raise WitnessError(f"no answer from the witness within {limit:g}s") from None

    async def _probe(self) -> None:
        if self.client is None:
            return
        self.counts["probes"] += 1
        try:
            answer = await self._call("probe")
        except WitnessError as exc:
            self._update(str(exc))
            return
        self._update(None if answer.result == "ok" else answer.reason or answer.result)

    async def _check(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.client is None:
            return {"reachable": False, "reason": "the witness NP resource is not configured"}
        self.counts["checks"] += 1
        try:
            answer = await self._call("acquire")
        except WitnessError as exc:
            # Even a lease granted at an earlier check is no answer: it may run out before the
            # other side's check for this loss, which only a lease taken now surely outlasts.
            self.counts["failed"] += 1
            self._update(str(exc))
            self.log.warning("witness check: cannot confirm", error=str(exc))
            return {"reachable": False, "reason": f"cannot confirm: {exc}"}
        self._update(None)
        if answer.result == "granted":
            self.counts["granted"] += 1
            self.valid_until = answer.sent_at + wp.valid_for(answer.duration)
            if now() >= self.valid_until:
                reason = "the grant came back after the lease could have run out"
                self.log.warning("witness check: cannot confirm", error=reason)
                return {"reachable": False, "reason": reason}
            self.log.info("witness check: lease granted", hold=self.hold)
            return {"reachable": True, "reason": "the witness granted the lease"}
        self.counts["refused"] += 1
        reason = answer.reason or answer.result
        self.log.warning("witness check: lease refused", reason=reason)
        return {"reachable": False, "reason": reason, "holder": answer.holder}

    def _update(self, error: str | None) -> None:
        self.error = error
        self.health.update(error, "the witness answers again", error=error)
