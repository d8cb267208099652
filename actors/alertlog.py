"""The alertlog actor: this server's copy of the cluster's alert log, one JSON line per alert.

Why a log of its own on every server: an operator reads what happened (`haven alerts`) after the
fact, on whichever server is still up, and the senders (mail, traps, syslog) must never be the
only record. Each line is flushed and fsync'd before the next is taken, so a crash loses at most
the line being written; the file is rotated by size, keeping `keep` generations
(`alerts.log.1` ... `.N`).

Numbering and sync. The server an alert happens on numbers it: `n` goes up by one, from the
clock in microseconds at each start of this actor (never below what its log holds, so a lost or
restored state directory cannot bring back numbers the others hold), and (server, n) names the
alert everywhere. This server's alerts are recorded and published as `alertlog.record`, which
the link carries to every other server; a live record is accepted only from the server it
names — its origin as the authenticated link delivered it, never a name in the body (SPEC
§12-49); a sync relays only records that a server accepted so. A server that was down, or cut
off, misses records — and so may one whose link to the origin was half up. The ledger
(actors/alerts/ledger.py) knows exactly what this log holds and up to where nothing is missing,
so whenever the link to a server comes up, and every SYNC_EVERY, this log asks it for exactly
what it lacks (`since`, paged by size) — which also brings records of a third server that is
down now; an answer costs the peer no file read when nothing is missing. Every server thus
ends with the same records, shown in one order: the origin's time, then server, then n.

Requests: `tail` {count, level?, before?} → the newest records (older than `before`, a record's
[time, server, n]), oldest first (`truncated` when the answer had to be cut to fit a frame: ask
again before its first); `since` {marks, ahead} → the records the asker lacks,
ordered by (server, n), whether more remain, and this log's marks (adopted once all is fetched).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import os
import time
from collections.abc import Iterator
from typing import Any

from actors.alerts.catalogue import LEVELS
from actors.alerts.ledger import Ledger
from actors.alerts.record import Alert
from actors.base import Actor
from actors.state_file import read_json, write_json
from bus import topics
from bus.envelope import Envelope
from bus.rpc import Handler, RequestError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_KEEP = 5
TAIL_MAX = 10_000
RECENT = 2_000  # the newest records kept in memory, in display order, for `tail`
ANSWER_BYTES = 512 * 1024  # a `since` page or a `tail` answer stays well inside a link frame
MESSAGE_MAX = 2_000  # characters of a stored message
DETAILS_MAX = 4_000  # bytes of a stored record's details (JSON) before they are cut
SYNC_TIMEOUT = 10.0
SYNC_EVERY = 15.0  # seconds between syncs with every connected peer


def order(record: dict[str, Any]) -> tuple[float, str, int]:
    """The one display order, the same on every server holding the same records."""
    return (float(record["time"]), str(record["server"]), int(record["n"]))


def normalised(record: Any) -> dict[str, Any] | None:
    """A stored record in the one shape, bounded in size; None when it is not one."""
    if not isinstance(record, dict):
        return None
    try:
        n = int(record["n"])
        alert = Alert.from_dict(record)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if not alert.server or n <= 0 or not math.isfinite(alert.time) or alert.level not in LEVELS:
        return None
    out = {**alert.as_dict(), "n": n}
    out["message"] = alert.message[:MESSAGE_MAX]
    if len(json.dumps(alert.details, default=str)) > DETAILS_MAX:
        small = {k: v for k, v in alert.details.items() if isinstance(v, (int, float, bool))}
        out["details"] = {**small, "truncated": True}
    return out


class AlertLogActor(Actor):
    subscriptions = (topics.ALERT, topics.ALERT_RECORD, topics.LINK)
    concurrent_requests = True  # a `since` from a peer must not wait behind a slow `tail`

    async def on_start(self) -> None:
        self.me = self.ctx.launch.server
        self.servers: list[str] = list(self.args.get("servers") or [self.me])
        self.dir = os.path.join(self.ctx.paths.state_dir, "alerts")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(self.dir, "alerts.log")
        self.marks_path = os.path.join(self.dir, "marks.json")
        self.max_bytes = int(self.args.get("max_bytes", DEFAULT_MAX_BYTES))
        self.keep = int(self.args.get("keep", DEFAULT_KEEP))
        self.ledger = Ledger()
        everything = []
        for chunk in self._generations():
            for record in chunk:
                if self.ledger.add(record["server"], record["n"]):
                    everything.append(record)
        stored = read_json(self.marks_path)
        marks = stored.get("marks") if isinstance(stored, dict) else None
        self.ledger.start(marks if isinstance(marks, dict) else {})
        self.ledger.adopt({self.me: self.ledger.high(self.me)})  # its own: all held
        everything.sort(key=order)
        self.recent: list[tuple[tuple[float, str, int], dict[str, Any]]] = [
            (order(r), r) for r in everything[-RECENT:]
        ]
        self.n = max(self.ledger.high(self.me) + 1, time.time_ns() // 1000)
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
        self._save_marks()

    def _save_marks(self) -> None:
        write_json(self.marks_path, {"marks": self.ledger.marks})

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        if hasattr(self, "file"):
            self.file.close()

    async def on_receive(self, env: Envelope) -> None:
        if env.topic.startswith(topics.ALERT):
            if env.server == self.me:  # the others' come as their records
                self._record_own(env)
        elif env.topic == topics.ALERT_RECORD:
            body = env.body if isinstance(env.body, dict) else {}
            if env.server != self.me and body.get("server") == env.server:  # its own, only
                self._accept(body)
        elif env.topic.startswith(topics.LINK) and isinstance(env.body, dict):
            peer = env.body.get("server")
            if peer in self.synced and env.body.get("connected"):
                self._spawn(self._sync(peer))

    def _record_own(self, env: Envelope) -> None:
        record = normalised({**Alert.from_envelope(env).as_dict(), "n": self.n})
        if record is None:
            return
        self.n += 1
        self._store(record)
        self.ledger.adopt({self.me: record["n"]})  # all of its own: held by definition
        self.publish(topics.ALERT_RECORD, record)

    def _accept(self, record: Any) -> bool:
        """Another server's record, stored unless malformed or held already."""
        record = normalised(record)
        if record is None or record["server"] == self.me:
            return False  # our own are ours to number, never someone's copy
        if self.ledger.holds(record["server"], record["n"]):
            return False
        self._store(record)
        return True

    def _store(self, record: dict[str, Any]) -> None:
        self._append(json.dumps(record, default=str, ensure_ascii=False))
        self.ledger.add(record["server"], record["n"])
        key = order(record)
        if len(self.recent) < RECENT or key > self.recent[0][0]:
            bisect.insort(self.recent, (key, record), key=lambda x: x[0])
            if len(self.recent) > RECENT:
                del self.recent[0]

    # sync --------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("alert sync failed", error=repr(task.exception()))

    async def _sync_connected(self) -> None:
        """Sync with every peer the link reaches now: at start (this actor restarted while the
        link stayed up: no link-up will come) and every SYNC_EVERY — a sync asked at a link-up
        can fail while the connection is still being authenticated, and a record published
        while the link was half-up may be lost; this catches both (an answer is empty, and
        costs no file read, when nothing is missing)."""
        try:
            answer = await self.ask("link", "peers", {}, 1.0)
        except RequestError:
            return  # no link yet (the node is starting): its link-ups will come
        peers = answer.get("peers") if isinstance(answer, dict) else None
        for peer, state in (peers if isinstance(peers, dict) else {}).items():
            if peer in self.synced and isinstance(state, dict) and state.get("connected"):
                await self._sync(peer)

    async def _sync(self, peer: str) -> None:
        """Fetch from `peer` what this log lacks, page by page; once all is fetched, adopt the
        marks it had when it first answered (it held everything up to them, and sent what of
        that was missing here)."""
        async with self.sync_lock:
            fetched, their_marks = 0, None
            while True:
                try:
                    answer = await self.ask(
                        "link",
                        "call",
                        {
                            "server": peer,
                            "service": self.name,
                            "method": "since",
                            "body": self.ledger.request(),
                            "timeout": SYNC_TIMEOUT,
                        },
                        SYNC_TIMEOUT + 2.0,
                    )
                except RequestError as exc:
                    self.log.info("alert sync postponed", peer=peer, error=str(exc))
                    return  # the next link-up or the periodic sync tries again
                records = answer.get("records") if isinstance(answer, dict) else None
                marks = answer.get("marks") if isinstance(answer, dict) else None
                if not isinstance(records, list) or not isinstance(marks, dict):
                    self.log.warning("alert sync: a malformed answer", peer=peer)
                    return
                if their_marks is None:
                    their_marks = marks
                new = sum(self._accept(r) for r in records)
                fetched += new
                if not answer.get("more"):
                    break
                if not new:  # it says there is more, yet sent nothing new: stop, try later
                    self.log.warning("alert sync: no progress", peer=peer)
                    return
            self.ledger.adopt({o: m for o, m in their_marks.items() if o != self.me})
            self._save_marks()
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
        oldest = f"{self.path}.{self.keep}" if self.keep > 0 else self.path
        self._forget(oldest)
        for i in range(self.keep - 1, 0, -1):
            older = f"{self.path}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{i + 1}")
        if self.keep > 0:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _forget(self, path: str) -> None:
        """The generation about to fall off: its records are no longer held here."""
        by_origin: dict[str, list[int]] = {}
        for record in _records(path):
            by_origin.setdefault(record["server"], []).append(record["n"])
        for origin, numbers in by_origin.items():
            self.ledger.forget(origin, numbers)

    def _generations(self) -> Iterator[list[dict[str, Any]]]:
        """Each file's records, the newest file first."""
        for i in range(0, self.keep + 1):
            path = self.path if i == 0 else f"{self.path}.{i}"
            if not os.path.exists(path):
                return
            yield _records(path)

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
        before = body.get("before")
        if before is not None:
            try:
                before = (float(before[0]), str(before[1]), int(before[2]))
            except (TypeError, ValueError, IndexError, KeyError):
                raise RequestError("'before' must be [time, server, n] of a record") from None
        wanted = set(LEVELS[LEVELS.index(level) :]) if level else set(LEVELS)
        records = [r for _, r in self.recent if r["level"] in wanted]
        if before is not None or (len(records) < count and len(self.recent) == RECENT):
            records = sorted(  # older ones, or a next page: read the files
                (r for chunk in self._generations() for r in chunk if r["level"] in wanted),
                key=order,
            )
        if before is not None:
            records = [r for r in records if order(r) < before]
        records = records[max(0, len(records) - count) :] if count else []
        fitted = _fit(list(reversed(records)))
        return {
            "server": self.me,
            "records": list(reversed(fitted)),
            "truncated": len(fitted) < len(records),
            "path": self.path,
        }

    def _since(self, body: dict[str, Any]) -> dict[str, Any]:
        marks, ahead = body.get("marks"), body.get("ahead", {})
        if not isinstance(marks, dict) or not all(isinstance(v, int) for v in marks.values()):
            raise RequestError("'marks' must map server names to numbers")
        if not isinstance(ahead, dict) or not all(isinstance(v, list) for v in ahead.values()):
            raise RequestError("'ahead' must map server names to lists of numbers")
        wanted = self.ledger.wanted(marks, ahead)
        answer: dict[str, Any] = {"server": self.me, "marks": dict(self.ledger.marks)}
        if not wanted:  # the usual: the asker has everything; no file is read
            return {**answer, "records": [], "more": False}
        keys = {(o, n) for o, numbers in wanted.items() for n in numbers}
        found = []
        for chunk in self._generations():
            for r in chunk:
                if (r["server"], r["n"]) in keys:
                    keys.discard((r["server"], r["n"]))
                    found.append(r)
            if not keys:
                break
        found.sort(key=lambda r: (r["server"], r["n"]))
        page = _fit(found)
        return {**answer, "records": page, "more": len(page) < len(found)}


def _records(path: str) -> list[dict[str, Any]]:
    """A file's records; a damaged line (a crash mid-write) or a foreign one is skipped."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = normalised(json.loads(line))
                except ValueError:
                    continue
                if record is not None:
                    out.append(record)
    except FileNotFoundError:
        pass
    return out


def _fit(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first records whose encoding fits ANSWER_BYTES (at least one)."""
    size, out = 0, []
    for r in records:
        size += len(json.dumps(r, default=str)) + 16
        if out and size > ANSWER_BYTES:
            break
        out.append(r)
    return out
