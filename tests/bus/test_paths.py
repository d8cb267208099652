"""The state directory: what the node may and may not do to it."""

from __future__ import annotations

import os
import socket

import pytest

from bus.paths import NodePaths, StateDirError


def test_prepare_keeps_an_existing_directorys_mode_and_other_files(state_dir: str) -> None:
    os.chmod(state_dir, 0o1777)
    os.makedirs(f"{state_dir}/bus")
    with open(f"{state_dir}/bus/notes.txt", "w") as f:
        f.write("mine")
    paths = NodePaths(state_dir)
    paths.prepare()
    assert os.stat(state_dir).st_mode & 0o7777 == 0o1777
    assert os.stat(paths.bus_dir).st_mode & 0o777 == 0o700
    assert paths.socket_files() == []  # notes.txt is not a socket: not ours to remove
    assert os.path.exists(f"{state_dir}/bus/notes.txt")


def test_socket_files_lists_only_sockets(state_dir: str) -> None:
    paths = NodePaths(state_dir)
    paths.prepare()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(f"{paths.bus_dir}/s-x")
        assert paths.socket_files() == [f"{paths.bus_dir}/s-x"]


def test_a_state_dir_too_long_for_any_service_socket_is_refused_up_front() -> None:
    # Long enough that "sub" would still fit but a digest-named service socket would not.
    long_dir = "/tmp/" + "d" * 80
    paths = NodePaths(long_dir)
    assert paths.subscribe_endpoint  # "sub" fits
    with pytest.raises(StateDirError, match="too long for unix sockets"):
        paths.prepare()
    assert not os.path.exists(long_dir)


def test_long_service_names_get_a_digest_that_fits(state_dir: str) -> None:
    paths = NodePaths(state_dir)
    endpoint = paths.service_endpoint("x" * 300)
    assert len(endpoint.removeprefix("ipc://").encode()) <= 107


def test_node_running_follows_the_lock(state_dir: str) -> None:
    import fcntl

    paths = NodePaths(state_dir)
    paths.prepare()
    assert not paths.node_running()
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert paths.node_running()
    finally:
        os.close(fd)
    assert not paths.node_running()
