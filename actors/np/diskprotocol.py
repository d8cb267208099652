"""The disk lease protocol on a shared area: renewals, acquiring (a `check`) and holding.

`DiskLease` runs the rules that `disklease.py` states and argues: its `run()` task writes this
server's slot every renewal period (whatever the state: a live slot is a changing slot) and
reads every slot when no acquisition is under way (to count bad slots and show the area);
`acquire()` is the check. It keeps R1's book: the start of every write and whether the chain of
timely writes is unbroken since our claim began. A holder whose chain breaks, or that finds at
start its own hold from before (this boot, not yet over: the actor was restarted while it held),
has lost the lease while it mattered: `on_lost` is called and the caller stands the server down.

Nothing here blocks the event loop: every I/O goes through the `IoWorker` with the I/O deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.diskio import DiskError, IoWorker, SlotArea
from actors.np import disklease as dl
from actors.np.disklease import Slot, SlotError, SlotState, Verdict
from actors.np.leaseclock import boot_id, now
from bus.counters import DropCounter


@dataclass(frozen=True)
class LeaseTiming:
    lease: float  # L
    io_timeout: float  # D
    hold: float  # how long a won lease is held

    @property
    def renew(self) -> float:
        return dl.renew_period(self.lease, self.io_timeout)

    @property
    def max_gap(self) -> float:
        return dl.max_start_gap(self.lease, self.io_timeout)


class DiskLease:
    def __init__(
        self,
        area: SlotArea,
        *,
        key: bytes,
        np_name: str,
        servers: list[str],
        me: int,
        timing: LeaseTiming,
        on_health: Callable[[str | None], None] = lambda error: None,
        on_lost: Callable[[str], None] = lambda reason: None,
        on_bad: Callable[[str, str], None] = lambda server, problem: None,
    ) -> None:
        self.area = area
        self.worker = IoWorker(f"disknp {np_name}", clock=now)
        self.key = dl.slot_key(key)
        self.np_name = np_name
        self.servers = servers
        self.me = me
        self.t = timing
        self.on_health = on_health
        self.on_lost = on_lost
        self.on_bad = on_bad
        self.state = SlotState.IDLE
        self.incarnation = secrets.randbits(63)
        self.seq = 0
        self.hold_until = 0.0
        self.claim_started = 0.0
        self.boot = boot_id()
        self.np_digest = dl.name_digest(np_name)
        self.digest = dl.name_digest(servers[me])
        self.last_start: float | None = None  # R1: the start of our last good write
        self.chain_since: float | None = None  # R1 unbroken since this write's start
        self.opened = False
        self.problems = DropCounter()  # bad slots seen, by reason
        self.bad: dict[int, str] = {}  # slot -> its problem now (logged once per change)
        self.seen: list[Slot | None] = [None] * len(servers)
        self.counts = {"reads": 0, "writes": 0, "io_errors": 0, "checks": 0, "won": 0}
        self.error: str | None = "not opened yet"
        self._acquiring = asyncio.Lock()

    # I/O -------------------------------------------------------------------------------------
    async def open(self) -> None:
        await self.worker.run(self.area.open, self.t.io_timeout)
        self.opened = True
        slots, _ = await self.read()
        own = slots[self.me]
        if (
            own is not None
            and own.state is SlotState.HOLD
            and own.boot_id == self.boot
            and own.hold_until_ms > now() * 1000
        ):
            self.on_lost(
                "this server held the disk lease when its NP actor stopped, and the hold is not "
                "over: the renewals stopped meanwhile, another server may have taken it"
            )

    async def write(self) -> tuple[float, float]:
        """Write our slot as it is now; (start, time the result came back). Keeps R1's book."""
        self.seq += 1
        hold_ms = int(self.hold_until * 1000) if self.state is SlotState.HOLD else 0
        slot = Slot(
            self.state,
            self.incarnation,
            self.seq,
            hold_ms,
            self.boot,
            self.np_digest,
            self.digest,
        )
        data = dl.encode(self.key, slot)
        try:
            _, started, ended = await self.worker.run(
                lambda: self.area.write_slot(self.me, data), self.t.io_timeout
            )
        except DiskError:
            self.counts["io_errors"] += 1
            self.last_start = self.chain_since = None
            raise
        back = now()
        self.counts["writes"] += 1
        late = ended - started > self.t.io_timeout
        if late or self.last_start is None or started - self.last_start > self.t.max_gap:
            self.chain_since = started  # R1 broke before this write: a new chain begins
        self.last_start = started
        return started, back

    async def read(self) -> tuple[list[Slot | None], float]:
        """Every slot (None: empty or untrusted, counted), and when the result came back."""
        try:
            raw, _, _ = await self.worker.run(self.area.read_all, self.t.io_timeout)
        except DiskError:
            self.counts["io_errors"] += 1
            raise
        back = now()
        self.counts["reads"] += 1
        slots: list[Slot | None] = []
        for i, data in enumerate(raw):
            try:
                slots.append(dl.read_slot(self.key, data, self.np_name, self.servers[i]))
                self.bad.pop(i, None)
            except SlotError as exc:
                self.problems.drop(str(exc))
                if self.bad.get(i) != str(exc):
                    self.on_bad(self.servers[i], str(exc))
                self.bad[i] = str(exc)
                slots.append(None)
        self.seen = slots
        return slots, back

    def unbroken_since(self, t: float) -> bool:
        """R1 has held from `t` until now (the next write is not overdue)."""
        return (
            self.chain_since is not None
            and self.last_start is not None
            and self.chain_since <= t
            and now() - self.last_start <= self.t.max_gap
        )

    # the renewal task ------------------------------------------------------------------------
    async def run(self) -> None:
        """Renew forever (cancel to stop): open the area until it works, then write our slot
        every renewal period and, between acquisitions, read them all."""
        while True:
            started = now()
            await self._renew_once()
            await asyncio.sleep(max(0.0, started + self.t.renew - now()))

    async def _renew_once(self) -> None:
        try:
            if not self.opened:
                await self.open()
            if self.state is SlotState.HOLD and now() >= self.hold_until:
                self.state = SlotState.IDLE  # the hold is over: nobody can still be contending
            await self.write()
            if not self._acquiring.locked():
                slots, _ = await self.read()
                own = slots[self.me]
                if own is None or own.incarnation != self.incarnation:
                    raise DiskError("our own slot does not read back as written")
        except DiskError as exc:
            self._report(str(exc))
        else:
            self._report(None)
        self._check_hold()

    def _check_hold(self) -> None:
        if self.state is SlotState.HOLD and not self.unbroken_since(self.claim_started):
            self.state = SlotState.IDLE
            self.on_lost(
                "this server's disk lease writes were late or failed while it held the lease: "
                "another server may have seen it dead and taken the lease"
            )

    def _report(self, error: str | None) -> None:
        if error != self.error:
            self.error = error
            self.on_health(error)

    # acquiring -------------------------------------------------------------------------------
    async def acquire(self) -> Verdict:
        """The check: win the lease (or keep it, when we hold it), or say why not."""
        async with self._acquiring:
            self.counts["checks"] += 1
            verdict = await self._acquire()
            if verdict.win:
                self.counts["won"] += 1
            return verdict

    async def _acquire(self) -> Verdict:
        self._check_hold()
        if self.state is SlotState.HOLD:
            self.hold_until = now() + self.t.hold
            try:
                await self.write()
            except DiskError as exc:
                self._check_hold()
                return Verdict(False, f"cannot confirm the held lease: {exc}")
            if self.unbroken_since(self.claim_started):
                return Verdict(True, "this server holds the lease")
            self._check_hold()
            return Verdict(False, "a write of ours was late while we held the lease")
        try:
            if not self.opened:
                await self.open()
            before, s0_back = await self.read()
            self.state = SlotState.CLAIM
            claim_seq = self.seq + 1
            claim_start, claim_back = await self.write()
            due = max(
                s0_back + dl.window(self.t.lease), claim_back + dl.claim_wait(self.t.io_timeout)
            )
            await asyncio.sleep(max(0.0, due - now()))  # the renewals go on meanwhile
            s1 = now()
            after, _ = await self.read()
            if not self.unbroken_since(claim_start):
                verdict = Verdict(False, "a write of ours was late or failed while we claimed")
            else:
                verdict = dl.judge(
                    self.me, self.servers, before, after, (self.incarnation, claim_seq)
                )
            if not verdict.win:
                return await self._give_up(verdict)
            self.state = SlotState.HOLD
            self.hold_until = now() + self.t.hold
            self.claim_started = claim_start
            _, hold_back = await self.write()
            if hold_back - s1 > dl.hold_deadline(self.t.io_timeout):
                return await self._give_up(Verdict(False, "our hold write came back too late"))
            if not self.unbroken_since(claim_start):
                return await self._give_up(Verdict(False, "a write of ours was late"))
            return verdict
        except DiskError as exc:
            return await self._give_up(Verdict(False, f"cannot confirm: {exc}"))

    async def _give_up(self, verdict: Verdict) -> Verdict:
        """Back to idle (a stale claim or hold of ours can only make others lose)."""
        self.state = SlotState.IDLE
        with contextlib.suppress(DiskError):
            await self.write()
        return verdict

    # the end ---------------------------------------------------------------------------------
    def close(self) -> bool:
        """Close the area from the worker thread (after its queued I/O); False if the worker
        hangs in an I/O and was abandoned."""
        return self.worker.close(then=self.area.close)

    def snapshot(self) -> dict[str, Any]:
        return {
            "lease": self.state.name.lower(),
            "direct": self.area.direct,
            "error": self.error,
            "slots": {server: self._slot_view(i) for i, server in enumerate(self.servers)},
            "bad_slots": self.problems.as_dict(),
            **self.counts,
        }

    def _slot_view(self, i: int) -> dict[str, Any]:
        if i in self.bad:
            return {"problem": self.bad[i]}
        slot = self.seen[i]
        if slot is None:
            return {"state": "empty"}
        return {"state": slot.state.name.lower(), "seq": slot.seq}
