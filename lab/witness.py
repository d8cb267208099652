"""The lab's witness host: `haven witness serve` in the router's namespace, when the configuration
has a `witness` NP resource whose URL names the router's address (lab/plan.py decides).

`Lab.up` starts it before the nodes (so their first probe finds it) with its files in
`<lab dir>/witness/`: `tokens` (the cluster's token, from the lab's cluster key), `state.json`
(its leases) and `witness.log`. Its pid is kept in the lab state (`router.witness`) before
anything waits on it, so `down` always finds it; the sweep of the router's namespace would catch
it anyway. Stopping it for a drill: `haven lab partition router` cuts it off instead.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from lab import procs
from lab import state as lab_state
from lab.commands import in_netns
from lab.errors import LabError
from lab.state import LabState

START_TIMEOUT = 10.0
READY = "listening on"  # the line `haven witness serve` logs once it accepts requests
DIRECTORY = "witness"


def start(st: LabState, env: dict[str, str], progress: Callable[[str], None]) -> None:
    """Start the router's witness, if the lab has one, and wait until it listens."""
    witness = st.router.witness
    if not witness:
        return
    directory = os.path.join(st.dir, DIRECTORY)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tokens = os.path.join(directory, "tokens")
    fd = os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_token_line(st) + "\n")
    log = os.path.join(directory, "witness.log")
    argv = in_netns(
        st.router.namespace,
        [
            sys.executable, "-m", "cli.main", "witness", "serve", "--listen", witness["listen"],
            "--tokens", tokens, "--state", os.path.join(directory, "state.json"),
        ],
    )  # fmt: skip
    pid, started = procs.spawn(argv, log=log, cwd=directory, env=env, cgroup=None)
    witness.update(pid=pid, start_time=started, log=log)
    lab_state.save(st)  # from here on, `down` stops it whatever happens
    deadline = time.monotonic() + START_TIMEOUT
    while READY not in _read(log):
        if not procs.is_alive(pid, started):
            raise LabError(f"the lab's witness ended at start: {_last_line(log)} (see {log})")
        if time.monotonic() > deadline:
            raise LabError(f"the lab's witness did not listen within {START_TIMEOUT:g}s ({log})")
        time.sleep(0.02)
    progress(f"witness: `haven witness serve` on {witness['listen']} in {st.router.namespace}")


def stop(st: LabState) -> int:
    """Kill the router's witness if it runs; how many processes that was."""
    witness = st.router.witness or {}
    if not witness.get("pid"):
        return 0
    tree = procs.Tree(witness["pid"], witness.get("start_time"), None)
    pids = procs.tree_pids(tree)
    if pids:
        procs.kill(tree)
    return len(pids)


def status(st: LabState) -> dict[str, Any] | None:
    witness = st.router.witness
    if not witness:
        return None
    alive = procs.is_alive(witness.get("pid"), witness.get("start_time"))
    return {"listen": witness["listen"], "running": alive, "log": witness.get("log")}


def _token_line(st: LabState) -> str:
    from actors.np.witness_protocol import cluster_token, token_line
    from config import ConfigError, load_config
    from config.clusterkey import ClusterKeyError, load_cluster_key

    try:
        cluster = load_config(st.config_copy)
        key = load_cluster_key(cluster.key_path() or "")
    except (ConfigError, ClusterKeyError) as exc:
        raise LabError(f"the lab's witness needs the cluster key: {exc}") from None
    return token_line(cluster_token(key), cluster.name)


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read(65536)
    except OSError:
        return ""


def _last_line(path: str) -> str:
    lines = [line for line in _read(path).splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
