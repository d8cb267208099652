"""The alertlog actor: this server's copy of the cluster's alert log, one JSON line per alert.

Why a log of its own on every server: an operator reads what happened (`haven alerts`) after the
fact, on whichever server is still up, and the senders (mail, traps, syslog) must never be the
only record. Each line is flushed and fsync'd before the next is taken, so a crash loses at most
the line being written; the file is rotated by size, keeping `keep` generations
(`alerts.log.1` ... `.N`).

Numbering and sync. The server an alert happens on numbers it: `n` goes up by one across
restarts, starting from the clock in microseconds when the log holds none of its own (so a lost
state directory cannot bring back old numbers), and (server, n) names the alert everywhere. This
server's alerts are recorded and published as `alertlog.record`, which the link carries to every
other server; a live record is accepted only from the server it names — its origin as the
authenticated link delivered it, never a name in the body (SPEC §12-49); a sync (below) relays
only records that a server accepted so. A server that was down,
or cut off, misses records — and so may one whose link to the origin was half up. Each log
keeps, per origin, a mark up to which it holds every record (consecutive numbers show a gap),
and whenever the link to a server comes up, and every SYNC_EVERY, asks it for every record
beyond the marks (`since`, paged) — which also brings records of a third server that is down
now. A complete answer from the origin itself closes its gaps for good (what it no longer holds
is gone for everyone). Every server thus ends with the same set, shown in one order: the
origin's time, then server, then n. A record is stored once (recent (server, n) remembered).

Requests: `tail` {count, level?} → the newest records, oldest first; `since` {marks: {server:
n}, limit?} → records newer than the marks, ordered by (server, n), and whether more remain.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from actors.alerts.catalogue import LEVELS
from actors.alerts.record import Alert
from actors.base import Actor
from bus import topics
from bus.envelope import Envelope
from bus.rpc import Handler, RequestError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_KEEP = 5
SEEN = 50_000  # (server, n) of recent records remembered against duplicates
TAIL_MAX = 10_000
SYNC_PAGE = 400  # records per `since` answer (well inside a link frame)
SYNC_TIMEOUT = 10.0
SYNC_EVERY = 15.0  # seconds between syncs with every connected peer


def order(record: dict[str, Any]) -> tuple[float, str, int]:
    """The one display order, the same on every server holding the same records."""
    return (float(record.get("time") or 0), str(record.get("server", "")), int(record.get("n", 0)))


class AlertLogActor(Actor):
    subscriptions = (topics.ALERT, topics.ALERT_RECORD, topics.LINK)
    concurrent_requests = True  # a `since` from a peer must not wait behind a slow `tail`

    async def on_start(self) -> None:
        self.me = self.ctx.launch.server
        self.servers: list[str] = list(self.args.get("servers") or [self.me])
        self.dir = os.path.join(self.ctx.paths.state_dir, "alerts")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(self.dir, "alerts.log")
        self.max_bytes = int(self.args.get("max_bytes", DEFAULT_MAX_BYTES))
        self.keep = int(self.args.get("keep", DEFAULT_KEEP))
        self.seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.high: dict[str, int] = {}  # per origin: the highest n held
        # per origin: every record up to `marks` is held; those held beyond it, in `ahead`
        self.marks: dict[str, int] = {}
        self.ahead: dict[str, set[int]] = {}
        for record in sorted(self._read(None), key=lambda r: int(r.get("n", 0))):
            server, n = str(record.get("server")), int(record.get("n", 0))
            self.marks.setdefault(server, n - 1)  # the oldest held starts the run
            self._remember(server, n)
        self.n = self.high.get(self.me, 0)
        self.sync_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.synced = {s: 0 for s in self.servers if s != self.me}  # records fetched, per peer
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in on_stop
        if self.synced:
            self._spawn(self._sync_connected())
            self.every("sync", SYNC_EVERY)

    async def on_timer(self, name: str) -> None:
        if name == "sync" and not self.sync_lock.locked():
            self._spawn(self._sync_connected())

    async def on_stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.file.close()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        if hasattr(self, "file"):
            self.file.close()

    async def on_receive(self, env: Envelope) -> None:
        if env.topic.startswith(topics.ALERT):
            if env.server == self.me:  # the others' come as their records
                self._record_own(env)
        elif env.topic == topics.ALERT_RECORD:
            if env.server != self.me:
                self._accept(env.server, env.body)
        elif env.topic.startswith(topics.LINK) and isinstance(env.body, dict):
            peer = env.body.get("server")
            if peer in self.synced and env.body.get("connected"):
                self._spawn(self._sync(peer))

    def _record_own(self, env: Envelope) -> None:
        # consecutive, so that the others see a gap; from the clock when nothing is known (a
        # first start, or a lost state directory: old numbers never come back)
        self.n = self.n + 1 if self.n else time.time_ns() // 1000
        record = {**Alert.from_envelope(env).as_dict(), "n": self.n}
        self._store(record)
        self.publish(topics.ALERT_RECORD, record)

    def _accept(self, origin: str, record: Any) -> bool:
        """A record of `origin`'s, stored unless held already or not `origin`'s own."""
        if not isinstance(record, dict) or record.get("server") != origin:
            return False
        try:
            n = int(record["n"])
            Alert.from_dict(record)
        except (KeyError, TypeError, ValueError):
            return False
        if (origin, n) in self.seen:
            return False
        self._store(record)
        return True

    def _store(self, record: dict[str, Any]) -> None:
        self._remember(str(record["server"]), int(record["n"]))
        self._append(json.dumps(record, default=str, ensure_ascii=False))

    def _remember(self, server: str, n: int) -> None:
        self.seen[(server, n)] = None
        while len(self.seen) > SEEN:
            self.seen.popitem(last=False)
        if n > self.high.get(server, 0):
            self.high[server] = n
        mark = self.marks.get(server, 0)
        if n == mark + 1 or (server == self.me and n > mark):
            ahead = self.ahead.get(server, set())
            while n + 1 in ahead:
                ahead.discard(n + 1)
                n += 1
            self.marks[server] = n
        elif n > mark:
            self.ahead.setdefault(server, set()).add(n)

    def _complete(self, origin: str, n: int) -> None:
        """`origin` itself answered in full: nothing of its own up to n is missing any more
        (what it no longer holds, rotated away, is gone for everyone)."""
        if n > self.marks.get(origin, 0):
            self.marks[origin] = n
            ahead = self.ahead.get(origin, set())
            ahead.difference_update({x for x in ahead if x <= n})

    # sync --------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _sync_connected(self) -> None:
        """Sync with every peer the link reaches now: at start (this actor restarted while the
        link stayed up: no link-up will come) and every SYNC_EVERY — a sync asked at a link-up
        can fail while the connection is still being authenticated, and a record published
        while the link was half-up may be lost; this catches both (an answer is empty when
        nothing is missing)."""
        try:
            answer = await self.ask("link", "peers", {}, 1.0)
        except RequestError:
            return  # no link yet (the node is starting): its link-ups will come
        for peer, state in (answer.get("peers") or {}).items():
            if peer in self.synced and state.get("connected"):
                await self._sync(peer)

    async def _sync(self, peer: str) -> None:
        """Fetch from `peer` every record newer than what is held, page by page."""
        async with self.sync_lock:
            marks = dict(self.marks)
            fetched = 0
            while True:
                try:
                    answer = await self.ask(
                        "link",
                        "call",
                        {
                            "server": peer,
                            "service": self.name,
                            "method": "since",
                            "body": {"marks": marks, "limit": SYNC_PAGE},
                            "timeout": SYNC_TIMEOUT,
                        },
                        SYNC_TIMEOUT + 2.0,
                    )
                except RequestError as exc:
                    self.log.info("alert sync postponed", peer=peer, error=str(exc))
                    return  # the next link-up or the periodic sync tries again
                records = answer.get("records") if isinstance(answer, dict) else None
                if not isinstance(records, list):
                    self.log.warning("alert sync: a malformed answer", peer=peer)
                    return
                for record in records:
                    origin = record.get("server") if isinstance(record, dict) else None
                    if not isinstance(origin, str) or origin == self.me:
                        continue  # our own records are ours to number, never someone's copy
                    if self._accept(origin, record):
                        fetched += 1
                    marks[origin] = max(marks.get(origin, 0), int(record.get("n", 0)))
                if not answer.get("more") or not records:
                    break
            if isinstance(answer.get("high"), int):
                self._complete(peer, answer["high"])
            self.synced[peer] += fetched
            if fetched:
                self.log.info("alert log caught up", peer=peer, records=fetched)

    # file --------------------------------------------------------------------------------------
    def _append(self, line: str) -> None:
        if self.file.tell() + len(line) + 1 > self.max_bytes:
            self._rotate()
        self.file.write(line + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def _rotate(self) -> None:
        self.file.close()
        for i in range(self.keep - 1, 0, -1):
            older = f"{self.path}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{i + 1}")
        if self.keep > 0:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _generations(self) -> Iterator[list[dict[str, Any]]]:
        """Each file's records, the newest file first; a damaged line (a crash mid-write) is
        skipped."""
        for i in range(0, self.keep + 1):
            path = self.path if i == 0 else f"{self.path}.{i}"
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
            except FileNotFoundError:
                return
            records = []
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "n" in record:
                    records.append(record)
            yield records

    def _read(self, count: int | None) -> list[dict[str, Any]]:
        """The newest `count` records (None: all), in display order."""
        records: list[dict[str, Any]] = []
        for chunk in self._generations():
            records += chunk
            if count is not None and len(records) >= count:
                break
        records.sort(key=order)
        return records if count is None else records[max(0, len(records) - count) :]

    def _newer(self, marks: dict[str, int]) -> list[dict[str, Any]]:
        """The records beyond `marks`, ordered by (server, n). Files are read newest first and
        no further than one with nothing beyond the marks: an older file's records arrived
        earlier still (this keeps a requester's lasting gap — its origin down — from costing a
        read of the whole log every time)."""
        newer: list[dict[str, Any]] = []
        for chunk in self._generations():
            found = [r for r in chunk if int(r.get("n", 0)) > marks.get(str(r.get("server")), 0)]
            if not found:
                break
            newer += found
        newer.sort(key=lambda r: (str(r.get("server")), int(r.get("n", 0))))
        return newer

    # requests ----------------------------------------------------------------------------------
    def requests(self) -> dict[str, Handler]:
        return {"tail": self._tail, "since": self._since}

    def _tail(self, body: dict[str, Any]) -> dict[str, Any]:
        count = body.get("count", 100)
        if not isinstance(count, int) or not 0 <= count <= TAIL_MAX:
            raise RequestError(f"'count' must be a whole number from 0 to {TAIL_MAX}")
        level = body.get("level")
        if level is not None and level not in LEVELS:
            raise RequestError(f"'level' must be one of {', '.join(LEVELS)}")
        self.file.flush()
        records = self._read(TAIL_MAX if level else count)
        if level:
            wanted = set(LEVELS[LEVELS.index(level) :])
            records = [r for r in records if r.get("level") in wanted]
        return {
            "server": self.me,
            "records": records[-count:] if count else [],
            "path": self.path,
        }

    def _since(self, body: dict[str, Any]) -> dict[str, Any]:
        marks = body.get("marks")
        limit = body.get("limit", SYNC_PAGE)
        if not isinstance(marks, dict) or not all(isinstance(v, int) for v in marks.values()):
            raise RequestError("'marks' must map server names to numbers")
        if not isinstance(limit, int) or not 1 <= limit <= SYNC_PAGE:
            raise RequestError(f"'limit' must be a whole number from 1 to {SYNC_PAGE}")
        high = self.high.get(self.me, 0)
        if all(marks.get(origin, 0) >= n for origin, n in self.high.items()):
            return {"server": self.me, "records": [], "more": False, "high": high}  # up to date
        newer = self._newer(marks)
        more = len(newer) > limit
        return {"server": self.me, "records": newer[:limit], "more": more, "high": high}
