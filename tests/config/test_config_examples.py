"""Every example configuration validates, and so do its commented sketches once types exist."""

from __future__ import annotations

import dataclasses
import os
import re

import pytest

from config import Cluster, check_config, check_text, load_config


def read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "config", "examples")
KINDS = {"echo"}

NAMES = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".toml"))


def test_the_examples_exist() -> None:
    assert NAMES == ["single.toml", "three-node.toml", "two-node-paths.toml", "two-node.toml"]


@pytest.mark.parametrize("name", NAMES)
def test_example_validates(name: str) -> None:
    path = os.path.join(EXAMPLES, name)
    cluster, issues = check_config(path, actor_kinds=KINDS)
    assert cluster is not None, "\n".join(map(str, issues))
    assert all(i.level == "warning" for i in issues)
    assert cluster.source == path
    assert cluster.text == read(path)


@pytest.mark.parametrize("name", NAMES)
def test_example_validates_against_the_real_actor_registry(name: str) -> None:
    pytest.importorskip("actors.registry")
    load_config(os.path.join(EXAMPLES, name))


@pytest.mark.parametrize("name", NAMES)
def test_example_sketches_validate_once_their_types_are_implemented(name: str, probe) -> None:
    text = read(os.path.join(EXAMPLES, name))
    uncommented = re.sub(r"(?m)^# (?=\[|[A-Za-z_]+ = )", "", text)
    assert uncommented != text
    cluster, issues = check_text(uncommented, name, types=probe.all_types, actor_kinds=KINDS)
    assert cluster is not None, "\n".join(map(str, issues))
    today, issues = check_text(uncommented, name, actor_kinds=KINDS)
    errors = [i for i in issues if i.level == "error"]
    # refused today only for a type still to come (or valid already)
    assert (today is None) == bool(errors)
    assert all("is not available in this version" in i.message for i in errors)


def test_single_example_model() -> None:
    cfg = load_config(os.path.join(EXAMPLES, "single.toml"), actor_kinds=KINDS)
    assert isinstance(cfg, Cluster)
    assert cfg.name == "single"
    assert [(s.name, s.priority, s.addresses) for s in cfg.servers] == [
        ("node1", 0, {"public": "198.18.0.11"})
    ]
    assert cfg.master.name == "node1"
    assert cfg.server("node1") is cfg.servers[0]
    assert cfg.server("nope") is None
    assert (cfg.timing.profile, cfg.timing.heartbeat_interval, cfg.timing.heartbeat_timeout) == (
        "default",
        0.5,
        2.0,
    )
    node = cfg.node
    assert (node.max_restarts, node.restart_window, node.beat_interval, node.beat_timeout) == (
        5,
        30.0,
        0.5,
        3.0,
    )
    assert (node.stop_timeout, node.on_critical_failure) == (10.0, "stop_service")
    echo, ticker = node.actors
    assert (echo.name, echo.kind, echo.critical, echo.restart) == (
        "echo",
        "echo",
        False,
        "permanent",
    )
    assert echo.stop_timeout == 10.0  # inherited from [node]
    assert echo.args == {"interval": "1s"}
    assert (ticker.restart, ticker.stop_timeout, ticker.args) == (
        "transient",
        2.0,
        {"interval": "250ms"},
    )
    assert cfg.groups == cfg.heartbeats == cfg.np == cfg.monitors == cfg.alerts == ()
    assert cfg.warnings == ()


def test_three_node_example_model() -> None:
    cfg = load_config(os.path.join(EXAMPLES, "three-node.toml"), actor_kinds=KINDS)
    assert [s.priority for s in cfg.servers] == [0, 1, 2]
    assert cfg.server("node3 (standby)").addresses["interconnect"] == "198.19.0.13"
    assert (cfg.timing.profile, cfg.timing.heartbeat_interval, cfg.timing.heartbeat_timeout) == (
        "fast",
        0.04,
        0.3,
    )
    web = cfg.group("web")
    assert web.servers == ("node2", "node3 (standby)")
    assert (web.startup, web.failover, web.failback, web.exclusive) == (
        "auto",
        "auto",
        "manual",
        "normal",
    )
    assert cfg.node.on_critical_failure == "reboot"
    assert cfg.warnings == ()
    assert [(h.name, h.type, h.params["network"]) for h in cfg.heartbeats] == [
        ("lankhb1", "lankhb", "interconnect"),
        ("lanhb2", "lanhb", "public"),
    ]
    assert cfg.key_path() == os.path.join(os.path.dirname(cfg.source), "cluster.key")


def test_the_configuration_is_immutable() -> None:
    cfg = load_config(os.path.join(EXAMPLES, "single.toml"), actor_kinds=KINDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.node.max_restarts = 1  # type: ignore[misc]
    assert isinstance(cfg.servers, tuple) and isinstance(cfg.node.actors, tuple)
