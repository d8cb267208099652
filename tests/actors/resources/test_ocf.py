"""The ocf resource with real agents: heartbeat:Dummy and heartbeat:IPaddr2 from resource-agents
(IPaddr2 inside a network namespace of the test's own), and a small agent of the tests' own,
under an OCF_ROOT given through ctx.env, that records what it was given and answers what its
parameters tell it to.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from actors.resources.base import ResourceContext, ResourceError, Why
from actors.resources.ocf import OCF_ROOT, OcfDriver

REPO = Path(__file__).resolve().parents[3]
HEARTBEAT = Path(OCF_ROOT) / "resource.d" / "heartbeat"
needs_agents = pytest.mark.skipif(
    not (HEARTBEAT / "Dummy").exists(),
    reason="no heartbeat OCF agents (apt-get install resource-agents)",
)

PROBE = """#!/bin/sh
# An OCF agent for the tests: records its environment, answers <action>_code.
env > "$HA_RSCTMP/env.$1"
eval "code=\\${OCF_RESKEY_$1_code:-0}"
[ -n "$OCF_RESKEY_sleep" ] && sleep "$OCF_RESKEY_sleep"
[ "$code" != 0 ] && [ -n "$OCF_RESKEY_reason" ] && echo "ocf-exit-reason:$OCF_RESKEY_reason" >&2
echo "probe $1 done"
exit "$code"
"""


def driver(tmp_path, agent: str, parameters=None, env=None, resource: str = "rsc1") -> OcfDriver:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    ctx = ResourceContext(
        server="s1",
        group="g1",
        resource=resource,
        params={"agent": agent, "parameters": parameters},
        priority=1,
        state_dir=str(state),
        config_dir=str(tmp_path),
        env=env or {},
        log=structlog.get_logger().bind(resource=resource),
    )
    return OcfDriver(ctx)


@pytest.fixture
def probe(tmp_path) -> dict[str, str]:
    """ctx.env with an OCF_ROOT holding the probe agent as test:Probe."""
    root = tmp_path / "ocf"
    agent = root / "resource.d" / "test" / "Probe"
    agent.parent.mkdir(parents=True)
    agent.write_text(PROBE)
    agent.chmod(0o755)
    return {"OCF_ROOT": str(root)}


def recorded(tmp_path, action: str) -> dict[str, str]:
    text = (tmp_path / "state" / "rsctmp" / f"env.{action}").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@needs_agents
def test_dummy_start_monitor_stop_keeps_its_state_in_ha_rsctmp(tmp_path):
    d = driver(tmp_path, "heartbeat:Dummy")
    state_file = tmp_path / "state" / "rsctmp" / "Dummy-rsc1.state"
    assert not asyncio.run(d.active())
    asyncio.run(d.start(Why()))
    assert state_file.exists() and asyncio.run(d.active())
    asyncio.run(d.start(Why()))  # OCF: starting what runs succeeds
    asyncio.run(d.stop(Why()))
    assert not state_file.exists() and not asyncio.run(d.active())
    asyncio.run(d.stop(Why()))  # OCF: stopping what is stopped succeeds
    assert d.details() == {"agent": "heartbeat:Dummy"}


@needs_agents
def test_parameters_reach_the_agent(tmp_path):
    elsewhere = tmp_path / "dummy.state"
    d = driver(tmp_path, "heartbeat:Dummy", parameters={"state": str(elsewhere)})
    asyncio.run(d.start(Why()))
    assert elsewhere.exists()
    asyncio.run(d.stop(Why()))
    assert not elsewhere.exists()


@needs_agents
def test_a_reboot_empties_ha_rsctmp(tmp_path):
    """The boot ID cannot change in a test: the one recorded beside HA_RSCTMP is made stale,
    which is what the next boot would find."""
    asyncio.run(driver(tmp_path, "heartbeat:Dummy").start(Why()))
    assert asyncio.run(driver(tmp_path, "heartbeat:Dummy").active())  # a restarted actor
    (tmp_path / "state" / "rsctmp.boot_id").write_text("a-boot-before\n")
    assert not asyncio.run(driver(tmp_path, "heartbeat:Dummy").active())


def test_the_agent_gets_the_ocf_environment(tmp_path, probe):
    parameters = {"name": "web", "port": 8080, "enabled": True, "debug": False}
    d = driver(tmp_path, "test:Probe", parameters, env=probe, resource="rsc one")
    asyncio.run(d.start(Why()))
    env = recorded(tmp_path, "start")
    assert {k: v for k, v in env.items() if k.startswith(("OCF_", "HA_"))} == {
        "OCF_ROOT": probe["OCF_ROOT"],
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "0",
        "OCF_RESOURCE_INSTANCE": "rsc one",
        "OCF_RESOURCE_TYPE": "Probe",
        "OCF_RESOURCE_PROVIDER": "test",
        "HA_RSCTMP": str(tmp_path / "state" / "rsctmp"),
        "OCF_RESKEY_CRM_meta_timeout": "60000",
        "OCF_RESKEY_name": "web",
        "OCF_RESKEY_port": "8080",
        "OCF_RESKEY_enabled": "true",
        "OCF_RESKEY_debug": "false",
    }
    assert recorded(tmp_path, "monitor")["OCF_RESKEY_name"] == "web"  # start is checked


def test_failed_start_names_the_code_and_the_agents_reason(tmp_path, probe):
    parameters = {"start_code": 6, "reason": "config file /etc/x.conf missing"}
    d = driver(tmp_path, "test:Probe", parameters, env=probe)
    with pytest.raises(ResourceError) as failed:
        asyncio.run(d.start(Why()))
    assert str(failed.value) == (
        "test:Probe start failed: exit 6 (OCF_ERR_CONFIGURED): config file /etc/x.conf missing"
    )
    d = driver(tmp_path, "test:Probe", {"stop_code": 1}, env=probe)
    with pytest.raises(ResourceError, match=r"stop failed: exit 1 \(OCF_ERR_GENERIC\): probe stop"):
        asyncio.run(d.stop(Why()))


def test_start_counts_only_when_monitor_agrees(tmp_path, probe):
    d = driver(tmp_path, "test:Probe", {"monitor_code": 7}, env=probe)
    with pytest.raises(ResourceError, match=r"monitor then says: exit 7 \(OCF_NOT_RUNNING\)"):
        asyncio.run(d.start(Why()))


def test_monitor_errors_are_logged_and_read_as_not_running(tmp_path, probe):
    d = driver(tmp_path, "test:Probe", {"monitor_code": 5, "reason": "binary gone"}, env=probe)
    with capture_logs() as logs:
        assert asyncio.run(d.active()) is False
    assert [e["error"] for e in logs if e["event"] == "monitor failed"] == [
        "test:Probe monitor failed: exit 5 (OCF_ERR_INSTALLED): binary gone"
    ]
    quiet = driver(tmp_path, "test:Probe", {"monitor_code": 7}, env=probe)
    with capture_logs() as logs:
        assert asyncio.run(quiet.active()) is False
    assert not [e for e in logs if e["event"] == "monitor failed"]  # 7 is an answer


def test_an_agent_past_its_timeout_is_ended(tmp_path, probe):
    d = driver(tmp_path, "test:Probe", {"sleep": 30}, env=probe)
    d.timeout = 0.5  # the real 60 s, shortened
    started = time.monotonic()
    with pytest.raises(ResourceError, match="did not finish within its timeout"):
        asyncio.run(d.stop(Why()))
    assert time.monotonic() - started < 5
    with capture_logs() as logs:
        assert not asyncio.run(d.active())
    assert "did not finish" in logs[0]["error"]


def test_unknown_agent_names_the_path_it_looked_for(tmp_path, probe):
    d = driver(tmp_path, "test:Nothing", env=probe)
    path = Path(probe["OCF_ROOT"]) / "resource.d" / "test" / "Nothing"
    with pytest.raises(ResourceError, match=f"OCF agent test:Nothing not found: {path} is not"):
        asyncio.run(d.start(Why()))
    assert not asyncio.run(d.active())
    for agent in ("Dummy", "heartbeat:../../x", ":Dummy"):
        with pytest.raises(ResourceError, match="is not of the form provider:type"):
            asyncio.run(driver(tmp_path, agent, env=probe).start(Why()))


def test_parameters_an_agent_cannot_take_are_refused(tmp_path, probe):
    with pytest.raises(ResourceError, match='parameter "hosts": an OCF agent takes text'):
        asyncio.run(driver(tmp_path, "test:Probe", {"hosts": ["a", "b"]}, env=probe).start(Why()))
    with pytest.raises(ResourceError, match='parameter "bad-name" cannot be passed'):
        asyncio.run(driver(tmp_path, "test:Probe", {"bad-name": 1}, env=probe).start(Why()))


# --- IPaddr2 in a network namespace -----------------------------------------------------------

CHILD = """
import asyncio, sys
from actors.resources.base import ResourceContext, Why
from actors.resources.ocf import OcfDriver
action, state = sys.argv[1], sys.argv[2]
params = {"agent": "heartbeat:IPaddr2",
          "parameters": {"ip": "198.18.7.10", "nic": "v0", "cidr_netmask": 24}}
d = OcfDriver(ResourceContext("s1", "g1", "ip1", params, 1, state, state))
if action == "active":
    print(asyncio.run(d.active()))
else:
    asyncio.run(getattr(d, action)(Why()))
"""


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"hvocf{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=10)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.decode().strip()}")
    try:
        for argv in (
            ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
            ["link", "set", "v0", "up"],
            ["link", "set", "v1", "up"],
        ):
            subprocess.run(["ip", "-n", name, *argv], check=True, timeout=10)
        yield name
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, timeout=10)
        for pid in pids.stdout.split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], timeout=10)


def in_netns(netns: str, action: str, state: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = ["ip", "netns", "exec", netns, sys.executable, "-c", CHILD, action, str(state)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def addresses(netns: str) -> str:
    return subprocess.run(
        ["ip", "-n", netns, "-4", "-o", "addr", "show", "dev", "v0"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout


@needs_agents
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
@pytest.mark.skipif(shutil.which("ip") is None, reason="no ip (iproute2)")
def test_ipaddr2_adds_and_removes_an_address_in_a_namespace(tmp_path, netns):
    """The driver runs in a child process inside the namespace: the agent acts on whatever
    network namespace it runs in."""
    assert in_netns(netns, "active", tmp_path) == "False"
    in_netns(netns, "start", tmp_path)
    assert "198.18.7.10/24" in addresses(netns)
    assert in_netns(netns, "active", tmp_path) == "True"
    in_netns(netns, "stop", tmp_path)
    assert "198.18.7.10" not in addresses(netns)
    assert in_netns(netns, "active", tmp_path) == "False"
