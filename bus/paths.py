"""Where a node's sockets live: all under its state directory, so several nodes share a machine.

ipc:// paths are limited by the kernel's sockaddr_un (107 bytes); a service name that would not
fit is replaced by a digest, and a state directory too deep for even that is refused with a message.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

_SUN_PATH_MAX = 107


class StateDirError(OSError):
    pass


@dataclass(frozen=True)
class NodePaths:
    state_dir: str

    @property
    def bus_dir(self) -> str:
        return os.path.join(self.state_dir, "bus")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.state_dir, "node.pid")

    @property
    def log_dir(self) -> str:
        return os.path.join(self.state_dir, "log")

    @property
    def publish_endpoint(self) -> str:
        """Where publishers connect (the proxy's XSUB side)."""
        return self._ipc("pub")

    @property
    def subscribe_endpoint(self) -> str:
        """Where subscribers connect (the proxy's XPUB side)."""
        return self._ipc("sub")

    def service_endpoint(self, service: str) -> str:
        """The ROUTER endpoint of a service (the supervisor's is "node")."""
        name = "s-" + service
        if len(os.path.join(self.bus_dir, name)) > _SUN_PATH_MAX or "/" in service:
            name = "s-" + hashlib.sha256(service.encode()).hexdigest()[:16]
        return self._ipc(name)

    def _ipc(self, name: str) -> str:
        path = os.path.join(self.bus_dir, name)
        if len(path.encode()) > _SUN_PATH_MAX:
            raise StateDirError(
                f"state directory {self.state_dir!r} is too long for unix sockets "
                f"({len(path.encode())} > {_SUN_PATH_MAX} bytes); choose a shorter path"
            )
        return "ipc://" + path

    def ipc_files(self) -> list[str]:
        try:
            return [os.path.join(self.bus_dir, n) for n in os.listdir(self.bus_dir)]
        except FileNotFoundError:
            return []

    def prepare(self) -> None:
        """Create the state and bus directories with mode 0700 (sockets are the node's control)."""
        for d in (self.state_dir, self.bus_dir, self.log_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
            os.chmod(d, 0o700)
        self._ipc("sub")  # fail early on a too-long path
