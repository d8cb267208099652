"""Names with spaces and long names work everywhere (SPEC §12-20, §12-41/42)."""

from __future__ import annotations

import pytest

from config import parse_config

LONG_SERVER = "server " + "x" * 293  # 300 characters, with a space
LONG_GROUP = "the web group " + "g" * 286
LONG_RESOURCE = "floating ip " + "r" * 288


def test_names_with_spaces_and_300_characters(probe) -> None:
    assert len(LONG_SERVER) == len(LONG_GROUP) == len(LONG_RESOURCE) == 300
    text = f"""
[[server]]
name = "{LONG_SERVER}"
addresses = {{ public = "198.18.0.13", interconnect = "198.19.0.13" }}

[[group]]
name = "{LONG_GROUP}"
servers = ["{LONG_SERVER}", "node1"]

[[group.resource]]
name = "{LONG_RESOURCE}"
type = "fip"
ip = "198.18.0.100"
per_server = {{ "{LONG_SERVER}" = {{ interface = "eth 1" }} }}

[[group.resource]]
name = "my app"
type = "exec"
depends_on = ["{LONG_RESOURCE}"]

[[monitor]]
name = "my app is alive"
type = "pidw"
target = "my app"
servers = ["{LONG_SERVER}"]
recovery = {{ target_type = "group", target = "{LONG_GROUP}" }}
"""
    cluster = probe.valid(text, typed=True)
    server = cluster.server(LONG_SERVER)
    assert server is not None and server.priority == 2
    group = cluster.group(LONG_GROUP)
    assert group.servers == (LONG_SERVER, "node1")
    assert group.start_order == (LONG_RESOURCE, "my app")
    assert cluster.resource(LONG_RESOURCE).params_for(LONG_SERVER)["interface"] == "eth 1"
    assert cluster.monitor("my app is alive").recovery.target == LONG_GROUP


def test_places_quote_names_with_spaces(probe) -> None:
    e = probe.one_error(f'[[group]]\nname = "{LONG_GROUP}"\nservers = ["no such server"]\n')
    assert e.place == f'group "{LONG_GROUP}" → servers'
    assert e.message.startswith('unknown server "no such server"')


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ('""', "a name must not be empty"),
        ('"   "', "a name must not be empty"),
        ('" web"', '" web" starts or ends with white space'),
        ('"a\\nb"', "a name must not contain control characters or line breaks"),
        ('"a\\u0007b"', "a name must not contain control characters or line breaks"),
        ("42", "a name must be a string, got the number 42"),
        ('"' + "n" * 1025 + '"', "a name may have at most 1024 characters, this one has 1025"),
    ],
)
def test_bad_names(probe, name: str, message: str) -> None:
    e = probe.one_error(f"[[group]]\nname = {name}\n")
    assert (e.path, e.message) == (("group", 0, "name"), message)
    assert e.place == "group #1 → name"


def test_cluster_name_may_have_spaces(probe) -> None:
    text = probe.base.replace('name = "test"', 'name = "Tokyo production cluster"', 1)
    assert parse_config(text, actor_kinds=probe.kinds).name == "Tokyo production cluster"
