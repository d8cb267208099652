"""`haven logs collect` against real nodes: one archive with every reachable server's part and a
manifest; secrets never in it; no configuration or no node is no failure (SPEC §12-16); a server
that dies or hangs is skipped within the deadline (SPEC §12-28)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator

import pytest
from harness import REPO, node_config

from lab import Lab, unavailable

SECRET = "s3cret-Pa55"
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0" * 2


def haven(*args: str, cwd: str, state_dir: str, timeout: float = 60.0):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "HAVEN_STATE_DIR": state_dir, "PYTHONPATH": REPO},
        timeout=timeout,
    )


def read_archive(path: str) -> tuple[str, dict, dict[str, bytes]]:
    """(root directory, manifest, every member's bytes by its name below the root)."""
    files: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as tar:
        roots = {m.name.split("/")[0] for m in tar}
        assert len(roots) == 1, roots
        (root,) = roots
        for m in tar:
            assert not m.name.startswith("/") and ".." not in m.name.split("/")
            if m.isfile():
                files[m.name.removeprefix(root + "/")] = tar.extractfile(m).read()
    return root, json.loads(files["collect.json"]), files


def items(part: dict) -> dict[str, dict]:
    return {i["item"]: i for i in part["items"]}


@pytest.fixture
def workdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="hvlogs-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


ECHO_WITH_SECRET = [
    {"name": "echo", "kind": "echo", "args": {"interval": "100ms", "password": SECRET}},
]


def test_single_node_archive_has_everything_and_no_secret(start_node, workdir) -> None:
    # the configuration names a key file (beside it); no heartbeat needs it to run
    node = start_node(config=node_config(ECHO_WITH_SECRET, key_file="cluster.key"))
    key = os.path.join(node.state_dir, "cluster.key")
    with open(key, "w") as f:
        f.write(KEY + "\n")
    os.chmod(key, 0o600)
    out = os.path.join(workdir, "out.tar.gz")
    result = haven("logs", "collect", "-o", out, "--json", cwd=workdir, state_dir=node.state_dir)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert [n for n in os.listdir(workdir) if n != "out.tar.gz"] == []  # no temporary left
    assert "node1: collecting… " in result.stderr and " ok " in result.stderr
    root, manifest, files = read_archive(out)
    assert json.loads(result.stdout) == manifest
    assert root == "out" and manifest["cluster"] == "test"
    assert manifest["config"]["source"] == "node"
    assert manifest["collected"] == ["node1"] and manifest["skipped"] == []
    (server,) = manifest["servers"]
    assert server["status"] == "collected" and server["via"] == "local" and server["dir"] == "node1"
    for name in (
        "node1/part.json",
        "node1/config/cluster.toml",
        "node1/alerts/alerts.log",
        "node1/status.json",
        "node1/state/tree.txt",
        "node1/state/tree.json",
        "node1/logs/node.out",  # the node's output file, found from its process
        "node1/system/uname.txt",
        "node1/system/ip-addr.txt",
        "node1/system/mounts.txt",
        "node1/system/ps.txt",
    ):
        assert name in files, (name, sorted(files))
    status = json.loads(files["node1/status.json"])
    assert status["cluster"]["name"] == "test" and status["server"] == "node1"
    assert b"<redacted>" in files["node1/config/cluster.toml"]
    assert b'interval = "100ms"' in files["node1/config/cluster.toml"]
    assert files["node1/alerts/alerts.log"].strip()
    assert str(node.proc.pid).encode() in files["node1/system/ps.txt"]
    assert b"state/tree.txt" not in files["node1/state/tree.txt"]
    assert b"cluster.key" in files["node1/state/tree.txt"]  # listed, never copied
    assert not any(n.startswith("node1/state/files/cluster") for n in files)
    key_file = json.loads(files["node1/config/key-file.json"])
    assert key_file["path"] == key and key_file["mode"] == "0600" and key_file["exists"]
    for name, data in files.items():
        assert SECRET.encode() not in data, name
        assert KEY.encode() not in data, name


def test_no_configuration_and_no_node(workdir) -> None:
    state = os.path.join(workdir, "no-such-state")
    cwd = os.path.join(workdir, "here")
    os.mkdir(cwd)
    result = haven("logs", "collect", cwd=cwd, state_dir=state, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (archive,) = os.listdir(cwd)
    assert archive.startswith("haven-logs-") and archive.endswith("Z.tar.gz"), archive
    assert stat.S_IMODE(os.stat(os.path.join(cwd, archive)).st_mode) == 0o600
    _, manifest, files = read_archive(os.path.join(cwd, archive))
    assert manifest["config"]["source"] == "none"
    assert "no configuration" in manifest["config"]["note"]
    (server,) = manifest["servers"]
    assert server["status"] == "collected"
    part = items(server)
    assert part["config"]["status"] == "skipped" and part["config"]["note"] == "no configuration"
    assert part["status.json"]["status"] == "skipped"
    assert "does not exist" in part["state"]["note"]
    assert f"{server['dir']}/system/uname.txt" in files
    assert f"{server['dir']}/part.json" in files


def test_an_invalid_configuration_is_included_without_its_secrets(workdir) -> None:
    config = os.path.join(workdir, "cluster.toml")
    with open(config, "w") as f:
        f.write(
            '[cluster]\nname = "broken one"\nkey_file = "k"\n\n'
            '[[server]]\nname = "node1"\n\n'
            '[[alert]]\nname = "ops"\ntype = "mail"\nto = ["ops@example.com"]\n'
            f'password = "{SECRET}"\n\n'
            f'[[alert]]\nname = "trap"\ntype = "snmp"\ndestination = "x"\ncommunity = "{SECRET}2"\n'
        )
    out = os.path.join(workdir, "x.tar.gz")
    result = haven("logs", "collect", "--config", config, "-o", out, cwd=workdir, state_dir=workdir)
    assert result.returncode == 0, result.stderr
    _, manifest, files = read_archive(out)
    assert manifest["cluster"] == "broken one" and manifest["config"]["source"] == "file"
    text = files["node1/config/cluster.toml"].decode()
    assert 'password = "<redacted>"' in text and 'community = "<redacted>"' in text
    assert 'name = "ops"' in text
    key = json.loads(files["node1/config/key-file.json"])
    assert key["exists"] is False and key["path"] == os.path.join(workdir, "k")
    for name, data in files.items():
        assert SECRET.encode() not in data, name


def test_bad_input_is_one_line_and_exit_2(start_node, workdir) -> None:
    node = start_node([])
    for args, words in (
        (["-o", "/nonexistent/dir/x.tar.gz"], "does not exist"),
        (["-o", workdir], "is a directory"),
        (["--server", "node9"], "unknown server 'node9'"),
        (["-o", "/dev/null"], "not a regular file"),  # never renamed over a device
    ):
        result = haven("logs", "collect", *args, cwd=workdir, state_dir=node.state_dir)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert os.listdir(workdir) == []


def test_the_node_builds_its_part_without_holding_up_its_other_requests(start_node) -> None:
    """What a collector on another server asks for over the link, asked here directly."""
    node = start_node(ECHO_WITH_SECRET)
    started = node.request("logs_bundle", {"timeout": 20})
    assert started["server"] == "node1"
    assert node.request("ping", timeout=1.0)["pid"] == node.proc.pid  # answered meanwhile
    deadline = time.monotonic() + 20
    while (answer := node.request("logs_chunk", {"id": started["id"], "offset": 0}))[
        "state"
    ] == "building":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert answer["state"] == "ready" and answer["eof"] and len(answer["data"]) == answer["size"]
    bundles = os.path.join(node.state_dir, "logbundles")
    assert os.listdir(bundles)
    with tempfile.TemporaryFile() as f:
        f.write(answer["data"])
        f.seek(0)
        with tarfile.open(fileobj=f, mode="r:gz") as tar:
            part = json.load(tar.extractfile("part.json"))
            data = b"".join(tar.extractfile(m).read() for m in tar if m.isfile())
    assert part["via"] == "node" and part["node"]["running"] is True
    assert items(part)["status.json"]["status"] == "ok"
    assert SECRET.encode() not in data
    assert node.request("logs_done", {"id": started["id"]})["deleted"] is True
    assert os.listdir(bundles) == []
    with pytest.raises(Exception, match="no log bundle"):
        node.request("logs_chunk", {"id": started["id"], "offset": 0})


# the lab: several servers, through the link -----------------------------------------------------
LAB_SECRET = "lab-s3cret-99"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    from lab_cluster import cluster_config

    reason = unavailable()
    if reason:
        pytest.skip(f"lab unavailable: {reason}")
    config_dir = tempfile.mkdtemp(prefix="hvcfg-", dir="/tmp")
    config = os.path.join(config_dir, "cluster.toml")
    with open(config, "w") as f:
        f.write(
            cluster_config(3)
            + '\n[[node.actor]]\nname = "echo"\nkind = "echo"\n'
            + f'args = {{ interval = "1s", password = "{LAB_SECRET}" }}\n'
        )
    lab = Lab(tempfile.mkdtemp(prefix="hvlab-", dir="/tmp"))
    try:
        lab.up(config)
        yield lab
    finally:
        try:
            for s in lab.status()["servers"]:
                if s["state"] == "paused":
                    lab.resume(s["name"])
        finally:
            lab.down()
            shutil.rmtree(config_dir, ignore_errors=True)


def collect(lab: Lab, out: str, timeout: float) -> subprocess.CompletedProcess[str]:
    argv = ["haven", "logs", "collect", "-o", out, "--timeout", f"{timeout:g}", "--json"]
    return lab.exec("node1", argv, timeout=timeout + 30)


def wait_link(lab: Lab, *servers: str) -> None:
    """Until node1's status shows these servers' nodes running (asked over the link)."""
    from lab_cluster import wait

    def running(st: dict) -> bool:
        nodes = {s["name"]: s.get("node", {}).get("state") for s in st["servers"]}
        return all(nodes.get(server) == "running" for server in servers)

    wait(lab, "node1", running, timeout=30)


@pytest.mark.slow
@pytest.mark.ci
def test_lab_every_server_part_then_a_dead_one_is_skipped(lab: Lab) -> None:
    wait_link(lab, "node1", "node2", "node3")
    # a log that makes node2's part several chunks long (each answer is at most 512 KiB)
    node2 = next(s for s in lab.status()["servers"] if s["name"] == "node2")
    os.makedirs(os.path.join(node2["state_dir"], "log"), exist_ok=True)
    big = os.urandom(1300 << 10)
    with open(os.path.join(node2["state_dir"], "log", "big.log"), "wb") as f:
        f.write(big)
    out = os.path.join(lab.dir, "all.tar.gz")
    result = collect(lab, out, 60)
    assert result.returncode == 0, result.stderr
    _, manifest, files = read_archive(out)
    assert manifest["collected"] == ["node1", "node2", "node3"], manifest["skipped"]
    assert manifest["cluster"] == "lab cluster"
    for server in manifest["servers"]:
        name = server["name"]
        assert server["via"] == ("local" if name == "node1" else "link")
        for member in ("part.json", "status.json", "logs/node.log", "alerts/alerts.log",
                       "config/cluster.toml", "config/key-file.json", "state/tree.txt",
                       "system/ip-addr.txt"):  # fmt: skip
            assert f"{name}/{member}" in files, (name, member)
        part = json.loads(files[f"{name}/part.json"])
        assert part["server"] == name and part["via"] == ("local" if name == "node1" else "node")
        assert json.loads(files[f"{name}/status.json"])["server"] == name
        # each part's system facts come from its own server's namespace
        assert f"198.18.0.{10 + int(name[-1])}".encode() in files[f"{name}/system/ip-addr.txt"]
    assert files["node2/logs/log/big.log"] == big
    for name, data in files.items():
        assert LAB_SECRET.encode() not in data, name

    lab.kill("node3")
    began = time.monotonic()
    result = collect(lab, os.path.join(lab.dir, "two.tar.gz"), 20)
    assert time.monotonic() - began < 20 + 5
    assert result.returncode == 1, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["collected"] == ["node1", "node2"]
    (skipped,) = manifest["skipped"]
    assert skipped["server"] == "node3" and skipped["reason"]
    assert "node3: skipped — " in result.stderr


@pytest.mark.slow
def test_lab_a_server_that_hangs_mid_way_is_skipped_within_the_deadline(lab: Lab) -> None:
    wait_link(lab, "node1", "node2")
    out = os.path.join(lab.dir, "hung.tar.gz")
    argv = ["haven", "logs", "collect", "-o", out, "--timeout", "8", "--json"]
    full, env = lab.command("node1", argv)
    began = time.monotonic()
    proc = subprocess.Popen(
        full, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    lab.pause("node2")  # the machine hangs while its part is asked for
    try:
        stdout, stderr = proc.communicate(timeout=8 + 20)
    finally:
        lab.resume("node2")
    elapsed = time.monotonic() - began
    assert elapsed < 8 + 5, elapsed
    manifest = json.loads(stdout)
    assert "node1" in manifest["collected"], stderr
    assert "node2" in {s["server"] for s in manifest["skipped"]}, stderr
    assert proc.returncode == 1
