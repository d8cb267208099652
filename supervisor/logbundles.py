"""The node's side of `haven logs collect` for a collector on another server: the supervisor's
requests `logs_bundle`, `logs_chunk` and `logs_done` (see supervisor/node.py's request table).

- `logs_bundle {timeout}` starts building this server's part (supervisor/logbundle.py) in a
  process of its own, under `<state dir>/logbundles/`, and answers at once `{id, server}`: the
  supervisor's loop and its other requests are never held up by it.
- `logs_chunk {id, offset}` answers `{state: "building"}` until the part is ready, then
  `{state: "ready", size, sha256, offset, data, eof}` with up to CHUNK bytes (a frame, link
  included, must stay under 1 MiB); a part that failed is an error naming why.
- `logs_done {id}` deletes it. A part not asked for within EXPIRE seconds is deleted anyway, as
  is whatever an earlier run of the node left in that directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bus.rpc import Handler, RequestError
from supervisor.logbundle import BUNDLE_DIR, PART_TIMEOUT
from supervisor.spec import SupervisorSettings

CHUNK = 512 << 10  # bytes per logs_chunk answer
EXPIRE = 300.0  # seconds a part is kept after it was last asked for
MAX_BUILDING = 2  # parts built at once; more are refused (try again), not queued
MAX_KEPT = 8  # parts kept at once
MAX_TIMEOUT = 300.0
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass
class Bundle:
    id: str
    proc: subprocess.Popen[bytes] | None
    deadline: float  # monotonic: the builder is killed past it
    used: float = field(default_factory=time.monotonic)
    failed: str = ""


class LogBundles:
    def __init__(self, settings: SupervisorSettings) -> None:
        self.settings = settings
        self.dir = os.path.join(settings.state_dir, BUNDLE_DIR)
        self.bundles: dict[str, Bundle] = {}
        self._swept = False
        self._timer: asyncio.TimerHandle | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            "logs_bundle": self.start,
            "logs_chunk": self.chunk,
            "logs_done": self.done,
        }

    # paths ---------------------------------------------------------------------------------------
    def _path(self, bundle_id: str, suffix: str = "") -> str:
        return os.path.join(self.dir, f"{bundle_id}.tar.gz{suffix}")

    def _files(self, bundle_id: str) -> list[str]:
        return [
            self._path(bundle_id, s) for s in ("", ".tmp", ".json", ".json.tmp", ".err", ".run")
        ]

    # requests ------------------------------------------------------------------------------------
    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        self._sweep()
        timeout = body.get("timeout", PART_TIMEOUT)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise RequestError("'timeout' must be a number of seconds")
        timeout = min(max(float(timeout), 1.0), MAX_TIMEOUT)
        building = sum(1 for b in self.bundles.values() if self._building(b))
        if building >= MAX_BUILDING or len(self.bundles) >= MAX_KEPT:
            raise RequestError(
                f"server {self.settings.server} is busy building log bundles; try again shortly"
            )
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        bundle_id = secrets.token_hex(8)
        argv = [
            sys.executable, "-m", "supervisor.logbundle",
            "--out", self._path(bundle_id), "--server", self.settings.server,
            "--state-dir", self.settings.state_dir, "--timeout", f"{timeout:g}",
        ]  # fmt: skip
        if self.settings.config_path:
            argv += ["--config", self.settings.config_path]
        if self.settings.config_text:
            running = self._path(bundle_id, ".run")
            fd = os.open(running, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.settings.config_text)
            argv += ["--running-config", running]
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([SOURCE_ROOT, *paths])}
        fd = os.open(self._path(bundle_id, ".err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                cwd=self.dir,
                env=env,
                start_new_session=True,  # its commands die with it when it is killed
            )
        except OSError as exc:
            self._remove(bundle_id)
            raise RequestError(f"could not start building the log bundle: {exc}") from None
        finally:
            os.close(fd)
        # The builder gets a little longer than its own deadline to write out what it has.
        self.bundles[bundle_id] = Bundle(bundle_id, proc, time.monotonic() + timeout + 10.0)
        self._arm()
        return {"id": bundle_id, "server": self.settings.server}

    def chunk(self, body: dict[str, Any]) -> dict[str, Any]:
        bundle = self._bundle(body)
        offset = body.get("offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise RequestError("'offset' must be a whole number of bytes from 0")
        bundle.used = time.monotonic()
        if self._building(bundle):
            return {"id": bundle.id, "state": "building"}
        result = self._result(bundle)
        if "error" in result:
            raise RequestError(f"building the log bundle failed: {result['error']}")
        size = result["size"]
        try:
            with open(self._path(bundle.id), "rb") as f:
                f.seek(offset)
                data = f.read(CHUNK)
        except OSError as exc:
            raise RequestError(f"the log bundle cannot be read: {exc.strerror}") from None
        return {
            "id": bundle.id,
            "state": "ready",
            "size": size,
            "sha256": result["sha256"],
            "offset": offset,
            "data": data,
            "eof": offset + len(data) >= size,
        }

    def done(self, body: dict[str, Any]) -> dict[str, Any]:
        bundle = self._bundle(body)
        self._drop(bundle)
        return {"id": bundle.id, "deleted": True}

    # bookkeeping ---------------------------------------------------------------------------------
    def _bundle(self, body: dict[str, Any]) -> Bundle:
        bundle_id = body.get("id")
        bundle = self.bundles.get(bundle_id) if isinstance(bundle_id, str) else None
        if bundle is None:
            raise RequestError(
                f"no log bundle {bundle_id!r} on server {self.settings.server} "
                "(expired, or the node restarted)"
            )
        return bundle

    def _building(self, bundle: Bundle) -> bool:
        """Whether the builder still runs; past its deadline it is killed and the bundle fails.
        (Its exit status is not trusted: the supervisor reaps strays, this one included.)"""
        proc = bundle.proc
        if proc is None:
            return False
        if proc.poll() is None and not os.path.exists(self._path(bundle.id, ".json")):
            if time.monotonic() < bundle.deadline:
                return True
            self._kill(bundle)
            bundle.failed = "it took longer than its deadline"
        bundle.proc = None
        return False

    def _result(self, bundle: Bundle) -> dict[str, Any]:
        if bundle.failed:
            return {"error": bundle.failed}
        try:
            with open(self._path(bundle.id, ".json")) as f:
                result = json.load(f)
        except (OSError, ValueError):
            result = {"error": "the builder ended without a result" + self._stderr(bundle)}
        if not isinstance(result, dict) or not (
            "error" in result or ("size" in result and "sha256" in result)
        ):
            result = {"error": "the builder's result is unreadable"}
        return result

    def _stderr(self, bundle: Bundle) -> str:
        try:
            with open(self._path(bundle.id, ".err"), errors="replace") as f:
                lines = [line for line in f.read()[-2000:].splitlines() if line.strip()]
        except OSError:
            return ""
        return f" ({lines[-1].strip()})" if lines else ""

    def _kill(self, bundle: Bundle) -> None:
        if bundle.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(bundle.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                bundle.proc.poll()

    def _drop(self, bundle: Bundle) -> None:
        if bundle.proc is not None and bundle.proc.poll() is None:
            self._kill(bundle)
        self.bundles.pop(bundle.id, None)
        self._remove(bundle.id)

    def _remove(self, bundle_id: str) -> None:
        for path in self._files(bundle_id):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _sweep(self) -> None:
        """Drop parts not asked for within EXPIRE; once per run, whatever an earlier run of the
        node left behind."""
        now = time.monotonic()
        for bundle in list(self.bundles.values()):
            if now - bundle.used > EXPIRE and not self._building(bundle):
                self._drop(bundle)
        if self._swept:
            return
        self._swept = True
        with contextlib.suppress(OSError):
            for name in os.listdir(self.dir):
                if _ID.match(name[:16]) and name[:16] not in self.bundles:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.dir, name))

    def _arm(self) -> None:
        """A timer that sweeps while any part is kept (no other part of the node is involved)."""
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def tick() -> None:
            self._timer = None
            self._sweep()
            if self.bundles:
                self._arm()

        self._timer = loop.call_later(min(EXPIRE / 5, 60.0), tick)
