"""Each kind of mistake is reported with its exact path and place, and all of them at once."""

from __future__ import annotations

import pytest

from config import ConfigError, check_text, load_config, parse_config


def paths(issues) -> list[tuple]:
    return [i.path for i in issues]


# --- unknown keys ---------------------------------------------------------------------------


def test_unknown_key_is_an_error_with_a_suggestion(probe) -> None:
    e = probe.one_error("[node]\nmax_restart = 5\n")
    assert e.path == ("node", "max_restart")
    assert e.place == "node → max_restart"
    assert e.message == 'unknown key; did you mean "max_restarts"?'


def test_unknown_top_level_section(probe) -> None:
    e = probe.one_error('[[servers]]\nname = "node3"\n')
    assert e.path == ("servers",)
    assert 'did you mean "server"?' in e.message


def test_unknown_key_without_a_close_match_lists_the_known_keys(probe) -> None:
    e = probe.one_error('[[group]]\nname = "web"\ncolour = "blue"\n')
    assert e.path == ("group", 0, "colour")
    assert '"failback"' in e.message and e.message.startswith("unknown key (known keys here:")


def test_unknown_type_parameter(probe) -> None:
    text = """
[[group]]
name = "web"
[[group.resource]]
name = "vip1"
type = "fip"
ip = "198.18.0.100"
ipp = "198.18.0.101"
"""
    e = probe.one_error(text, typed=True)
    assert e.path == ("group", 0, "resource", 0, "ipp")
    assert e.place == 'group "web" → resource "vip1" → ipp'
    assert e.message == 'unknown key; did you mean "ip"?'


# --- wrong types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "path", "message"),
    [
        (
            '[node]\nmax_restarts = "5"\n',
            ("node", "max_restarts"),
            'expected an integer, got the string "5" (remove the quotes)',
        ),
        (
            "[node]\nmax_restarts = 5.0\n",
            ("node", "max_restarts"),
            "expected an integer, got the number 5.0",
        ),
        (
            "[node]\nmax_restarts = true\n",
            ("node", "max_restarts"),
            "expected an integer, got the boolean true",
        ),
        (
            '[[node.actor]]\nname = "a"\nkind = "echo"\ncritical = "yes"\n',
            ("node", "actor", 0, "critical"),
            'expected true or false, got the string "yes"',
        ),
        (
            '[[group]]\nname = "web"\nservers = "node1"\n',
            ("group", 0, "servers"),
            'expected an array of strings, got the string "node1"',
        ),
        (
            '[group]\nname = "web"\n',
            ("group",),
            "expected an array of tables: write [[group]], not [group]",
        ),
        ("[cluster2]\n", ("cluster2",), 'unknown key; did you mean "cluster"?'),
        (
            '[[node.actor]]\nname = "a"\nkind = "echo"\nargs = "x"\n',
            ("node", "actor", 0, "args"),
            'expected a table, got the string "x"',
        ),
        (
            "[timing]\nprofile = 1\n",
            ("timing", "profile"),
            'expected one of "default", "fast", "classic", got the number 1',
        ),
        (
            "[node]\nbeat_interval = 2024-01-01\n",
            ("node", "beat_interval"),
            'expected a duration such as "3s", got a date/time',
        ),
    ],
)
def test_wrong_type(probe, fragment: str, path: tuple, message: str) -> None:
    e = probe.one_error(fragment)
    assert (e.path, e.message) == (path, message)


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("500", 'a duration needs a unit: write e.g. "500s" or "500ms", not the bare number 500'),
        ("1.5", 'a duration needs a unit: write e.g. "1.5s" or "1.5ms", not the bare number 1.5'),
        ('"010s"', '"010s" has a leading zero; write "10s"'),
        ('"00.5s"', '"00.5s" has a leading zero; write "0.5s"'),
        (
            '"3 s"',
            '"3 s" is not a duration; write a number and a unit: "500ms", "3s", "2m" or "1h"',
        ),
        ('"3sec"', '"3sec" has an unknown unit "sec"; use ms, s, m or h'),
        (
            '"-1s"',
            '"-1s" is not a duration; write a number and a unit: "500ms", "3s", "2m" or "1h"',
        ),
        ('""', '"" is not a duration; write a number and a unit: "500ms", "3s", "2m" or "1h"'),
    ],
)
def test_bad_duration(probe, value: str, message: str) -> None:
    e = probe.one_error(f"[node]\nstop_timeout = {value}\n")
    assert (e.path, e.message) == (("node", "stop_timeout"), message)


def test_leading_zero_integer_is_a_toml_error_with_a_hint(probe) -> None:
    e = probe.one_error("[node]\nmax_restarts = 010\n")
    assert e.path == ()
    assert "line 22" in e.message
    assert "numbers must not start with a zero" in e.message


# --- out of range (SPEC §12-31/33) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "path", "message"),
    [
        (
            "[node]\nmax_restarts = 5000\n",
            ("node", "max_restarts"),
            "must be between 0 and 1000, got 5000",
        ),
        (
            "[node]\nmax_restarts = -1\n",
            ("node", "max_restarts"),
            "must be between 0 and 1000, got -1",
        ),
        (
            '[node]\nstop_timeout = "2h"\n',
            ("node", "stop_timeout"),
            'must be between 100ms and 10m, got "2h"',
        ),
        (
            '[timing]\nheartbeat_interval = "5ms"\n',
            ("timing", "heartbeat_interval"),
            'must be between 10ms and 30s, got "5ms"',
        ),
        ("[ports]\nlink = 70000\n", ("ports", "link"), "must be between 1 and 65535, got 70000"),
    ],
)
def test_out_of_range(probe, fragment: str, path: tuple, message: str) -> None:
    e = probe.one_error(fragment)
    assert (e.path, e.message) == (path, message)


def test_out_of_range_thresholds(probe) -> None:
    text = """
[[group]]
name = "web"
[[group.resource]]
name = "vip1"
type = "fip"
ip = "198.18.0.100"
activation = { retry = 100, failover_threshold = -1 }
[[monitor]]
name = "gw"
type = "ipw"
addresses = ["198.18.0.1"]
delay_warning = 101
timeout = "0ms"
recovery = { target_type = "group", target = "web", reactivation_threshold = 1000 }
"""
    found = probe.errors(text, typed=True)
    assert paths(found) == [
        ("group", 0, "resource", 0, "activation", "retry"),
        ("group", 0, "resource", 0, "activation", "failover_threshold"),
        ("monitor", 0, "timeout"),
        ("monitor", 0, "delay_warning"),
        ("monitor", 0, "recovery", "reactivation_threshold"),
    ]
    assert found[0].message == "must be between 0 and 99, got 100"
    assert found[3].message == "must be between 0 and 100, got 101"


# --- duplicate names ------------------------------------------------------------------------


def test_duplicate_server_name(probe) -> None:
    e = probe.one_error('[[server]]\nname = "node1"\naddresses = { public = "198.18.0.13" }\n')
    assert e.path == ("server", 2, "name")
    assert e.message == 'duplicate server name "node1" (also server #1)'


def test_duplicate_group_name(probe) -> None:
    e = probe.one_error('[[group]]\nname = "web"\n[[group]]\nname = "web"\n')
    assert e.path == ("group", 1, "name")
    assert e.message == 'duplicate group name "web" (also group #1)'


def test_duplicate_network_and_actor_and_monitor_names(probe) -> None:
    text = """
[[network]]
name = "public"
subnet = "198.20.0.0/24"
[[node.actor]]
name = "a"
kind = "echo"
[[node.actor]]
name = "a"
kind = "echo"
[[monitor]]
name = "m"
type = "ipw"
addresses = ["198.18.0.1"]
[[monitor]]
name = "m"
type = "ipw"
addresses = ["198.18.0.1"]
"""
    assert paths(probe.errors(text, typed=True)) == [
        ("network", 2, "name"),
        ("node", "actor", 1, "name"),
        ("monitor", 1, "name"),
    ]


@pytest.mark.parametrize("second_group", [False, True])
def test_duplicate_resource_name_in_the_cluster(probe, second_group: bool) -> None:
    text = '[[group]]\nname = "web"\n'
    text += '[[group.resource]]\nname = "ip"\ntype = "fip"\nip = "198.18.0.100"\n'
    if second_group:
        text += '[[group]]\nname = "db"\n'
    text += '[[group.resource]]\nname = "ip"\ntype = "fip"\nip = "198.18.0.101"\n'
    e = probe.one_error(text, typed=True)
    assert e.path == (
        "group",
        1 if second_group else 0,
        "resource",
        0 if second_group else 1,
        "name",
    )
    assert e.message == 'duplicate resource name "ip" (also in group "web")'


# --- unknown references ---------------------------------------------------------------------


def test_unknown_server_in_failover_policy(probe) -> None:
    e = probe.one_error('[[group]]\nname = "web"\nservers = ["node2", "node9"]\n')
    assert e.path == ("group", 0, "servers", 1)
    assert e.place == 'group "web" → servers'
    assert e.message == 'unknown server "node9"; did you mean "node2"?'


def test_empty_and_repeated_failover_policy(probe) -> None:
    assert probe.one_error('[[group]]\nname = "w"\nservers = []\n').message == (
        "must name at least one server"
    )
    e = probe.one_error('[[group]]\nname = "w"\nservers = ["node1", "node1"]\n')
    assert (e.path, e.message) == (("group", 0, "servers", 1), '"node1" is listed twice')


def test_unknown_network_in_server_addresses(probe) -> None:
    e = probe.one_error(
        '[[server]]\nname = "node3"\naddresses = { public = "198.18.0.13", storage = "10.0.0.1" }\n'
    )
    assert e.path == ("server", 2, "addresses", "storage")
    assert e.place == 'server "node3" → addresses → storage'
    assert e.message == 'unknown network "storage" (known networks: "public", "interconnect")'


def test_unknown_network_in_heartbeat_and_mirror(probe) -> None:
    text = """
[[heartbeat]]
name = "hb2"
type = "lanhb"
network = "interconect"
[[group]]
name = "g"
[[group.resource]]
name = "data"
type = "md"
data_partition = "/dev/vdb2"
cluster_partition = "/dev/vdb1"
mirror_networks = ["interconnect", "mirror"]
mount_point = "/srv"
fs = "ext4"
"""
    found = probe.errors(text, typed=True)
    assert paths(found) == [
        ("heartbeat", 1, "network"),
        ("group", 0, "resource", 0, "mirror_networks", 1),
    ]
    assert found[0].message == 'unknown network "interconect"; did you mean "interconnect"?'


def test_server_addresses_must_fit_their_network(probe) -> None:
    text = '[[server]]\nname = "node3"\n'
    text += 'addresses = { public = "198.19.0.13", interconnect = "198.19.0.12" }\n'
    found = probe.errors(text)
    assert [(i.path, i.message) for i in found] == [
        (
            ("server", 2, "addresses", "public"),
            '198.19.0.13 is not in network "public" (198.18.0.0/24)',
        ),
        (
            ("server", 2, "addresses", "interconnect"),
            '198.19.0.12 is already the address of server "node2"',
        ),
    ]


def test_network_subnets(probe) -> None:
    text = (
        '[[network]]\nname = "a"\nsubnet = "198.18.5.1/24"\n'
        '[[network]]\nname = "b"\nsubnet = "198.18.0.0/16"\n'
        '[[network]]\nname = "c"\nsubnet = "nope"\n'
    )
    assert [(i.path, i.message) for i in probe.errors(text)] == [
        (
            ("network", 2, "subnet"),
            '"198.18.5.1/24" has host bits set; did you mean "198.18.5.0/24"?',
        ),
        (("network", 3, "subnet"), '198.18.0.0/16 overlaps network "public" (198.18.0.0/24)'),
        (("network", 4, "subnet"), '"nope" is not a subnet; write e.g. "198.18.0.0/24"'),
    ]


def test_heartbeat_network_needs_an_address_on_every_server(probe) -> None:
    text = """
[[network]]
name = "backup"
subnet = "198.18.9.0/24"
[[heartbeat]]
name = "hb2"
type = "lanhb"
network = "backup"
"""
    e = probe.one_error(text, typed=True)
    assert (e.path, e.message) == (
        ("heartbeat", 1, "network"),
        'no address on network "backup" for server "node1"',
    )


def test_overlapping_ports(probe) -> None:
    text = """
[ports]
web = 29001
[[group]]
name = "g"
[[group.resource]]
name = "data"
type = "md"
data_partition = "/dev/vdb2"
cluster_partition = "/dev/vdb1"
mirror_networks = ["interconnect"]
mount_point = "/srv"
fs = "ext4"
data_port = 29004
"""
    found = probe.errors(text, typed=True)
    assert [(i.path, i.message) for i in found] == [
        (("ports", "web"), "tcp port 29001 is already used by ports → link"),
        (
            ("group", 0, "resource", 0, "data_port"),
            "tcp port 29004 is already used by ports → mirror_agent",
        ),
    ]


def test_two_lan_heartbeats_on_different_networks_share_their_port(probe) -> None:
    probe.valid('[[heartbeat]]\nname = "hb2"\ntype = "lanhb"\nnetwork = "public"\n', typed=True)
    e = probe.one_error(
        '[[heartbeat]]\nname = "hb2"\ntype = "lanhb"\nnetwork = "interconnect"\n', typed=True
    )
    assert e.path == ("heartbeat", 1, "port")


# --- the whole file -------------------------------------------------------------------------


def test_missing_sections() -> None:
    _, issues = check_text("")
    assert [(i.path, i.message) for i in issues] == [
        (("cluster",), "the [cluster] section with the cluster's name is missing"),
        (("server",), "at least one [[server]] is required"),
    ]


def test_a_server_needs_an_address(probe) -> None:
    found = probe.errors('[[server]]\nname = "node3"\n[[server]]\nname = "node4"\naddresses = {}\n')
    assert [(i.path, i.message) for i in found] == [
        (("server", 2, "addresses"), "required key is missing"),
        (
            ("server", 3, "addresses"),
            'a server needs an address on at least one network, e.g. public = "198.18.0.11"',
        ),
    ]


def test_every_error_is_reported_at_once(probe) -> None:
    text = """
[timing]
profile = "quick"
[node]
max_restarts = "many"
beat_timeout = "010s"
[[group]]
name = "web"
servers = ["node9"]
failback = "automatic"
[[group.resource]]
name = "vip1"
type = "vip"
"""
    with pytest.raises(ConfigError) as info:
        parse_config(probe.base + text, "multi.toml", actor_kinds=probe.kinds)
    exc = info.value
    assert paths(exc.errors) == [
        ("timing", "profile"),
        ("node", "max_restarts"),
        ("node", "beat_timeout"),
        ("group", 0, "servers", 0),
        ("group", 0, "failback"),
        ("group", 0, "resource", 0, "type"),
    ]
    lines = str(exc).splitlines()
    assert lines[0] == "invalid configuration multi.toml (6 errors):"
    assert lines[1] == (
        '  error: timing → profile: "quick" is not one of "default", "fast", "classic"'
    )
    assert lines[-1] == (
        '  error: group "web" → resource "vip1" → type: '
        'resource type "vip" is not available in this version'
    )


def test_toml_syntax_error_has_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[cluster]\nname = "x"\nbroken = = 1\n', "bad.toml")
    (issue,) = info.value.issues
    assert issue.path == ()
    assert issue.message.startswith("TOML syntax error:")
    assert "line 3, column" in issue.message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'[cluster]\nname = "\xff"\n', "not valid UTF-8"),
        (b"\x00\x01\x02garbage\xfe", "not valid UTF-8"),
        (b"\x7fELF\x02\x01\x01", "TOML syntax error"),
        ("a = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_garbage_is_a_config_error(data, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert expected in str(info.value)


def test_a_utf8_bom_is_accepted(probe) -> None:
    cluster, issues = check_text(("\ufeff" + probe.base).encode(), actor_kinds=probe.kinds)
    assert cluster is not None, issues


def test_load_config_of_a_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "cannot read" in str(info.value)
