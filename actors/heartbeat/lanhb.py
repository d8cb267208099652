"""LAN heartbeat (`lanhb`, and `lankhb`: the original's kernel-mode heartbeat, here the same UDP
heartbeat on its own port at real-time priority — robustness under load comes from scheduling,
not from a kernel module).

Every interval the actor sends its authenticated frame (see `frame.py`) to each peer's address on
its network. Besides what every heartbeat refuses (`base.py`), a frame from an address that is not
its sender's is dropped and counted ("wrong source address"). Trackers, stalls, events and the
`paths` / `stats` requests are `HeartbeatActor`'s.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from actors.heartbeat import frame
from actors.heartbeat.base import HeartbeatActor

SO_PRIORITY_INTERACTIVE = 6  # the highest a process may set without CAP_NET_ADMIN


class LanHeartbeat(HeartbeatActor):
    async def open_path(self) -> None:
        a = self.args
        port = int(a["port"])
        self.addresses: dict[str, tuple[str, int]] = {
            name: (address, port) for name, address in a["addresses"].items()
        }
        self.peer_at = {address: name for name, (address, _) in self.addresses.items()}
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, SO_PRIORITY_INTERACTIVE)
            sock.bind((a["address"], port))
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"cannot listen on {a['address']}:{port}/udp: {exc}") from exc
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)

    def transmit(self, data: bytes) -> None:
        for address in self.addresses.values():
            try:
                self.sock.sendto(data, address)
                self.sent += 1
            except OSError:  # no route, buffer full: the peer's tracker will tell
                self.send_errors += 1

    def from_source(self, sender: str, source: Any) -> bool:
        return self.peer_at.get(source) == sender

    def _on_readable(self) -> None:
        self._notice_stall(time.monotonic())
        for _ in range(64):  # drain a burst, but never monopolise the loop
            try:
                data, (address, _port) = self.sock.recvfrom(frame.MAX_FRAME_BYTES + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.dropped.drop("receive error")
                return
            self._on_frame(data, address)

    def close_path(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None and sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
