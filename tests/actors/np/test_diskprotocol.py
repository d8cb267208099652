"""The disk lease run on a real shared file (O_DIRECT where the file system allows it), by
several contenders in one event loop — each with its own fd and I/O thread, as separate servers
would have: exactly one wins; a holder that stops renewing loses the lease to the next one after
the window; bad slots are counted, never trusted, never a crash; late writes while holding
are a lost lease; a hung I/O misses its deadline without blocking the loop."""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

from actors.diskio import DiskError, IoWorker, SlotArea
from actors.np import disklease as dl
from actors.np.disklease import Slot, SlotState
from actors.np.diskprotocol import DiskLease, LeaseTiming
from actors.np.leaseclock import now

KEY = b"cluster key for the disk lease tests".ljust(32)
SERVERS = ["node1", "node2", "node3"]
TIMING = LeaseTiming(lease=1.0, io_timeout=0.2, hold=5.0)


@pytest.fixture
def area_file(tmp_path) -> str:
    path = str(tmp_path / "np.img")
    with open(path, "wb") as f:
        f.truncate(len(SERVERS) * dl.SLOT_BYTES)
    return path


class Contender:
    """One server's lease, its renewal task, and what it reported."""

    def __init__(self, path: str, me: int, timing: LeaseTiming = TIMING, key: bytes = KEY):
        self.health: list[str | None] = []
        self.lost: list[str] = []
        self.lease = DiskLease(
            SlotArea(path, 0, len(SERVERS), clock=now),
            key=key,
            np_name="disk",
            servers=SERVERS,
            me=me,
            timing=timing,
            on_health=self.health.append,
            on_lost=self.lost.append,
        )
        self.task: asyncio.Task | None = None

    def start(self) -> Contender:
        self.task = asyncio.get_running_loop().create_task(self.lease.run())
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.task
            self.task = None

    async def close(self) -> None:
        await self.stop()
        assert self.lease.close()


async def started(path: str, *mes: int) -> list[Contender]:
    contenders = [Contender(path, me).start() for me in mes]
    await asyncio.sleep(0.3)  # everyone has opened the area and written its slot
    for c in contenders:
        assert c.health == [None], c.lease.error
    return contenders


async def close_all(contenders: list[Contender]) -> None:
    for c in contenders:
        await c.close()


def test_two_contenders_at_the_same_time_exactly_one_wins(area_file) -> None:
    async def trial() -> list[bool]:
        contenders = await started(area_file, 0, 1)
        try:
            verdicts = await asyncio.gather(*(c.lease.acquire() for c in contenders))
            assert contenders[0].lease.area.direct  # ext4 here: real O_DIRECT I/O
            return [v.win for v in verdicts]
        finally:
            await close_all(contenders)

    assert asyncio.run(trial()) == [True, False]  # at once: the earlier server wins


def test_staggered_contenders_exactly_one_wins_in_every_trial(area_file) -> None:
    """One side notices the loss later than the other, by any amount within a lease: never two
    winners, never none (nobody's I/O is slow here)."""

    async def trial(delay: float, late: int) -> list[bool]:
        contenders = await started(area_file, 0, 1)

        async def check(c: Contender, wait: float) -> bool:
            await asyncio.sleep(wait)
            return (await c.lease.acquire()).win

        try:
            waits = [delay if i == late else 0.0 for i in range(2)]
            return list(
                await asyncio.gather(*(check(c, w) for c, w in zip(contenders, waits, strict=True)))
            )
        finally:
            await close_all(contenders)

    rng = random.Random(3)
    for _ in range(6):
        delay, late = rng.uniform(0, TIMING.lease * 1.5), rng.randrange(2)
        wins = asyncio.run(trial(delay, late))
        assert wins.count(True) == 1, (delay, late, wins)


def test_a_holder_keeps_the_lease_while_it_renews(area_file) -> None:
    async def scenario() -> None:
        a, b = await started(area_file, 1, 2)
        try:
            assert (await b.lease.acquire()).win  # node3 alone
            verdict = await a.lease.acquire()  # node2 comes before node3, yet node3 holds
            assert not verdict.win and "node3 holds" in verdict.reason
            assert (await b.lease.acquire()).win  # the holder's own check: still won
            assert a.lost == b.lost == []
        finally:
            await close_all([a, b])

    asyncio.run(scenario())


def test_a_holder_that_stops_renewing_loses_the_lease_after_the_window(area_file) -> None:
    async def scenario() -> None:
        holder, other = await started(area_file, 0, 1)
        try:
            assert (await holder.lease.acquire()).win
            await holder.stop()  # the holder's server died: its slot stops changing
            began = time.monotonic()
            verdict = await other.lease.acquire()
            assert verdict.win, verdict.reason
            assert time.monotonic() - began >= dl.window(TIMING.lease)  # never sooner
        finally:
            await close_all([holder, other])

    asyncio.run(scenario())


def test_the_hold_ends_and_the_slot_goes_back_to_idle(area_file) -> None:
    async def scenario() -> None:
        (c,) = contenders = [Contender(area_file, 0, LeaseTiming(1.0, 0.2, 0.5)).start()]
        try:
            await asyncio.sleep(0.3)
            assert (await c.lease.acquire()).win
            assert c.lease.state is SlotState.HOLD
            await asyncio.sleep(0.5 + 2 * c.lease.t.renew)
            assert c.lease.state is SlotState.IDLE and c.lost == []
        finally:
            await close_all(contenders)

    asyncio.run(scenario())


def test_a_holder_whose_renewals_are_late_has_lost_the_lease(area_file) -> None:
    async def scenario() -> None:
        (c,) = await started(area_file, 0)
        try:
            assert (await c.lease.acquire()).win
            time.sleep(TIMING.lease)  # the whole process stalls: no renewal for a lease
            await asyncio.sleep(2 * TIMING.renew)
            assert len(c.lost) == 1 and "late" in c.lost[0]
            assert c.lease.state is SlotState.IDLE
        finally:
            await close_all([c])

    asyncio.run(scenario())


def test_a_restart_during_the_hold_is_a_lost_lease(area_file) -> None:
    async def scenario() -> None:
        (first,) = await started(area_file, 0)
        assert (await first.lease.acquire()).win
        await first.close()  # the NP actor crashed while holding
        again = Contender(area_file, 0).start()
        try:
            await asyncio.sleep(0.3)
            assert len(again.lost) == 1 and "held the disk lease" in again.lost[0]
        finally:
            await again.close()

    asyncio.run(scenario())


def test_garbage_and_forged_slots_are_counted_and_ignored(area_file) -> None:
    def put(index: int, data: bytes) -> None:
        fd = os.open(area_file, os.O_WRONLY)
        try:
            os.pwrite(fd, data.ljust(dl.SLOT_BYTES, b"\0"), index * dl.SLOT_BYTES)
        finally:
            os.close(fd)

    foreign_key = dl.slot_key(b"another cluster".ljust(32))
    forged_hold = Slot(
        SlotState.HOLD, 1, 1, 0, b"\0" * 16, dl.name_digest("disk"), dl.name_digest("node1")
    )

    async def scenario() -> None:
        (c,) = await started(area_file, 1)
        try:
            put(0, os.urandom(dl.SLOT_BYTES))  # node1's slot: garbage
            put(2, dl.encode(foreign_key, forged_hold))  # node3's: another cluster's MAC
            await asyncio.sleep(2 * TIMING.renew)
            # a changing forged "hold" in node1's place must not stop us either
            put(0, dl.encode(foreign_key, forged_hold))
            verdict = await c.lease.acquire()
            assert verdict.win, verdict.reason
            stats = c.lease.snapshot()
            assert stats["bad_slots"]["garbage"] >= 1 and stats["bad_slots"]["forged"] >= 2
            assert stats["slots"]["node3"] == {"problem": "forged"}
            assert c.health == [None]  # bad slots of others are not our error
        finally:
            await close_all([c])

    asyncio.run(scenario())


def test_a_missing_or_too_small_area_is_an_error_not_a_crash(tmp_path) -> None:
    small = tmp_path / "small.img"
    small.write_bytes(bytes(4096))

    async def scenario(path: str) -> tuple[list, str]:
        c = Contender(path, 0).start()
        try:
            await asyncio.sleep(0.3)
            verdict = await c.lease.acquire()
            assert not verdict.win
            return c.health, verdict.reason
        finally:
            await c.close()

    health, reason = asyncio.run(scenario(str(tmp_path / "missing.img")))
    assert health and "cannot open" in health[0] and "cannot confirm" in reason
    health, _ = asyncio.run(scenario(str(small)))
    assert "too small" in health[0]


def test_a_hung_io_misses_its_deadline_without_blocking_the_loop() -> None:
    r, w = os.pipe()  # a read with nothing to read: a real I/O that does not return

    async def scenario() -> None:
        worker = IoWorker("test")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.get_running_loop().create_task(ticker())
        began = time.monotonic()
        with pytest.raises(DiskError, match="hangs"):
            await worker.run(lambda: os.read(r, 1), 0.2)
        assert 0.2 <= time.monotonic() - began < 1.0
        assert ticks >= 10  # the loop ran all along
        with pytest.raises(DiskError):  # queued behind the hung one: skipped, never done late
            await worker.run(lambda: "late", 0.1)
        task.cancel()
        assert worker.close(timeout=0.1) is False  # abandoned in its I/O
        os.write(w, b"x")  # the I/O returns: the thread ends
        await asyncio.sleep(0.1)

    try:
        asyncio.run(scenario())
    finally:
        os.close(r)
        os.close(w)
