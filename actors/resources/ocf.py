"""The `ocf` resource: any OCF resource agent (Pacemaker's resource-agents package and the like)
run as a group resource, `agent = "provider:type"`, e.g. "heartbeat:apache".

The agent is `$OCF_ROOT/resource.d/<provider>/<type>` (OCF_ROOT is /usr/lib/ocf unless ctx.env
says otherwise) and is called as Pacemaker calls it: `start`, `stop`, `monitor`, with
OCF_ROOT, OCF_RA_VERSION_MAJOR/MINOR (1.0), OCF_RESOURCE_INSTANCE (the resource's name),
OCF_RESOURCE_TYPE, OCF_RESOURCE_PROVIDER, HA_RSCTMP, OCF_RESKEY_CRM_meta_timeout (ms, which
agents use to size their own waits) and one OCF_RESKEY_<name> per entry of `parameters`
(booleans as "true"/"false", what `ocf_is_true` understands).

Every call is bounded by `TIMEOUT` (60 s): the catalog has no timeout for this type, and
Pacemaker's default operation timeout is also tens of seconds. After `start` answers success,
`monitor` must agree before the start counts. `active()` is `monitor`: 0 running, 7 not running,
anything else is logged and answered as not running.

HA_RSCTMP is `rsctmp` in the resource's state folder. Agents keep "I am running" files there
and rely on it being emptied at boot (it is /run/resource-agents under Pacemaker); since the
state folder survives a reboot, it is emptied here when the boot ID has changed.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from typing import Any

from actors.resources.base import Driver, ResourceError, Why
from actors.resources.command import Completed, run

TIMEOUT = 60.0
OCF_ROOT = "/usr/lib/ocf"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
NOT_RUNNING = 7
EXIT_CODES = {
    0: "OCF_SUCCESS",
    1: "OCF_ERR_GENERIC",
    2: "OCF_ERR_ARGS",
    3: "OCF_ERR_UNIMPLEMENTED",
    4: "OCF_ERR_PERM",
    5: "OCF_ERR_INSTALLED",
    6: "OCF_ERR_CONFIGURED",
    7: "OCF_NOT_RUNNING",
    8: "OCF_RUNNING_PROMOTED",
    9: "OCF_FAILED_PROMOTED",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PART = re.compile(r"^[A-Za-z0-9_.+-]+$")


class OcfDriver(Driver):
    timeout = TIMEOUT

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.agent: str = self.params["agent"]
        self.provider, _, self.type = self.agent.partition(":")
        self.ocf_root = ctx.env.get("OCF_ROOT", OCF_ROOT)
        self.rsctmp = os.path.join(ctx.state_dir, "rsctmp")
        self._rsctmp_ready = False

    def details(self) -> dict[str, Any]:
        return {"agent": self.agent}

    async def start(self, why: Why) -> None:
        done = await self._call("start")
        if not done.ok:
            raise ResourceError(f"{self.agent} start failed: {explain(done)}")
        check = await self._call("monitor")
        if not check.ok:
            raise ResourceError(
                f"{self.agent} start answered success, but monitor then says: {explain(check)}"
            )

    async def stop(self, why: Why) -> None:
        done = await self._call("stop")
        if not done.ok:
            raise ResourceError(f"{self.agent} stop failed: {explain(done)}")

    async def active(self) -> bool:
        try:
            done = await self._call("monitor")
        except ResourceError as exc:
            self._warn(str(exc))
            return False
        if done.returncode not in (0, NOT_RUNNING):
            self._warn(f"{self.agent} monitor failed: {explain(done)}")
        return done.ok

    def path(self) -> str:
        """The agent's executable; a ResourceError when `agent` names none."""
        if not (_PART.match(self.provider) and _PART.match(self.type)):
            raise ResourceError(
                f'agent "{self.agent}" is not of the form provider:type (e.g. heartbeat:Dummy)'
            )
        path = os.path.join(self.ocf_root, "resource.d", self.provider, self.type)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ResourceError(
                f"OCF agent {self.agent} not found: {path} is not an executable file "
                "(is the package providing it installed?)"
            )
        return path

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "OCF_ROOT": self.ocf_root,
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "0",
            "OCF_RESOURCE_INSTANCE": self.ctx.resource,
            "OCF_RESOURCE_TYPE": self.type,
            "OCF_RESOURCE_PROVIDER": self.provider,
            "HA_RSCTMP": self.rsctmp,
            "OCF_RESKEY_CRM_meta_timeout": str(int(self.timeout * 1000)),
            **self.ctx.env,
        }
        for name, value in (self.params.get("parameters") or {}).items():
            if not _NAME.match(name):
                raise ResourceError(f'parameter "{name}" cannot be passed to an OCF agent')
            env[f"OCF_RESKEY_{name}"] = reskey_value(name, value)
        return env

    async def _call(self, action: str) -> Completed:
        argv = [self.path(), action]
        env = self.environment()
        await asyncio.to_thread(self._prepare_rsctmp)
        try:
            done = await run(argv, timeout=self.timeout, env=env)
        except OSError as exc:
            raise ResourceError(f"cannot run {argv[0]}: {exc}") from exc
        if self.ctx.log is not None and done.output.strip():
            self.ctx.log.debug("agent output", action=action, output=done.output.strip())
        return done

    def _prepare_rsctmp(self) -> None:
        if self._rsctmp_ready:
            return
        marker = f"{self.rsctmp}.boot_id"
        with open(BOOT_ID) as f:
            boot = f.read().strip()
        try:
            with open(marker) as f:
                stale = f.read().strip() != boot
        except FileNotFoundError:
            stale = True
        if stale:
            shutil.rmtree(self.rsctmp, ignore_errors=True)
        os.makedirs(self.rsctmp, exist_ok=True)
        if stale:
            with open(marker, "w") as f:
                f.write(boot + "\n")
        self._rsctmp_ready = True

    def _warn(self, message: str) -> None:
        if self.ctx.log is not None:
            self.ctx.log.warning("monitor failed", error=message)


def reskey_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ResourceError(
        f'parameter "{name}": an OCF agent takes text, numbers or true/false, not {value!r}'
    )


def explain(done: Completed) -> str:
    """`exit 6 (OCF_ERR_CONFIGURED): <reason>`, the reason from the agent's `ocf-exit-reason:`
    line (what `ocf_exit_reason` writes for Pacemaker) or else its last line of output."""
    if done.timed_out:
        return done.describe("the agent")
    code = done.returncode
    name = EXIT_CODES.get(code, "unknown code") if code is not None and code >= 0 else "signal"
    lines = [x.strip() for x in done.output.splitlines() if x.strip()]
    reasons = [x.split("ocf-exit-reason:", 1)[1] for x in lines if "ocf-exit-reason:" in x]
    said = (reasons or lines or [""])[-1]
    return f"exit {code} ({name})" + (f": {said}" if said else "")
