"""The `volume` resource: an LVM volume group, or one logical volume of it, activated on the
server that owns the group (the original's vxdg / vxvol on Veritas).

Start: `vgchange -a y VG` (`lvchange -a y VG/LV` when `logical_volume` is set), then `lvs`
must show every logical volume concerned active: LVM can answer 0 and activate nothing (a VG
without volumes, `activation = 0` in lvm.conf, a `volume_list` that leaves them out), and that
is a failed start, not a running resource. Stop: `-a n`, checked the same way. `active()`
reads `lvs -o lv_name,lv_active_locally`; a VG without logical volumes is
never active. The commands get `ctx.env` (LVM_SYSTEM_DIR for another lvm.conf, ...). Neither
the configuration nor LVM has a timeout for these: `LVM_TIMEOUT` bounds each command.

Tested here with real LVM metadata on a loop device, but this kernel has no device-mapper, so
no logical volume can be activated: the tests cover the failed activation (with LVM's own
message), unknown VGs and LVs, a VG without volumes, a success that activated nothing,
deactivation of what is inactive and `active()` on inactive volumes. A successful activation,
`active()` on an active volume and deactivation of an open (mounted) volume are not exercised.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from actors.resources.base import Driver, ResourceError, Why
from actors.resources.command import Completed, run

LVM_TIMEOUT = 120.0
_REPORT_LINE = re.compile(
    r"^\s*LVM2_LV_NAME='(?P<name>[^']*)' LVM2_LV_ACTIVE_LOCALLY='(?P<active>[^']*)'\s*$", re.M
)


class VolumeDriver(Driver):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.vg: str = self.params["volume_group"]
        self.lv: str | None = self.params.get("logical_volume") or None
        self.target = f"{self.vg}/{self.lv}" if self.lv else self.vg
        self.what = f"logical volume {self.target}" if self.lv else f"volume group {self.vg}"
        self.env = {**os.environ, "LC_ALL": "C", "LVM_SUPPRESS_FD_WARNINGS": "1", **ctx.env}

    def details(self) -> dict[str, Any]:
        return {"volume_group": self.vg, "logical_volume": self.lv}

    async def start(self, why: Why) -> None:
        await self._change("y")
        states = await self._states()
        inactive = [name for name, on in states.items() if not on]
        if not states:
            raise ResourceError(
                f"volume group {self.vg} has no logical volumes: nothing to activate"
            )
        if inactive:
            raise ResourceError(
                f"LVM reported {self.what} activated, but {', '.join(inactive)} is not active "
                "(check activation/volume_list and activation settings in lvm.conf)"
            )

    async def stop(self, why: Why) -> None:
        await self._change("n")
        still = [name for name, on in (await self._states()).items() if on]
        if still:
            raise ResourceError(
                f"LVM reported {self.what} deactivated, but {', '.join(still)} is still active"
            )

    async def active(self) -> bool:
        try:
            states = await self._states()
        except ResourceError as exc:
            if self.ctx.log is not None:
                self.ctx.log.warning("cannot read the volumes' state", error=str(exc))
            return False
        return bool(states) and all(states.values())

    async def _change(self, how: str) -> None:
        argv = ["lvchange" if self.lv else "vgchange", "-a", how, self.target]
        done = await self._run(argv)
        if not done.ok:
            verb = "activate" if how == "y" else "deactivate"
            raise ResourceError(f"cannot {verb} {self.what}: {lvm_message(done)}")

    async def _states(self) -> dict[str, bool]:
        """LV name -> active on this server, for the LVs this resource covers."""
        argv = ["lvs", "--noheadings", "--nameprefixes", "-o", "lv_name,lv_active_locally"]
        done = await self._run([*argv, self.target])
        if not done.ok:
            raise ResourceError(f"cannot read the state of {self.what}: {lvm_message(done)}")
        return parse_lvs(done.output)

    async def _run(self, argv: list[str]) -> Completed:
        try:
            return await run(argv, timeout=LVM_TIMEOUT, env=self.env)
        except OSError as exc:
            raise ResourceError(f"cannot run {argv[0]} (is lvm2 installed?): {exc}") from exc


def parse_lvs(output: str) -> dict[str, bool]:
    """The volumes of an `lvs --noheadings --nameprefixes -o lv_name,lv_active_locally` answer.
    LVM's messages share the output (stderr is merged), which is why each report line is matched
    whole: the name prefixes set it apart from any message."""
    return {m["name"]: m["active"] == "active locally" for m in _REPORT_LINE.finditer(output)}


def lvm_message(done: Completed) -> str:
    """LVM's own words, every distinct line (its useful line is rarely the last one)."""
    lines = []
    for line in done.output.splitlines():
        line = line.strip()
        if line and line not in lines:
            lines.append(line)
    return replace(done, output=" / ".join(lines[-6:])).describe(" ".join(done.argv))
