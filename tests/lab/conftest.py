"""Lab fixtures: real namespaces, real nodes, always torn down.

`make_lab(config)` brings a lab up in a fresh short directory under /tmp and returns its `Lab`;
`two_node_lab` is one lab of config/examples/two-node.toml shared by a module's tests (tests that
break it repair it before they end). Whatever a test does, every lab it made goes down afterwards
and must leave no namespace, process, cgroup or directory behind. Tests are skipped, with the
reason, where the lab cannot run (not root, no `ip netns`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator

import pytest

from lab import Lab, naming, netns, unavailable

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "config", "examples")
TWO_NODE = os.path.join(EXAMPLES, "two-node.toml")


def skip_without_lab() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(f"lab unavailable: {reason}")


def skip_without(tool: str, package: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (Debian package {package}; scripts/setup.sh adds it)")


@pytest.fixture
def needs_nft() -> None:
    skip_without("nft", "nftables")


@pytest.fixture
def needs_socat() -> None:
    skip_without("socat", "socat")


def run_haven(*args: str, lab_dir: str | None = None, timeout: float = 30.0):
    env = {**os.environ, **({"HAVEN_LAB_DIR": lab_dir} if lab_dir else {})}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def haven() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the `haven` command: haven("lab", "status", lab_dir=D)."""
    return run_haven


@pytest.fixture
def example() -> Callable[[str], str]:
    return lambda name: os.path.join(EXAMPLES, name)


def lab_dir() -> str:
    return tempfile.mkdtemp(prefix="hvlab-", dir="/tmp")


@pytest.fixture(name="leftovers")
def leftovers_fixture() -> Callable[[Lab, str], list[str]]:
    """leftovers(lab, lab_id): what a lab left behind (namespaces, cgroups, its directory)."""
    return leftovers


def leftovers(lab: Lab, lab_id: str) -> list[str]:
    """What a lab left behind: namespaces, cgroups, its directory."""
    prefix = naming.namespace_prefix(lab_id)
    left = netns.list_namespaces(prefix)
    for root in ("/sys/fs/cgroup/unified/haven-lab", "/sys/fs/cgroup/haven-lab"):
        if os.path.isdir(root):
            left += [os.path.join(root, n) for n in os.listdir(root) if n.startswith(prefix)]
    if os.path.exists(lab.dir):
        left.append(lab.dir)
    return left


def teardown(lab: Lab) -> None:
    lab_id = naming.lab_id(lab.dir)
    lab.down()
    assert leftovers(lab, lab_id) == []


@pytest.fixture
def make_lab() -> Iterator[Callable[..., Lab]]:
    labs: list[Lab] = []
    config_dirs: list[str] = []

    def make(config: str = TWO_NODE, *, text: str | None = None, up: bool = True) -> Lab:
        skip_without_lab()
        lab = Lab(lab_dir())
        labs.append(lab)
        if text is not None:
            config_dirs.append(tempfile.mkdtemp(prefix="hvcfg-", dir="/tmp"))
            config = os.path.join(config_dirs[-1], "cluster.toml")
            with open(config, "w") as f:
                f.write(text)
        if up:
            lab.up(config)
        return lab

    yield make
    try:
        for lab in labs:
            teardown(lab)
    finally:
        for d in config_dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def two_node_lab() -> Iterator[Lab]:
    skip_without_lab()
    lab = Lab(lab_dir())
    try:
        lab.up(TWO_NODE)
        yield lab
    finally:
        teardown(lab)
