"""Real node processes for tests: start `haven node run` in its own session, talk to it over its
bus, watch its events, and check that it leaves nothing behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import zmq

from bus import envelope
from bus.envelope import Envelope, EnvelopeError
from bus.paths import NodePaths
from bus.rpc import Client, RequestError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def node_config(
    actors: list[dict[str, Any]],
    node: dict[str, Any] | None = None,
    servers: tuple[str, ...] = ("node1",),
    cluster: str = "test",
    subnet: str = "198.18.0",
    heartbeats: tuple[dict[str, Any], ...] = (),
    timing: dict[str, Any] | None = None,
    key_file: str | None = None,
    link_port: int | None = None,
) -> str:
    """A cluster configuration whose servers run the given built-in actors. Server i has the
    address <subnet>.(11+i) on the network "public" (subnet "127.0.0" runs several servers'
    heartbeats on this machine without namespaces). Several servers get a link port of their own
    (random unless given), so that tests running side by side on one machine do not collide."""

    def table(header: str, values: dict[str, Any]) -> str:
        return header + "\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())

    lines = [table("[cluster]", {"name": cluster, **({"key_file": key_file} if key_file else {})})]
    for i, server in enumerate(servers):
        lines.append(
            table("[[server]]", {"name": server, "addresses": {"public": f"{subnet}.{11 + i}"}})
        )
    lines.append(table("[[network]]", {"name": "public", "subnet": f"{subnet}.0/24"}))
    if len(servers) > 1:
        lines.append(table("[ports]", {"link": link_port or random.randint(30000, 39999)}))
    if timing:
        lines.append(table("[timing]", timing))
    lines += [table("[[heartbeat]]", hb) for hb in heartbeats]
    lines.append(table("[node]", {"beat_interval": "100ms", "beat_timeout": "1s", **(node or {})}))
    lines += [table("[[node.actor]]", actor) for actor in actors]
    return "\n".join(lines)


def exec_group(start: str, stop: str, extra: str = "") -> str:
    """A `[[group]]` "web" of one `exec` resource "app" (its start and stop programs, and any
    further lines for the resource), to append to a `node_config`."""
    return (
        f'\n[[group]]\nname = "web"\n\n[[group.resource]]\nname = "app"\ntype = "exec"\n'
        f'start = "{start}"\nstop = "{stop}"\n{extra}'
    )


def destinations(node: NodeProcess) -> dict[str, dict]:
    """`haven alerts destinations --json` of a node, by destination name."""
    r = node.cli("alerts", "destinations", "--json")
    assert r.returncode == 0, r.stderr
    return {d["destination"]: d for d in json.loads(r.stdout)}


def wait_destination(node: NodeProcess, name: str, predicate, timeout: float = 15.0) -> dict:
    """A destination's state once `predicate(state)` holds, or the last one at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        state = destinations(node)[name]
        if predicate(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


class NodeProcess:
    def __init__(
        self,
        state_dir: str,
        config_text: str,
        server: str | None = None,
        env: dict[str, str] | None = None,
        launcher: str = "template",
    ) -> None:
        self.state_dir = state_dir
        self.server = server
        self.paths = NodePaths(state_dir)
        self.config_path = os.path.join(state_dir, "cluster.toml")
        os.makedirs(state_dir, exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(state_dir, "node.out")
        argv = [
            sys.executable,
            "-m",
            "cli.main",
            "node",
            "run",
            "--config",
            self.config_path,
            "--state-dir",
            state_dir,
            "--lab",
            "--launcher",
            launcher,
            "--log-format",
            "json",
        ]
        if server:
            argv += ["--server", server]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in wait())
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.sid = self.proc.pid  # session leader: every descendant carries this session id

    # talking to it -----------------------------------------------------------------------------
    def request(
        self, method: str, body: dict | None = None, timeout: float = 5.0, service: str = "node"
    ) -> Any:
        with Client(self.paths.service_endpoint(service), "test/harness") as client:
            return client.request(method, body, timeout=timeout)

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def actor(self, name: str) -> dict[str, Any]:
        return next(a for a in self.status()["actors"] if a["name"] == name)

    def wait_running(self, timeout: float = 15.0) -> dict[str, Any]:
        """Until the node answers and reports itself running."""
        return self.wait_status(lambda s: s["node"]["state"] == "running", timeout)

    def wait_status(self, predicate: Callable[[dict], bool], timeout: float = 15.0) -> dict:
        """Until the node's status satisfies `predicate`. Polls (bounded): for states reached
        while the node is still starting, before any test could have subscribed to events."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited with {self.proc.returncode}:\n{self.output()}")
            if os.path.exists(self.paths.service_endpoint("node")[6:]):
                try:
                    status = self.request("status", timeout=1.0)
                    if predicate(status):
                        return status
                except RequestError as exc:
                    last = exc
            time.sleep(0.05)
        raise AssertionError(f"status not reached within {timeout}s ({last}):\n{self.output()}")

    def watch(self, prefix: str = "", everywhere: bool = False) -> BusWatcher:
        """Events on this node's bus that arose on this server (`everywhere`: also those the
        link brought from the other servers, e.g. their alerts)."""
        origin = None if everywhere or self.server is None else self.server
        return BusWatcher(self.paths, prefix, origin)

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "HAVEN_STATE_DIR": self.state_dir},
            timeout=timeout,
        )

    # ending it ---------------------------------------------------------------------------------
    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill_all(self) -> None:
        """Test teardown: nothing of this node survives, whatever the test did."""
        for pid in session_pids(self.sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(10)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()[-6000:]


class BusWatcher:
    """Subscribes to a node's events; tests wait for events, they do not sleep and poll."""

    def __init__(self, paths: NodePaths, prefix: str = "", origin: str | None = None) -> None:
        self.origin = origin  # only events that arose on this server, if given
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.connect(paths.subscribe_endpoint)
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.seen: list[Envelope] = []
        time.sleep(0.2)  # the subscription must reach the proxy before we act (slow joiner)

    def wait_for(
        self, topic: str, predicate: Callable[[dict], bool] = lambda b: True, timeout: float = 10.0
    ) -> Envelope:
        """The next event on `topic` whose body satisfies `predicate`."""
        return self.wait_for_any(
            lambda e: e.topic == topic and predicate(e.body), timeout, what=topic
        )

    def wait_for_any(
        self, match: Callable[[Envelope], bool], timeout: float = 10.0, what: str = "matching"
    ) -> Envelope:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not self.sock.poll(int(left * 1000) + 1):
                break
            try:
                env = envelope.decode_multipart(self.sock.recv_multipart())
            except EnvelopeError:
                continue
            if self.origin is not None and env.server != self.origin:
                continue
            self.seen.append(env)
            if match(env):
                return env
        seen = [(e.topic, e.body) for e in self.seen[-15:]]
        raise AssertionError(f"no {what} event within {timeout}s; last seen: {seen}")

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()

    def __enter__(self) -> BusWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def session_pids(sid: int) -> list[int]:
    """Every live (non-zombie) process whose session id is `sid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state ppid pgrp session ...
            pids.append(int(entry))
    return pids


def alive(pid: int) -> bool:
    """True while `pid` is a running process (a zombie waiting for init to reap it is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def unix_sockets_under(path: str) -> list[str]:
    """Bound unix sockets whose path lies under `path` (from /proc/net/unix)."""
    found = []
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith(path):
                found.append(parts[7])
    return found
