"""Running the tools the lab is built with (`ip`, `nft`, ...): every call has a deadline, is
reaped, and fails with a LabError that names the command and the tool's own complaint."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence

from lab.errors import LabError

DEFAULT_TIMEOUT = 10.0
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with this Haven's source on PYTHONPATH, so `python -m lab.spawn`, `-m lab.probe`
    and `-m cli.main` run this very code in any namespace and from any directory."""
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SOURCE_ROOT not in paths:
        paths.insert(0, SOURCE_ROOT)
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` to completion (at most `timeout` seconds; a command past it is killed)."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed (needed by the lab)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(argv)}` did not finish within {timeout:g}s") from None
    if check and proc.returncode != 0:
        raise LabError(f"`{shlex.join(argv)}` failed: {complaint(proc)}")
    return proc


def complaint(proc: subprocess.CompletedProcess[str]) -> str:
    """The last non-empty line the tool printed, else its exit status."""
    lines = [line.strip() for line in (proc.stderr or proc.stdout or "").splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [f"exit status {proc.returncode}"])[-1]


def in_netns(namespace: str, argv: Sequence[str]) -> list[str]:
    """`argv` run inside the named network namespace."""
    return ["ip", "netns", "exec", namespace, *argv]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
