"""What a configuration change needs (config/changes.py with the supervisor's `what_runs`)."""

from __future__ import annotations

import os

import pytest

from config import parse_config
from config.changes import Need, field_changes, overall, server_needs
from supervisor.children import what_runs

BASE = """
[cluster]
name = "c"
key_file = "/etc/haven/cluster.key"

[[network]]
name = "public"
subnet = "198.18.0.0/24"

[[server]]
name = "node1"
addresses = { public = "198.18.0.11" }

[[server]]
name = "node2"
addresses = { public = "198.18.0.12" }

[[heartbeat]]
name = "lan1"
type = "lanhb"
network = "public"

[[group]]
name = "web"
failback = "manual"
"""
SOURCE = "/etc/haven/cluster.toml"


def analyse(old_text: str, new_text: str):
    old, new = parse_config(old_text, SOURCE), parse_config(new_text, SOURCE)
    needs = server_needs(old, new, what_runs)
    return [str(c) for c in field_changes(old, new)], {n.server: n for n in needs}


def test_the_same_cluster_written_differently_needs_nothing() -> None:
    rewritten = BASE.replace('failback = "manual"', 'failback = "manual"  # comment') + "\n\n"
    changes, needs = analyse(BASE, rewritten)
    assert changes == []
    assert {n.need for n in needs.values()} == {Need.NOTHING}


def test_a_timing_change_restarts_every_node() -> None:
    changes, needs = analyse(BASE, BASE + '\n[timing]\nheartbeat_timeout = "5s"\n')
    assert "timing → heartbeat_timeout: 2 → 5" in changes
    assert {s: n.need for s, n in needs.items()} == {"node1": Need.RESTART, "node2": Need.RESTART}
    assert any("actor hb.lan1 changed" in why for why in needs["node1"].why)


def test_a_group_setting_restarts_the_groups_actor() -> None:
    changes, needs = analyse(BASE, BASE.replace('failback = "manual"', 'failback = "auto"'))
    assert changes == ['group "web" → failback: "manual" → "auto"']
    assert overall(list(needs.values())) is Need.RESTART
    assert needs["node1"].why == ("actor groups changed",)


def test_a_heartbeat_on_some_servers_restarts_only_those() -> None:
    three = BASE.replace(
        "[[heartbeat]]",
        '[[server]]\nname = "node3"\naddresses = { public = "198.18.0.13" }\n\n[[heartbeat]]',
    )
    extra = '\n[[heartbeat]]\nname = "lan2"\ntype = "lanhb"\nnetwork = "public"\nport = 29012\n'
    only_two = extra + 'servers = ["node1", "node2"]\n'
    changes, needs = analyse(three, three + only_two)
    assert changes == ['heartbeat "lan2": added']
    # node3 runs no lan2 actor, and its membership and link do not depend on it: unchanged
    assert needs["node1"].need is Need.RESTART and needs["node2"].need is Need.RESTART
    assert needs["node3"].need is Need.NOTHING, needs["node3"].why


def test_servers_added_removed_and_reordered() -> None:
    added = BASE.replace(
        "[[heartbeat]]",
        '[[server]]\nname = "node3"\naddresses = { public = "198.18.0.13" }\n\n[[heartbeat]]',
    )
    changes, needs = analyse(BASE, added)
    assert 'server "node3": added' in changes
    assert "new server" in needs["node3"].why[0] and needs["node3"].need is Need.RESTART
    changes, needs = analyse(added, BASE)
    assert "removed" in needs["node3"].why[0]
    swapped = BASE.replace('name = "node1"', 'name = "tmp"').replace(
        'name = "node2"', 'name = "node1"'
    )
    swapped = swapped.replace('name = "tmp"', 'name = "node2"')
    changes, _ = analyse(BASE, swapped)
    assert 'server order (priority): ["node1", "node2"] → ["node2", "node1"]' in changes


@pytest.mark.parametrize("name", ["two-node.toml", "three-node.toml"])
def test_every_example_compared_with_itself_needs_nothing(name: str) -> None:
    path = os.path.join(os.path.dirname(__file__), "..", "..", "config", "examples", name)
    with open(path) as f:
        text = f.read()
    changes, needs = analyse(text, text)
    assert changes == [] and overall(list(needs.values())) is Need.NOTHING


def test_a_changed_secret_is_said_but_never_shown() -> None:
    from config.catalog import DEFAULT_TYPES

    types = DEFAULT_TYPES.with_implemented(alert=["mail"])
    mail = '\n[[alert]]\nname = "ops"\ntype = "mail"\nto = ["ops@example.com"]\nusername = "u"\n'
    mail += 'security = "tls"\n'
    old = parse_config(BASE + mail + 'password = "old-s3cret"\n', SOURCE, types=types)
    new = parse_config(BASE + mail + 'password = "new-s3cret"\n', SOURCE, types=types)
    changes = [str(c) for c in field_changes(old, new)]
    assert changes == ['alert "ops" → params → password: "(secret)" → "(another secret)"']
    before = parse_config(BASE + mail.replace('username = "u"\n', ""), SOURCE, types=types)
    added = [str(c) for c in field_changes(before, new)]
    assert 'alert "ops" → params → password: added' in added and "s3cret" not in str(added)


def test_a_secret_inside_a_free_form_table_is_never_shown() -> None:
    ocf = (
        '\n[[group.resource]]\nname = "db"\ntype = "ocf"\nagent = "heartbeat:pgsql"\n'
        'parameters = {{ db_password = "{pw}", port = {port} }}\n'
    )
    old = BASE + ocf.format(pw="old-s3cret", port=5432)
    new = BASE + ocf.format(pw="new-s3cret", port=5433)
    changes, _ = analyse(old, new)
    assert "s3cret" not in str(changes), changes
    assert (
        'resource "db" → params → parameters → db_password: "(secret)" → "(another secret)"'
        in str(changes)
    )
    assert any("port: 5432 → 5433" in c for c in changes)
    added, _ = analyse(BASE, new)
    assert "s3cret" not in str(added) and added, added
