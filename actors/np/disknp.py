"""Disk NP resolution (`disknp`): a lease in a small area of the shared disk.

When a peer goes silent, membership asks `check`: this server tries to take the lease (see
`disklease.py` for the rules and why two sides of a partition can never both hold it, and
`diskprotocol.py` for how they are run); `reachable` is true only if it won, or already holds
it. An I/O that misses its deadline means "cannot confirm": isolated.

Between partitions the slot is renewed every renewal period and every slot is read: an area that
cannot be read or written while the heartbeats are fine is an NP *error*, shown and alerted,
never a reason to shut anything down (SPEC §4). Bad slots (garbage, another cluster's or a forged
MAC, a slot that belongs elsewhere) are counted (`stats`) and logged when they appear.

A server that loses the lease while it matters — its writes late or failing while it holds, or
its NP actor restarted during a hold — asks the supervisor for the configured node-level action
(`on_isolation`): another server may have seen it dead and won.

Events: `np.<name>.result` on every change of state (`normal|error`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from actors import exitcodes
from actors.base import Actor
from actors.diskio import DiskError, SlotArea
from actors.np.diskprotocol import DiskLease, LeaseTiming
from actors.np.health import NpHealth
from actors.np.leaseclock import now
from bus.rpc import Handler, RequestError
from config.clusterkey import ClusterKeyError, load_cluster_key


class DiskNp(Actor):
    async def on_start(self) -> None:
        a = self.args
        self.np_name: str = a["np"]
        self.device: str = a["device"]
        self.on_isolation: str = a.get("on_isolation", "shutdown")
        self.health = NpHealth(self, self.np_name)
        self.lease: DiskLease | None = None
        self.task: asyncio.Task[None] | None = None
        self.fencing = False
        try:
            key = load_cluster_key(a["key_file"])
        except (ClusterKeyError, TypeError) as exc:
            self.log.error("cannot start the disk NP resource", error=str(exc))
            self.stop(exitcodes.FATAL)  # restarting will not make a key appear
            return
        servers: list[str] = list(a["servers"])
        try:
            area = SlotArea(self.device, int(a["offset"]), len(servers), self.log, clock=now)
        except DiskError as exc:
            self.log.error("cannot start the disk NP resource", error=str(exc))
            self.stop(exitcodes.FATAL)
            return
        timing = LeaseTiming(float(a["lease"]), float(a["io_timeout"]), float(a["hold"]))
        self.lease = DiskLease(
            area,
            key=key,
            np_name=self.np_name,
            servers=servers,
            me=servers.index(self.ctx.launch.server),
            timing=timing,
            on_health=self._health,
            on_lost=self._lost,
            on_bad=self._bad_slot,
        )
        self.task = asyncio.get_running_loop().create_task(self.lease.run(), name="disknp")
        self.task.add_done_callback(self._task_done)
        self.log.info(
            "disk NP started",
            device=self.device,
            lease=timing.lease,
            io_timeout=timing.io_timeout,
            hold=timing.hold,
        )

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("the disk lease task failed", error=repr(task.exception()))
            self.stop(exitcodes.RESTART)

    async def on_stop(self) -> None:
        await self._close()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        await self._close()

    async def _close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        if self.lease is not None and not self.lease.close():
            self.log.warning("the disk I/O thread hangs in an I/O; abandoned", device=self.device)

    def requests(self) -> dict[str, Handler]:
        return {
            "check": self._check,
            "state": lambda body: {"state": self.health.state},
            "stats": lambda body: {"state": self.health.state, **self._stats()},
        }

    def _stats(self) -> dict[str, Any]:
        return self.lease.snapshot() if self.lease is not None else {}

    async def _check(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.lease is None or self.fencing:
            return {"reachable": False, "reason": "the disk lease is not available"}
        verdict = await self.lease.acquire()
        (self.log.info if verdict.win else self.log.warning)(
            "disk lease check", won=verdict.win, reason=verdict.reason
        )
        return {"reachable": verdict.win, "reason": verdict.reason}

    # state and alerts -----------------------------------------------------------------------
    def _health(self, error: str | None) -> None:
        self.health.update(error, f"{self.device} works again", error=error)

    def _bad_slot(self, server: str, problem: str) -> None:
        self.log.warning(
            "a bad slot in the disk NP area: counted and ignored",
            slot_of=server,
            problem=problem,
            device=self.device,
        )

    def _lost(self, reason: str) -> None:
        if self.fencing:
            return
        self.fencing = True
        asyncio.get_running_loop().create_task(self._fence(reason), name="disknp-fence")

    async def _fence(self, reason: str) -> None:
        reason = f"NP resource {self.np_name}: {reason}"
        self.alert("np_lease_lost", np=self.health.np_name, reason=reason, action=self.on_isolation)
        try:
            await self.ask("node", "node_action", {"action": self.on_isolation, "reason": reason})
        except RequestError as exc:  # standing down is not optional: the exit-code contract
            self.log.error("the supervisor did not take the node action; panic", error=str(exc))
            self.stop(exitcodes.PANIC)
