"""Which devices the lab makes for a configuration, and the rule its device paths must follow
(pure: creates nothing; `Lab.up` checks before it builds anything, then makes them).

A relative device path in a configuration is relative to the configuration file, and the lab runs
its nodes on its own copy, `<lab dir>/cluster.toml`. So a lab configuration names the devices
where the lab makes them (`lab/devices.py`), by the heartbeat's or NP resource's name:

    comhb  "<hb>"   a pty pair: com/<hb>.a for the first of its two servers (in the order of
                    [[server]]), com/<hb>.b for the second (set them under per_server)
    diskhb "<hb>"   a shared file: disk/<hb>.img for every server (one `device` for all)
    disknp "<np>"   a shared file: disk/<np>.img for every server

Names are made file-safe as `lab.devices.safe` does ("com 1" -> com/com_1.a). Any other path
(a real /dev/ttyS0, another file) is refused with the path the lab expects.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from actors.heartbeat.diskslots import area_bytes
from config import Cluster
from lab.devices import safe
from lab.errors import LabError

MIN_FILE_BYTES = 1 << 20  # a shared file is at least 1 MiB: room for any slot or lease layout


@dataclass(frozen=True)
class DeviceNeed:
    kind: str  # "pty" (a socat pty pair) or "file" (a shared file)
    name: str  # the heartbeat's or NP resource's name; the files are named after it
    size: int = 0  # files: bytes


def lab_devices(cluster: Cluster) -> list[DeviceNeed]:
    """The devices to make, in configuration order; LabError naming every path that does not
    fit the lab's rule."""
    needs: dict[tuple[str, str], DeviceNeed] = {}
    problems: list[str] = []

    def expect(what: str, params_for: Callable, expected: dict[str, str]) -> None:
        for server in expected:
            written = params_for(server).get("device")
            if written is None or os.path.normpath(written) != expected[server]:
                problems.append(
                    f'{what}: server "{server}" has device "{written}"; in the lab it must be '
                    f'"{expected[server]}" (relative to the configuration, which the lab copies '
                    "into its directory)"
                )

    def want(need: DeviceNeed) -> None:
        old = needs.get((need.kind, need.name))
        if old is None or old.size < need.size:
            needs[(need.kind, need.name)] = need

    for hb in cluster.heartbeats:
        servers = _servers_of(cluster, hb.servers)
        what = f'heartbeat "{hb.name}" ({hb.type})'
        if hb.type == "comhb":  # two servers (config/typed.py)
            ends = {s: f"com/{safe(hb.name)}.{side}" for s, side in zip(servers, "ab", strict=True)}
            expect(what, hb.params_for, ends)
            want(DeviceNeed("pty", hb.name))
        elif hb.type == "diskhb":
            expect(what, hb.params_for, dict.fromkeys(servers, f"disk/{safe(hb.name)}.img"))
            size = area_bytes(int(hb.params.get("offset") or 0), len(cluster.servers))
            want(DeviceNeed("file", hb.name, max(MIN_FILE_BYTES, size)))
    for np in cluster.np:
        if np.type == "disknp":
            servers = _servers_of(cluster, np.servers)
            path = f"disk/{safe(np.name)}.img"
            expect(f'NP resource "{np.name}" (disknp)', np.params_for, dict.fromkeys(servers, path))
            size = int(np.params.get("offset") or 0) + MIN_FILE_BYTES
            want(DeviceNeed("file", np.name, size))
    if problems:
        raise LabError("the configuration's devices do not fit the lab:\n" + "\n".join(problems))
    return list(needs.values())


def _servers_of(cluster: Cluster, servers: tuple[str, ...]) -> list[str]:
    """The servers an item runs on, in the order of [[server]] (all when it names none)."""
    return [s.name for s in cluster.servers if not servers or s.name in servers]
