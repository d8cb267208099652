"""`haven config diff|push|pull` against real running nodes (loopback addresses, a real link)."""

from __future__ import annotations

import json
import random

import pytest
from harness import node_config

from config.clusterkey import generate_cluster_key


@pytest.fixture
def nodes(start_node, tmp_path):
    key = str(tmp_path / "cluster.key")
    generate_cluster_key(key)
    port = random.randint(30000, 39999)
    text = node_config(
        [],
        servers=("node1", "node2"),
        subnet="127.0.0",
        key_file=key,
        link_port=port,
        heartbeats=({"name": "lan", "type": "lanhb", "network": "public", "port": port + 1},),
    )
    started = {s: start_node(config=text, server=s) for s in ("node1", "node2")}
    for name, node in started.items():
        other = "node2" if name == "node1" else "node1"
        node.wait_status(lambda s, o=other: _online(s, o))
    return text, started


def _online(status: dict, server: str) -> bool:
    return any(s["name"] == server and s["state"] == "online" for s in status["servers"])


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def changed(text: str) -> str:
    return text.replace('beat_timeout = "1s"', 'beat_timeout = "2s"')


def test_diff_says_what_a_change_needs(nodes, tmp_path) -> None:
    text, n = nodes
    new = tmp_path / "new.toml"
    new.write_text(changed(text))
    out = n["node1"].cli("config", "diff", str(new))
    assert out.returncode == 0, out.stderr
    assert "node → beat_timeout: 1 → 2" in out.stdout
    assert "node1: a restart of the node service (supervisor settings changed)" in out.stdout
    report = json.loads(n["node1"].cli("config", "diff", str(new), "--json").stdout)
    assert report["needs"] == "restart" and set(report["servers"]) == {"node1", "node2"}
    same = tmp_path / "same.toml"
    same.write_text(text + "\n# only a comment\n")
    out = n["node1"].cli("config", "diff", str(same))
    assert "applying it needs nothing" in out.stdout


def test_push_stores_the_file_on_every_server(nodes, tmp_path) -> None:
    text, n = nodes
    new = tmp_path / "new.toml"
    new.write_text(changed(text))
    out = n["node2"].cli("config", "push", str(new), "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "node1: stored" in out.stdout and "node2: stored" in out.stdout
    for node in n.values():
        assert read(node.config_path) == changed(text)
        assert read(node.config_path + ".prev") == text
    # the nodes still run what they started with: pull shows the running configuration
    pulled = n["node1"].cli("config", "pull", "--server", "node2")
    assert pulled.returncode == 0 and pulled.stdout == text
    again = n["node2"].cli("config", "push", str(new), "--yes", "--json")
    result = json.loads(again.stdout)
    assert result["ok"] and not result["pushed"]["node1"]["changed"]


def test_push_refuses_an_invalid_file_and_stores_nothing(nodes, tmp_path) -> None:
    text, n = nodes
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('beat_timeout = "1s"', 'beat_timeout = "soon"'))
    out = n["node1"].cli("config", "push", str(bad), "--yes")
    assert out.returncode == 2 and "beat_timeout" in out.stderr and "Traceback" not in out.stderr
    assert all(read(node.config_path) == text for node in n.values())


def test_push_to_a_stopped_server_fails_clearly(nodes, tmp_path) -> None:
    text, n = nodes
    n["node2"].terminate()
    new = tmp_path / "new.toml"
    new.write_text(changed(text))
    out = n["node1"].cli("config", "push", str(new), "--yes")
    assert out.returncode == 1
    assert "node2: NOT stored: server node2 is not reachable over the link" in out.stderr
    assert "node1: stored" in out.stdout
    assert read(n["node1"].config_path) == changed(text)
    assert read(n["node2"].config_path) == text


def test_push_without_a_terminal_asks_for_yes(nodes, tmp_path) -> None:
    text, n = nodes
    new = tmp_path / "new.toml"
    new.write_text(changed(text))
    out = n["node1"].cli("config", "push", str(new))
    assert out.returncode == 2 and "--yes" in out.stderr
    assert read(n["node1"].config_path) == text
