"""Shared fixtures. Tests start real processes; state directories live under a short /tmp path
because unix socket paths are limited to 107 bytes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest
from harness import NodeProcess, node_config


@pytest.fixture
def state_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hv-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start_node() -> Iterator[Callable[..., NodeProcess]]:
    """Start real nodes; whatever a test does, every process of theirs is gone afterwards."""
    nodes: list[NodeProcess] = []
    dirs: list[str] = []

    def start(
        actors: list[dict] = (),
        node: dict | None = None,
        wait: bool = True,
        config: str | None = None,
        **kw,
    ) -> NodeProcess:
        """A node running `config`, or a one-server configuration with these actors."""
        d = tempfile.mkdtemp(prefix="hv-", dir="/tmp")
        dirs.append(d)
        proc = NodeProcess(d, config or node_config(list(actors), node), **kw)
        nodes.append(proc)
        if wait:
            proc.wait_running()
        return proc

    yield start
    for proc in nodes:
        proc.kill_all()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
