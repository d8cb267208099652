"""systemd notification, received on a real datagram socket standing in for systemd's."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def notify_socket(state_dir: str) -> Iterator[tuple[socket.socket, str]]:
    path = os.path.join(state_dir, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    yield sock, path
    sock.close()


def collect(sock: socket.socket, seconds: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            lines += sock.recv(4096).decode().splitlines()
        except TimeoutError:
            pass
    return lines


def test_ready_status_and_watchdog_while_critical_actors_live(start_node, notify_socket) -> None:
    sock, path = notify_socket
    node = start_node(
        [{"name": "vital", "kind": "echo", "critical": True}],
        env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"},
    )
    lines = collect(sock, 1.5)
    assert "READY=1" in lines
    assert any(line.startswith("STATUS=running") for line in lines)
    assert lines.count("WATCHDOG=1") >= 3
    node.terminate()
    assert "STOPPING=1" in collect(sock, 0.5)


@pytest.mark.parametrize("critical_crashes", [True, False])
def test_watchdog_fed_only_while_every_critical_actor_is_live(
    start_node, notify_socket, critical_crashes: bool
) -> None:
    sock, path = notify_socket
    start_node(
        [
            {
                "name": "vital",
                "kind": "echo",
                "critical": True,
                "args": {"fail_start": critical_crashes},
            },
            {"name": "extra", "kind": "echo", "args": {"fail_start": not critical_crashes}},
        ],
        node={"max_restarts": 1000},  # keep crash-looping, never escalate during the test
        env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"},
    )
    lines = collect(sock, 1.5)
    assert "READY=1" in lines
    assert ("WATCHDOG=1" in lines) is not critical_crashes
