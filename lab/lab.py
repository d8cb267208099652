"""The Lab: a local cluster of real nodes in network namespaces, and the faults to break it with.

    lab = Lab("/tmp/mylab")                  # the lab directory (default $HAVEN_LAB_DIR or
    lab.up("config/examples/two-node.toml")  #   /run/haven-lab): all its state lives there
    lab.exec("node1", ["haven", "status"])   # in node1's namespace, HAVEN_STATE_DIR set
    lab.partition(["node1"], network="interconnect"); lab.heal()
    lab.kill("node1"); lab.start("node1"); lab.pause("node2"); lab.resume("node2")
    lab.down()                               # everything goes, also after a crash of `up`

Every method works from the state on disk, so any process (the CLI in another shell, a test
fixture) can drive a lab that another one brought up. Methods that change the lab hold the lab
directory's lock. Mistakes raise LabError with a one-line message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from lab import cgroups, device_plan, devices, faults, naming, netns, procs, teardown
from lab import state as lab_state
from lab import witness as lab_witness
from lab.commands import have, in_netns, python_env, run
from lab.errors import LabError
from lab.plan import make_plan
from lab.state import LabState, ServerState

DEFAULT_DIR = "/run/haven-lab"
NODE_START_TIMEOUT = 30.0


def default_dir() -> str:
    return os.environ.get("HAVEN_LAB_DIR") or DEFAULT_DIR


def unavailable() -> str | None:
    """Why the lab cannot run on this machine, None if it can."""
    if os.geteuid() != 0:
        return "the lab needs root (it creates network namespaces)"
    if not have("ip"):
        return "ip (Debian package iproute2) is not installed"
    proc = run(["ip", "netns", "list"], check=False)
    if proc.returncode != 0:
        return f"`ip netns` does not work here: {proc.stderr.strip()}"
    return None


def _require_lab_support() -> None:
    reason = unavailable()
    if reason:
        raise LabError(reason)


def _tool_path() -> str:
    """PATH with this installation's bin directory first, so `haven` in a lab is this Haven."""
    path = os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    bindir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bindir, "haven")) and bindir not in path.split(os.pathsep):
        path = bindir + os.pathsep + path
    return path


class Lab:
    def __init__(self, directory: str | None = None, progress: Callable[[str], None] | None = None):
        self.dir = os.path.abspath(directory or default_dir())
        self.progress = progress or (lambda line: None)

    # reading the state -------------------------------------------------------------------------
    def state(self) -> LabState:
        st = lab_state.load(self.dir) if os.path.isdir(self.dir) else None
        if st is None:
            raise LabError(
                f"no lab is up in {self.dir} (start one with `haven lab up --config FILE"
                f" --dir {self.dir}`, or pass --dir / set HAVEN_LAB_DIR)"
            )
        return st

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """The lab directory's lock, for a command that changes the lab (root only)."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (it creates network namespaces)")
        self.state()  # a clear "no lab is up" rather than a lock file in a directory of no lab
        return lab_state.locked(self.dir)

    def is_up(self) -> bool:
        return os.path.exists(lab_state.state_path(self.dir))

    @staticmethod
    def server(st: LabState, name: str) -> ServerState:
        """A server by its configured name or its short name."""
        for s in st.servers:
            if s.name == name:
                return s
        for s in st.servers:
            if s.short == name:
                return s
        names = ", ".join(repr(s.name) for s in st.servers)
        raise LabError(f"unknown server {name!r} (servers: {names})")

    # up ------------------------------------------------------------------------------------------
    def up(
        self, config_path: str, *, wait: bool = True, timeout: float = NODE_START_TIMEOUT
    ) -> dict[str, Any]:
        """Build the lab for the configuration and start every server's node; the lab's status."""
        from config import ConfigError, load_config

        _require_lab_support()
        if not os.path.isfile(config_path):
            raise LabError(f"configuration file {config_path} does not exist")
        try:
            cluster = load_config(config_path)
        except ConfigError as exc:
            raise LabError(str(exc)) from None  # every problem, one per line
        needed = device_plan.lab_devices(cluster)  # refuses device paths the lab cannot serve
        made_dir = not os.path.exists(self.dir)
        os.makedirs(self.dir, exist_ok=True)
        lock = os.path.join(self.dir, lab_state.LOCK_FILE)
        had_lock = os.path.exists(lock)
        try:
            with lab_state.locked(self.dir):
                st = self._prepare(cluster, config_path)
        except BaseException:
            if made_dir and not self.is_up():
                shutil.rmtree(self.dir, ignore_errors=True)
            elif not had_lock and not self.is_up():
                with contextlib.suppress(OSError):
                    os.unlink(lock)
            raise
        try:
            with lab_state.locked(self.dir):
                shutil.copyfile(config_path, st.config_copy)
                scripts = os.path.join(os.path.dirname(os.path.abspath(config_path)), "scripts")
                if os.path.isdir(scripts):  # exec resources' scripts live beside the config
                    shutil.copytree(
                        scripts, os.path.join(os.path.dirname(st.config_copy), "scripts")
                    )
                self._cluster_key(cluster, st)
                self._build(st)
                for need in needed:
                    if need.kind == "pty":
                        self._pty_pair(st, need.name)
                    else:
                        self._shared_file(st, need.name, need.size)
                lab_witness.start(st, {**os.environ, "PATH": _tool_path()}, self.progress)
                for s in st.servers:
                    self._start_node(st, s)
                st.phase = "up"
                lab_state.save(st)
        except BaseException as exc:
            self.progress(f"up failed ({exc or type(exc).__name__}): removing what was made")
            self.down()
            raise
        if wait:
            for s in st.servers:
                self.wait_running(s.name, timeout)
        return self.status()

    def _prepare(self, cluster: Any, config_path: str) -> LabState:
        existing = lab_state.state_path(self.dir)
        if os.path.exists(existing):
            raise LabError(
                f"a lab is already up in {self.dir}; `haven lab down --dir {self.dir}` first"
            )
        clutter = sorted(set(os.listdir(self.dir)) - {lab_state.LOCK_FILE})
        if clutter:
            raise LabError(
                f"{self.dir} is not empty and holds no lab ({', '.join(clutter[:3])}...);"
                " give the lab an empty or new directory"
            )
        st = make_plan(cluster, self.dir, config_path)
        leftovers = netns.list_namespaces(naming.namespace_prefix(st.id))
        if leftovers:
            raise LabError(
                f"namespaces of an earlier lab in {self.dir} are still there "
                f"({', '.join(leftovers)}); `haven lab down --dir {self.dir}` first"
            )
        self._key_copy(cluster, st)  # refuses a key the lab cannot give its nodes, now
        st.cgroup_root = cgroups.available_root()
        for s in st.servers:
            s.cgroup = os.path.join(st.cgroup_root, s.namespace) if st.cgroup_root else None
        lab_state.save(st)  # from here on, `down` can undo everything, whatever happens to us
        return st

    def _key_copy(self, cluster: Any, st: LabState) -> str | None:
        """Where the lab's copy of the cluster key goes (None: no key, or an absolute path the
        nodes use where it is)."""
        if cluster.key_file is None:
            return None
        original = cluster.key_path()
        written = os.path.expanduser(cluster.key_file)
        if os.path.isabs(written):
            if not os.path.exists(original):
                raise LabError(
                    f"the cluster key {original} does not exist; create it with "
                    f"`haven config keygen {original}`"
                )
            return None
        copy = os.path.normpath(os.path.join(st.dir, written))
        if not copy.startswith(st.dir + os.sep):
            raise LabError(
                f"key_file {cluster.key_file!r} lies outside the configuration's directory; "
                "for the lab, give a file name relative to the configuration or an absolute path"
            )
        return copy

    def _cluster_key(self, cluster: Any, st: LabState) -> None:
        """Give the lab's copy of the configuration its cluster key: a key file named by a path
        relative to the configuration is copied next to the lab's copy, or made for the lab when
        the configuration's own does not exist (the examples ship without one); an absolute one
        is used where it is."""
        from config.clusterkey import ClusterKeyError, generate_cluster_key

        copy = self._key_copy(cluster, st)
        if copy is None:
            return
        original = cluster.key_path()
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        if os.path.exists(original):
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out, open(original, "rb") as src:
                out.write(src.read())
            self.progress(f"cluster key: a copy of {original}")
        else:
            try:
                generate_cluster_key(copy)
            except ClusterKeyError as exc:
                raise LabError(str(exc)) from None
            self.progress(f"cluster key: {copy} made for the lab ({original} does not exist)")

    def _build(self, st: LabState) -> None:
        self.progress(f"lab {st.id} for cluster {st.cluster!r} in {st.dir}")
        netns.add_namespace(st.switch)
        for net in st.networks:
            netns.add_bridge(st.switch, net.bridge)
            self.progress(f"network {net.name} {net.subnet}: bridge {net.bridge} in {st.switch}")
        r = st.router
        netns.add_namespace(r.namespace)
        bridge = next(n.bridge for n in st.networks if n.name == r.network)
        netns.connect(st.switch, bridge, r.port, r.namespace, r.interface, r.address)
        self.progress(f"router {r.namespace}: {r.address} on {r.network} ({r.interface})")
        bridges = {n.name: n.bridge for n in st.networks}
        for s in st.servers:
            netns.add_namespace(s.namespace)
            os.makedirs(s.state_dir, exist_ok=True)
            for net, address in s.addresses.items():
                netns.connect(
                    st.switch, bridges[net], s.ports[net], s.namespace, s.interfaces[net], address
                )
            where = ", ".join(f"{n} {a} ({s.interfaces[n]})" for n, a in s.addresses.items())
            self.progress(f"server {s.name!r} {s.namespace}: {where or 'no address'}")

    def _node_env(self, s: ServerState) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": _tool_path(),
            "HAVEN_STATE_DIR": s.state_dir,
            "HAVEN_LAB": "1",
            "HAVEN_LAB_DIR": self.dir,
        }

    def _start_node(self, st: LabState, s: ServerState, env: dict[str, str] | None = None) -> None:
        if s.cgroup:
            cgroups.create(s.cgroup)
        argv = in_netns(
            s.namespace,
            [
                sys.executable, "-m", "cli.main", "node", "run",
                "--config", st.config_copy, "--server", s.name, "--state-dir", s.state_dir,
                "--lab", "--log-format", "json",
            ],
        )  # fmt: skip
        s.pid, s.start_time = procs.spawn(
            argv, log=s.log, cwd=s.dir, env={**self._node_env(s), **(env or {})}, cgroup=s.cgroup
        )
        s.state = "running"
        lab_state.save(st)
        self.progress(f"server {s.name!r}: node started (pid {s.pid}, log {s.log})")

    def wait_running(self, server: str, timeout: float = NODE_START_TIMEOUT) -> dict[str, Any]:
        """Until the server's node answers and reports itself running; its status."""
        from bus.paths import NodePaths
        from bus.rpc import Client, RequestError

        s = self.server(self.state(), server)
        paths = NodePaths(s.state_dir)
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not procs.is_alive(s.pid, s.start_time):
                raise LabError(
                    f"the node of server {s.name!r} ended while starting; see {s.log}"
                    f" ({_last_line(s.log)})"
                )
            if paths.node_running():
                try:
                    with Client(paths.service_endpoint("node"), f"lab/{os.getpid()}") as c:
                        status = c.request("status", timeout=1.0)
                    if status["node"]["state"] == "running":
                        self.progress(f"server {s.name!r}: node running")
                        return status
                    last = f"node state {status['node']['state']}"
                except RequestError as exc:
                    last = str(exc)
            time.sleep(0.05)
        raise LabError(f"the node of server {s.name!r} was not running after {timeout:g}s ({last})")

    # down ----------------------------------------------------------------------------------------
    def down(self) -> dict[str, Any]:
        """Remove everything the lab made: processes, namespaces, cgroups, devices, its directory.
        Works from the state on disk and, failing that, by the names the lab directory implies;
        nothing to remove is fine."""
        _require_lab_support()
        if not os.path.isdir(self.dir):
            return teardown.sweep(self.dir, None, naming.lab_id(self.dir), self.progress)
        with lab_state.locked(self.dir):
            try:
                st = lab_state.load(self.dir)
            except LabError as exc:
                self.progress(f"{exc}: cleaning up by name")
                st = None
            lab = st.id if st else naming.lab_id(self.dir)
            return teardown.sweep(self.dir, st, lab, self.progress)

    # the machines --------------------------------------------------------------------------------
    def _tree(self, s: ServerState) -> procs.Tree:
        return procs.Tree(s.pid, s.start_time, s.cgroup)

    def pids(self, server: str) -> list[int]:
        """The live processes of the server's node (its whole tree)."""
        return procs.tree_pids(self._tree(self.server(self.state(), server)))

    def kill(self, server: str) -> dict[str, Any]:
        """The machine died: SIGKILL of the server's whole node process tree at once, then of
        anything else left in its namespace (e.g. commands from `exec`); its NICs go down, as a
        dead machine's do (it answers no ARP for a floating IP it held). `start` boots them."""
        with self._locked():
            st = self.state()
            s = self.server(st, server)
            tree = self._tree(s)
            pids = procs.tree_pids(tree)
            procs.kill(tree)
            others = netns.kill_namespace_processes(s.namespace)
            netns.power_off(s.namespace, list(s.interfaces.values()))
            s.state = "killed"
            lab_state.save(st)
        self.progress(f"server {s.name!r}: killed ({len(pids) + others} processes)")
        return {"server": s.name, "killed": pids}

    def start(
        self,
        server: str,
        *,
        wait: bool = True,
        timeout: float = NODE_START_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start the server's node again (after kill, or after it ended by itself); `env` adds
        to its node's environment for this start only (e.g. LD_PRELOAD of libfaketime)."""
        with self._locked():
            st = self.state()
            s = self.server(st, server)
            if procs.tree_pids(self._tree(s)):
                how = "paused (resume or kill it first)" if s.state == "paused" else "running"
                raise LabError(f"the node of server {s.name!r} is already {how}")
            for network, address in s.addresses.items():
                netns.boot(s.namespace, s.interfaces[network], address)
            self._start_node(st, s, env)
        if wait:
            self.wait_running(s.name, timeout)
        return self.server_status(st, s)

    def pause(self, server: str) -> dict[str, Any]:
        """The machine hangs but is alive: SIGSTOP of every process of the server's node."""
        with self._locked():
            st = self.state()
            s = self.server(st, server)
            if not procs.tree_pids(self._tree(s)):
                raise LabError(f"the node of server {s.name!r} is not running")
            pids = procs.pause(self._tree(s))
            s.state = "paused"
            lab_state.save(st)
        self.progress(f"server {s.name!r}: paused ({len(pids)} processes stopped)")
        return {"server": s.name, "paused": pids}

    def resume(self, server: str) -> dict[str, Any]:
        """SIGCONT of every process of the server's node (nothing paused: nothing to do)."""
        with self._locked():
            st = self.state()
            s = self.server(st, server)
            pids = procs.resume(self._tree(s))
            if s.state == "paused":
                s.state = "running"
                lab_state.save(st)
        self.progress(f"server {s.name!r}: resumed ({len(pids)} processes)")
        return {"server": s.name, "resumed": pids}

    # faults --------------------------------------------------------------------------------------
    def _network(self, st: LabState, network: str | None) -> str | None:
        names = [n.name for n in st.networks]
        if network is not None and network not in names:
            raise LabError(f"unknown network {network!r} (networks: {', '.join(names)})")
        return network

    def _set_faults(self, st: LabState, new: list[dict[str, Any]]) -> None:
        faults.apply(st, new)
        st.faults = new
        lab_state.save(st)

    def partition(
        self,
        members: Sequence[str],
        network: str | None = None,
        one_way: bool = False,
        against: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Drop all traffic between `members` (servers, and "router" if named) and everyone else
        — or only `against` those, when given (e.g. cut node1 from node2 while both still reach
        the router) — on `network` or on every network; with `one_way`, only what the members
        send."""
        if not members:
            raise LabError("name at least one server to partition")
        with self._locked():
            st = self.state()

            def named(who: Sequence[str]) -> list[str]:
                names = []
                for m in who:
                    name = m if m == naming.ROUTER_NAME else self.server(st, m).name
                    if name not in names:
                        names.append(name)
                return names

            fault = {
                "kind": "partition",
                "members": named(members),
                "network": self._network(st, network),
                "one_way": one_way,
            }
            if against:
                fault["against"] = [n for n in named(against) if n not in fault["members"]]
                if not fault["against"]:
                    raise LabError("--against names only servers that are partitioned off")
            if not faults.rules(st, fault):
                where = f"network {network!r}" if network else "any network"
                raise LabError(f"nothing to partition: nobody else shares {where} with them")
            self._set_faults(st, [*st.faults, fault])
        self.progress(faults.describe(fault))
        return fault

    def loss(self, server: str, network: str, percent: float) -> dict[str, Any]:
        """Drop each frame from or to the server on `network` with probability percent/100 (it
        replaces an earlier loss of that server on that network; 0 removes it)."""
        if not 0 <= percent <= 100:
            raise LabError(f"--percent must be between 0 and 100, got {percent:g}")
        with self._locked():
            st = self.state()
            name = server if server == naming.ROUTER_NAME else self.server(st, server).name
            self._network(st, network)
            if name not in faults.ports_on(st, network):
                raise LabError(f"{name!r} has no address on network {network!r}")
            fault = {"kind": "loss", "server": name, "network": network, "percent": percent}
            kept = [
                f
                for f in st.faults
                if not (f["kind"] == "loss" and (f["server"], f["network"]) == (name, network))
            ]
            self._set_faults(st, kept + [fault] if percent > 0 else kept)
        self.progress(faults.describe(fault))
        return fault

    def heal(self) -> dict[str, Any]:
        """Remove every partition and loss rule (none: fine)."""
        with self._locked():
            st = self.state()
            healed = st.faults
            self._set_faults(st, [])
        self.progress(f"healed {len(healed)} fault(s)" if healed else "no fault to heal")
        return {"healed": healed}

    # devices (COM and disk heartbeats) -----------------------------------------------------------
    def add_pty_pair(self, name: str) -> dict[str, Any]:
        """A socat pty pair, ends at <dir>/com/<name>.a and .b; removed by `down`."""
        with self._locked():
            return self._pty_pair(self.state(), name)

    def _pty_pair(self, st: LabState, name: str) -> dict[str, Any]:
        group = None
        if st.cgroup_root:
            group = os.path.join(st.cgroup_root, naming.namespace_prefix(st.id) + "dev")
            cgroups.create(group)
        record = devices.pty_pair(self.dir, name, cgroup=group)
        st.devices.append(record)
        lab_state.save(st)
        self.progress(f"COM line {name!r}: pty pair {' and '.join(record['ends'])} (socat)")
        return record

    def add_shared_file(self, name: str, size: int) -> dict[str, Any]:
        """A shared file of `size` bytes at <dir>/disk/<name>.img; removed by `down`."""
        with self._locked():
            return self._shared_file(self.state(), name, size)

    def _shared_file(self, st: LabState, name: str, size: int) -> dict[str, Any]:
        record = devices.shared_file(self.dir, name, size)
        st.devices.append(record)
        lab_state.save(st)
        self.progress(f"shared disk {name!r}: {record['path']} ({size} bytes)")
        return record

    # running commands in the lab -----------------------------------------------------------------
    def command(self, target: str, argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that run `argv` in `target`'s namespace (a server, or
        "router"): HAVEN_STATE_DIR is the server's state directory, `haven` is this Haven."""
        if not argv:
            raise LabError("no command given (haven lab exec SERVER -- CMD...)")
        st = self.state()
        env = {**os.environ, "PATH": _tool_path(), "HAVEN_LAB_DIR": self.dir}
        if target == naming.ROUTER_NAME and target not in {s.name for s in st.servers}:
            env.pop("HAVEN_STATE_DIR", None)
            namespace = st.router.namespace
        else:
            s = self.server(st, target)
            env["HAVEN_STATE_DIR"] = s.state_dir
            namespace = s.namespace
        if not netns.exists(namespace):
            raise LabError(f"namespace {namespace} is gone; bring the lab down and up again")
        return in_netns(namespace, argv), env

    def exec(
        self,
        target: str,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in `target`'s namespace to completion (output captured, at most `timeout`
        seconds, then killed); `env` adds to the environment that `command()` gives."""
        full, base = self.command(target, argv)
        env = {**base, **(env or {})}
        try:
            return subprocess.run(
                full, input=input, capture_output=True, text=True, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            raise LabError(
                f"`{' '.join(argv)}` in {target} took longer than {timeout:g}s"
            ) from None

    def reachable(self, source: str, address: str, timeout: float = 1.0, count: int = 1) -> bool:
        """Does `address` answer an ICMP echo sent from `source`'s namespace?"""
        argv = [
            sys.executable, "-m", "lab.probe", address,
            "--timeout", str(timeout), "--count", str(count),
        ]  # fmt: skip
        env = python_env({})  # lab.probe is this Haven's, installed or not
        return self.exec(source, argv, timeout=timeout * count + 10, env=env).returncode == 0

    # status --------------------------------------------------------------------------------------
    def server_status(self, st: LabState, s: ServerState) -> dict[str, Any]:
        """One server's part of `status()`."""
        order = {n.name: n.index for n in st.networks}  # the state file keeps its keys sorted
        networks = sorted(s.addresses, key=lambda n: order.get(n, len(order)))
        alive = bool(procs.tree_pids(self._tree(s)))
        if s.state == "killed" and not alive:
            state = "killed"
        elif alive:
            state = "paused" if s.state == "paused" else "running"
        elif s.state == "stopped":
            state = "stopped"  # never started
        else:
            state = "exited"  # the node ended by itself (e.g. a lab-form shutdown)
        return {
            "name": s.name,
            "short": s.short,
            "namespace": s.namespace,
            "pid": s.pid if alive else None,
            "state": state,
            "addresses": {n: s.addresses[n].split("/")[0] for n in networks},
            "interfaces": {n: s.interfaces[n] for n in networks},
            "state_dir": s.state_dir,
            "log": s.log,
        }

    def status(self) -> dict[str, Any]:
        st = self.state()
        return {
            "dir": st.dir,
            "id": st.id,
            "phase": st.phase,
            "cluster": st.cluster,
            "config": st.config,
            "switch": st.switch,
            "router": {
                "namespace": st.router.namespace,
                "network": st.router.network,
                "address": st.router.address.split("/")[0],
                "interface": st.router.interface,
                "witness": lab_witness.status(st),
            },
            "networks": [
                {"name": n.name, "subnet": n.subnet, "bridge": n.bridge} for n in st.networks
            ],
            "servers": [self.server_status(st, s) for s in st.servers],
            "faults": [{**f, "text": faults.describe(f)} for f in st.faults],
            "devices": st.devices,
            "cgroups": bool(st.cgroup_root),
        }


def _last_line(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f.read()[-4000:].splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"
