"""Where a node's sockets live: all under its state directory, so several nodes share a machine.

ipc:// paths are limited by the kernel's sockaddr_un (107 bytes); a service name that would not
fit is replaced by a digest, and a state directory too deep for even that is refused with a message.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
from dataclasses import dataclass

_SUN_PATH_MAX = 107
_DIGEST_CHARS = 16  # a service name too long for a socket path becomes s-<16 hex digits>


class StateDirError(OSError):
    pass


@dataclass(frozen=True)
class NodePaths:
    state_dir: str

    @property
    def bus_dir(self) -> str:
        return os.path.join(self.state_dir, "bus")

    @property
    def lock_file(self) -> str:
        """Held (flock) by the running node; holds its pid."""
        return os.path.join(self.state_dir, "node.lock")

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
        if "/" in service or len(os.path.join(self.bus_dir, name).encode()) > _SUN_PATH_MAX:
            name = "s-" + hashlib.sha256(service.encode()).hexdigest()[:_DIGEST_CHARS]
        return self._ipc(name)

    def _ipc(self, name: str) -> str:
        path = os.path.join(self.bus_dir, name)
        if len(path.encode()) > _SUN_PATH_MAX:
            raise StateDirError(
                f"state directory {self.state_dir!r} is too long for unix sockets "
                f"({len(path.encode())} > {_SUN_PATH_MAX} bytes); choose a shorter path"
            )
        return "ipc://" + path

    def node_running(self) -> bool:
        """Whether a node holds this state directory's lock (the sockets may be stale)."""
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also releases a shared lock we got
        return False

    def socket_files(self) -> list[str]:
        """The unix socket files in the bus directory (nothing else there is ours to touch)."""
        try:
            names = os.listdir(self.bus_dir)
        except FileNotFoundError:
            return []
        paths = (os.path.join(self.bus_dir, n) for n in names)
        return [p for p in paths if stat.S_ISSOCK(os.lstat(p).st_mode)]

    def prepare(self) -> None:
        """Create the directories; the bus directory is mode 0700, since its sockets are the
        node's control. An existing state directory keeps its mode (it may be shared)."""
        self._ipc("s-" + "0" * _DIGEST_CHARS)  # the longest name we make: fail early, clearly
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        for d in (self.bus_dir, self.log_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        os.chmod(self.bus_dir, 0o700)
