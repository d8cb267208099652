"""The lab's state on disk: `<lab dir>/lab.json`, written atomically before each step that creates
something, so that `down` can undo a lab whose `up` was killed half-way. A lock file serialises the
commands that change the lab."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lab.errors import LabError

STATE_FILE = "lab.json"
LOCK_FILE = ".lock"
VERSION = 1


@dataclass
class NetworkState:
    name: str
    subnet: str
    index: int
    bridge: str


@dataclass
class ServerState:
    name: str
    short: str
    namespace: str
    dir: str  # <lab dir>/<short>: the node's log and state directory live here
    state_dir: str
    log: str
    addresses: dict[str, str]  # network name -> "address/prefix length"
    interfaces: dict[str, str]  # network name -> interface in the server's namespace
    ports: dict[str, str]  # network name -> the veth's other end in the switch
    cgroup: str | None = None  # the server's own cgroup (cgroup2), if the machine offers one
    pid: int | None = None  # the node process (`haven node run`), the leader of its session
    start_time: int | None = None  # its start time in clock ticks (tells a reused pid)
    state: str = "stopped"  # what the lab last did: running | killed | paused | stopped


@dataclass
class RouterState:
    namespace: str
    network: str
    address: str  # "address/prefix length"
    interface: str
    port: str
    # `haven witness serve` in the router's namespace (lab/witness.py): {"listen": "ADDR:PORT"},
    # and once started its "pid", "start_time", "log"; None when the configuration needs none
    witness: dict[str, Any] | None = None


@dataclass
class LabState:
    id: str
    dir: str
    config: str  # the configuration the lab was made from
    config_copy: str  # the lab's own copy, which the nodes run with
    cluster: str
    switch: str
    router: RouterState
    networks: list[NetworkState]
    servers: list[ServerState]
    phase: str = "building"  # building (up not finished) | up
    cgroup_root: str | None = None  # where the servers' cgroups are (None: sessions instead)
    faults: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    version: int = VERSION

    @property
    def namespaces(self) -> list[str]:
        return [self.switch, self.router.namespace, *(s.namespace for s in self.servers)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabState:
        data = dict(data)
        data["router"] = RouterState(**data["router"])
        data["networks"] = [NetworkState(**n) for n in data["networks"]]
        data["servers"] = [ServerState(**s) for s in data["servers"]]
        return cls(**data)


def state_path(directory: str) -> str:
    return os.path.join(directory, STATE_FILE)


def load(directory: str) -> LabState | None:
    """The lab's state, None when there is no lab in `directory`. A state file that cannot be read
    is a LabError (callers that clean up catch it and fall back to names)."""
    path = state_path(directory)
    try:
        with open(path) as f:
            return LabState.from_dict(json.load(f))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise LabError(f"the lab state {path} is unreadable ({exc})") from None


def save(state: LabState) -> None:
    path = state_path(state.dir)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(state.to_dict(), f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(directory: str, timeout: float = 30.0) -> Iterator[None]:
    """Hold the lab directory's lock (other commands that change this lab wait, at most
    `timeout` seconds)."""
    path = os.path.join(directory, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise LabError(
                        f"another `haven lab` command is busy with {directory} "
                        f"(waited {timeout:g}s for {path})"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
