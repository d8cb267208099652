"""The alertlog actor: this server's alert log — every `alert.<level>` event, this server's own and
the other servers' (the link republishes them under their origin), one JSON line each.

Why a log of its own: an operator reads what happened (`haven alerts`) after the fact, also on a
server that was not the one it happened on, and the senders (mail, traps, syslog) must never be
the only record. Each line is flushed and fsync'd before the next is taken, so a crash loses at
most the line being written; the file is rotated by size, keeping `keep` generations
(`alerts.log.1` ... `.N`).

An alert is recorded once: the link forwards each event once, but a restarted link or a replay
could bring one again, so the (sender, seq, time) of recent alerts are remembered.

Synchronising the logs of servers that were down (issue #5's alert sync) is not done yet: a
server records what reached its bus while it ran.

Requests: `tail` {count, level?} → the newest records, oldest first.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any

from actors.base import Actor
from bus import topics
from bus.envelope import Envelope
from bus.rpc import Handler, RequestError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5
SEEN = 4096  # recent alerts remembered against duplicates
LEVELS = ("info", "warning", "error")
TAIL_MAX = 10000


class AlertLogActor(Actor):
    subscriptions = (topics.ALERT,)

    async def on_start(self) -> None:
        self.dir = os.path.join(self.ctx.paths.state_dir, "alerts")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(self.dir, "alerts.log")
        self.max_bytes = int(self.args.get("max_bytes", DEFAULT_MAX_BYTES))
        self.keep = int(self.args.get("keep", DEFAULT_KEEP))
        self.seen: OrderedDict[tuple[str, int, float], None] = OrderedDict()
        for record in self._read(SEEN):
            self._remember((record["sender"], record["seq"], record["time"]))
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in on_stop

    async def on_stop(self) -> None:
        self.file.close()

    async def on_failure(self, exc: BaseException) -> None:
        await super().on_failure(exc)
        if hasattr(self, "file"):
            self.file.close()

    async def on_receive(self, env: Envelope) -> None:
        key = (env.sender, env.seq, env.time)
        if key in self.seen:
            return
        self._remember(key)
        level = env.topic.removeprefix(topics.ALERT)
        body = env.body if isinstance(env.body, dict) else {}
        record = {
            "time": env.time,
            "server": env.server,
            "sender": env.sender,
            "seq": env.seq,
            "level": level if level in LEVELS else "info",
            "module": str(body.get("module", env.actor)),
            "event": str(body.get("event", "")),
            "message": str(body.get("message", "")),
            "details": {k: v for k, v in body.items() if k not in ("module", "event", "message")},
        }
        self._append(json.dumps(record, default=str, ensure_ascii=False))

    def _remember(self, key: tuple[str, int, float]) -> None:
        self.seen[key] = None
        while len(self.seen) > SEEN:
            self.seen.popitem(last=False)

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

    def _read(self, count: int) -> list[dict[str, Any]]:
        """The newest `count` records over the current file and the rotated ones; a damaged
        line (a crash mid-write) is skipped."""
        records: list[dict[str, Any]] = []
        for i in range(0, self.keep + 1):
            path = self.path if i == 0 else f"{self.path}.{i}"
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
            except FileNotFoundError:
                break
            chunk = []
            for line in lines:
                try:
                    chunk.append(json.loads(line))
                except ValueError:
                    continue
            records = chunk + records
            if len(records) >= count:
                break
        return records[-count:] if count else []

    def requests(self) -> dict[str, Handler]:
        return {"tail": self._tail}

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
            records = [r for r in records if r.get("level") in wanted][-count:] if count else []
        return {"server": self.ctx.launch.server, "records": records, "path": self.path}
