"""Type tables: a type is usable only when implemented; the generic machinery behind them."""

from __future__ import annotations

import pytest

from config import DEFAULT_TYPES, check_text
from config.typed import LAN_HEARTBEATS

COMMON_KEYS = {
    "heartbeat": {"name", "type", "servers", "per_server"},
    "np": {"name", "type", "servers", "per_server"},
    "resource": {"name", "type", "depends_on", "activation", "deactivation", "per_server"},
    "monitor": {
        "name", "type", "interval", "timeout", "retry", "start_wait", "monitoring", "target",
        "servers", "delay_warning", "recovery", "per_server",
    },
    "alert": {"name", "type", "min_level", "per_server"},
}  # fmt: skip

FIP = '[[group]]\nname = "web"\n[[group.resource]]\nname = "vip1"\ntype = "fip"\n'
IPW = 'type = "ipw"\naddresses = ["198.18.0.1"]\n'


def test_known_types_follow_the_spec() -> None:
    assert set(DEFAULT_TYPES.resource) >= {
        "fip",
        "vip",
        "exec",
        "disk",
        "md",
        "raw",
        "volume",
        "nas",
        "ocf",
    }
    assert set(DEFAULT_TYPES.heartbeat) >= {"lanhb", "lankhb", "comhb", "diskhb"}
    assert set(DEFAULT_TYPES.np) >= {"pingnp", "majority", "disknp", "witness"}
    assert set(DEFAULT_TYPES.monitor) >= {
        "pidw",
        "ipw",
        "diskw",
        "raww",
        "mdw",
        "mdnw",
        "userw",
        "miiw",
        "mtw",
        "vipw",
        "arpw",
        "httpw",
        "psqlw",
    }
    assert set(DEFAULT_TYPES.alert) >= {"syslog", "mail", "snmp", "exec"}


@pytest.mark.parametrize("kind", sorted(COMMON_KEYS))
def test_type_parameters_never_shadow_common_keys(kind: str) -> None:
    for spec in DEFAULT_TYPES.of(kind).values():
        clash = {p.name for p in spec.params} & COMMON_KEYS[kind]
        assert not clash, f"{kind} {spec.name}: {clash}"
        for target_type in spec.target_types:
            assert target_type in DEFAULT_TYPES.resource


def test_with_implemented_leaves_the_original_alone() -> None:
    table = DEFAULT_TYPES.with_implemented(resource=["vip"])
    assert table.resource["vip"].implemented
    assert not DEFAULT_TYPES.resource["vip"].implemented
    assert not table.resource["md"].implemented


@pytest.mark.parametrize(
    ("fragment", "path", "message"),
    [
        (
            FIP.replace('"fip"', '"vip"') + 'ip = "198.18.0.100"\n',
            ("group", 0, "resource", 0, "type"),
            'resource type "vip" is not available in this version',
        ),
        (
            '[[heartbeat]]\nname = "hb"\ntype = "lanhb"\nnetwork = "interconnect"\n',
            ("heartbeat", 0, "type"),
            'heartbeat type "lanhb" is not available in this version',
        ),
        (
            '[[np]]\nname = "p"\ntype = "pingnp"\ntargets = ["198.18.0.1"]\n',
            ("np", 0, "type"),
            'NP resolution type "pingnp" is not available in this version',
        ),
        (
            '[[monitor]]\nname = "m"\ntype = "userw"\n',
            ("monitor", 0, "type"),
            'monitor type "userw" is not available in this version',
        ),
        (
            '[[alert]]\nname = "a"\ntype = "mail"\nto = ["ops@example.com"]\n',
            ("alert", 0, "type"),
            'alert destination type "mail" is not available in this version',
        ),
    ],
)
def test_known_but_unimplemented_types_are_refused(probe, fragment, path, message) -> None:
    e = probe.one_error(fragment)
    assert (e.path, e.message) == (path, message)


def test_unimplemented_type_place_reads_like_the_issue(probe) -> None:
    e = probe.one_error(
        '[[group]]\nname = "web"\n[[group.resource]]\nname = "vip1"\ntype = "vip"\n'
    )
    assert str(e) == (
        'error: group "web" → resource "vip1" → type: '
        'resource type "vip" is not available in this version'
    )


def test_unknown_types_are_refused(probe) -> None:
    e = probe.one_error('[[group]]\nname = "web"\n[[group.resource]]\nname = "x"\ntype = "fipp"\n')
    assert e.message == 'unknown resource type "fipp"; did you mean "fip"?'
    e = probe.one_error('[[monitor]]\nname = "m"\ntype = "zzz"\n')
    assert e.message == 'unknown monitor type "zzz" (available in this version: none)'
    e = probe.one_error('[[monitor]]\nname = "m"\n')
    assert (e.path, e.message) == (("monitor", 0, "type"), "required key is missing")


def test_a_type_marked_implemented_is_accepted(probe) -> None:
    text = FIP + 'ip = "198.18.0.100"\n'
    types = DEFAULT_TYPES.with_implemented(resource=["fip"])
    cluster, issues = check_text(probe.base + text, types=types, actor_kinds=probe.kinds)
    assert cluster is not None, issues
    vip = cluster.resource("vip1")
    assert (vip.type, vip.group, vip.params["ip"], vip.params["force"]) == (
        "fip",
        "web",
        "198.18.0.100",
        False,
    )
    e = probe.one_error(text.replace('"vip1"\ntype = "fip"', '"x"\ntype = "fipp"'))
    assert e.message.startswith('unknown resource type "fipp"')


def test_lan_heartbeat_is_required_once_implemented(probe) -> None:
    w = probe.warnings("")  # the untyped probe: no LAN heartbeat type available, a warning
    assert [i.path for i in w] == [("heartbeat",)]
    assert all(DEFAULT_TYPES.heartbeat[t].implemented for t in LAN_HEARTBEATS)
    two_servers_no_heartbeat = probe.base.split("[[heartbeat]]")[0]
    _, issues = check_text(two_servers_no_heartbeat, actor_kinds=probe.kinds)
    assert [(i.path, i.level) for i in issues] == [(("heartbeat",), "error")]


# --- parameters and per-server overrides ----------------------------------------------------


def test_per_server_overrides(probe) -> None:
    cluster = probe.valid(
        FIP + 'ip = "198.18.0.100"\ninterface = "eth0"\n'
        '[group.resource.per_server.node2]\ninterface = "eth1"\n',
        typed=True,
    )
    vip = cluster.resource("vip1")
    assert vip.per_server == {"node2": {"interface": "eth1"}}
    assert vip.params_for("node1")["interface"] == "eth0"
    assert vip.params_for("node2")["interface"] == "eth1"
    assert vip.params_for("node2")["ip"] == "198.18.0.100"


def test_a_required_parameter_may_be_given_per_server_for_every_server(probe) -> None:
    cluster = probe.valid(
        FIP + 'per_server = { node1 = { ip = "198.18.0.100" }, node2 = { ip = "198.18.0.101" } }\n',
        typed=True,
    )
    assert cluster.resource("vip1").params_for("node2")["ip"] == "198.18.0.101"
    e = probe.one_error(FIP + 'per_server = { node1 = { ip = "198.18.0.100" } }\n', typed=True)
    assert e.path == ("group", 0, "resource", 0, "ip")
    assert e.message == (
        "required key is missing (set it here, or under per_server for every server; "
        'missing for "node2")'
    )


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        (
            '{ node9 = { ip = "198.18.0.1" } }',
            ("per_server", "node9"),
            'unknown server "node9"; did you mean "node2"?',
        ),
        (
            "{ node1 = { prefix_length = 24 } }",
            ("per_server", "node1", "prefix_length"),
            'cannot differ per server (only "ip", "interface" can)',
        ),
        (
            '{ node1 = { interfac = "eth1" } }',
            ("per_server", "node1", "interfac"),
            'unknown key; did you mean "interface"?',
        ),
        (
            '{ node1 = { ip = "not an ip" } }',
            ("per_server", "node1", "ip"),
            '"not an ip" is not an IP address',
        ),
        ('{ node1 = "eth1" }', ("per_server", "node1"), 'expected a table, got the string "eth1"'),
    ],
)
def test_bad_per_server_overrides(probe, overrides, path, message) -> None:
    e = probe.one_error(FIP + f'ip = "198.18.0.100"\nper_server = {overrides}\n', typed=True)
    assert (e.path, e.message) == (("group", 0, "resource", 0, *path), message)


def test_per_server_override_for_a_server_outside_the_policy(probe) -> None:
    text = FIP.replace('name = "web"\n', 'name = "web"\nservers = ["node1"]\n')
    e = probe.one_error(
        text + 'ip = "198.18.0.100"\nper_server = { node2 = { interface = "x" } }\n', typed=True
    )
    assert e.path == ("group", 0, "resource", 0, "per_server", "node2")
    assert e.message == 'server "node2" does not run this fip'


def test_parameter_values_are_converted(probe) -> None:
    cluster = probe.valid(
        '[[group]]\nname = "app"\n[[group.resource]]\nname = "app"\ntype = "exec"\n'
        'start_timeout = "90s"\nstop = "/opt/app/bin/stop \\"now\\".sh"\n',
        typed=True,
    )
    params = cluster.resource("app").params
    assert params["start_timeout"] == 90.0 and params["stop_timeout"] == 1800.0
    assert params["stop"] == '/opt/app/bin/stop "now".sh'
    assert params["log"] is None


# --- activation / deactivation failure policies ---------------------------------------------


def test_failure_policy_defaults_follow_the_original(probe) -> None:
    r = probe.valid(FIP + 'ip = "198.18.0.100"\n', typed=True).resource("vip1")
    assert (r.activation.retry, r.activation.failover_threshold, r.activation.final_action) == (
        0,
        1,
        "do_nothing",
    )
    assert (r.deactivation.retry, r.deactivation.final_action) == (0, "shutdown")


def test_final_actions_are_checked_per_context(probe) -> None:
    text = FIP + (
        'ip = "198.18.0.100"\n'
        'activation = { final_action = "stop_service" }\n'
        'deactivation = { final_action = "stop_group", failover_threshold = 1 }\n'
    )
    found = probe.errors(text, typed=True)
    assert [(i.path[-2:], i.message) for i in found] == [
        (
            ("deactivation", "final_action"),
            '"stop_group" cannot be a deactivation final action (allowed: "ignore", "do_nothing", '
            '"shutdown", "reboot", "panic", "keepalive_reset", "keepalive_panic", "bmc_reset", '
            '"bmc_power_off", "bmc_power_cycle", "bmc_nmi")',
        ),
        (
            ("deactivation", "failover_threshold"),
            'unknown key (known keys here: "retry", "final_action")',
        ),
    ]
    e = probe.one_error(
        FIP + 'ip = "198.18.0.100"\nactivation = { final_action = "rebot" }\n', typed=True
    )
    assert e.message == 'unknown final action "rebot"; did you mean "reboot"?'


@pytest.mark.parametrize("action", ["do_nothing", "ignore"])
def test_do_nothing_on_deactivation_failure_is_a_warning(probe, action: str) -> None:
    text = FIP + f'ip = "198.18.0.100"\ndeactivation = {{ final_action = "{action}" }}\n'
    cluster = probe.valid(text, typed=True)
    (w,) = cluster.warnings
    assert w.level == "warning"
    assert w.path == ("group", 0, "resource", 0, "deactivation", "final_action")
    assert "leaves the group stuck" in w.message
    assert cluster.resource("vip1").deactivation.final_action == action


def test_errors_and_warnings_together(probe) -> None:
    text = FIP + 'ip = "198.18.0.100"\ndeactivation = { final_action = "do_nothing" }\n'
    text += "[node]\nmax_restarts = -5\n"
    cluster, issues = probe.check(text, typed=True)
    assert cluster is None
    assert [(i.level, i.path[-1]) for i in issues] == [
        ("error", "max_restarts"),
        ("warning", "final_action"),
    ]


# --- monitors -------------------------------------------------------------------------------

APP = """
[[group]]
name = "app"
[[group.resource]]
name = "app ip"
type = "fip"
ip = "198.18.0.100"
[[group.resource]]
name = "app"
type = "exec"
depends_on = ["app ip"]
"""


def test_monitor_defaults_and_recovery(probe) -> None:
    cluster = probe.valid(
        APP + '[[monitor]]\nname = "alive"\ntype = "pidw"\ntarget = "app"\n', typed=True
    )
    m = cluster.monitor("alive")
    assert (m.interval, m.timeout, m.retry, m.start_wait, m.delay_warning) == (
        60.0,
        120.0,
        1,
        0.0,
        80,
    )
    assert (m.monitoring, m.target, m.servers) == ("always", "app", ("node1", "node2"))
    r = m.recovery
    assert (
        r.target_type,
        r.target,
        r.reactivation_threshold,
        r.failover_threshold,
        r.final_action,
    ) == ("resource", "app", 3, 1, "do_nothing")


def test_monitor_full_settings(probe) -> None:
    text = (
        APP
        + """
[[monitor]]
name = "web check"
type = "httpw"
interval = "5s"
timeout = "10s"
retry = 2
start_wait = "30s"
monitoring = "while_active"
target = "app"
servers = ["node2"]
delay_warning = 0
port = 8080
[monitor.recovery]
target_type = "group"
target = "app"
reactivation_threshold = 0
failover_threshold = 2
final_action = "stop_group"
"""
    )
    m = probe.valid(text, typed=True).monitor("web check")
    assert (m.interval, m.timeout, m.retry, m.start_wait, m.monitoring) == (
        5.0,
        10.0,
        2,
        30.0,
        "while_active",
    )
    assert (m.servers, m.delay_warning, m.params["port"], m.params["host"]) == (
        ("node2",),
        0,
        8080,
        "127.0.0.1",
    )
    assert m.recovery == type(m.recovery)("group", "app", 0, 2, "stop_group")


@pytest.mark.parametrize(
    ("fragment", "path", "message"),
    [
        (
            'type = "pidw"\n',
            ("target",),
            "required key is missing: a pidw monitor watches a resource of type exec",
        ),
        (
            'type = "pidw"\ntarget = "app ip"\n',
            ("target",),
            'a pidw monitor watches exec resources; "app ip" is a fip resource',
        ),
        (
            'type = "pidw"\ntarget = "ap"\n',
            ("target",),
            'unknown resource "ap"; did you mean "app"?',
        ),
        (
            'type = "ipw"\naddresses = ["198.18.0.1"]\nmonitoring = "while_active"\n',
            ("monitoring",),
            '"while_active" needs a target resource (key "target")',
        ),
        ('type = "ipw"\naddresses = []\n', ("addresses",), "must not be empty"),
        (
            'type = "ipw"\naddresses = ["198.18.0.300"]\n',
            ("addresses", 0),
            '"198.18.0.300" is not an IP address',
        ),
        (
            'type = "ipw"\naddresses = ["198.18.0.1"]\nservers = ["node3"]\n',
            ("servers", 0),
            'unknown server "node3"; did you mean "node2"?',
        ),
        (
            IPW + 'recovery = { target_type = "group", target = "db" }\n',
            ("recovery", "target"),
            'unknown group "db" (known groups: "app")',
        ),
        (
            'type = "ipw"\naddresses = ["198.18.0.1"]\nrecovery = { target_type = "group" }\n',
            ("recovery", "target"),
            "required key is missing: the group to recover",
        ),
        (
            IPW + 'recovery = { target_type = "local_server", target = "app" }\n',
            ("recovery", "target"),
            'a "local_server" recovery has no target (remove it)',
        ),
        (
            'type = "ipw"\naddresses = ["198.18.0.1"]\nrecovery = { final_action = "ignore" }\n',
            ("recovery", "final_action"),
            '"ignore" cannot be a monitor final action (allowed: "do_nothing", "stop_group", '
            '"stop_service", "shutdown", "reboot", "panic", "keepalive_reset", "keepalive_panic", '
            '"bmc_reset", "bmc_power_off", "bmc_power_cycle", "bmc_nmi")',
        ),
        (
            'type = "mtw"\nmonitors = ["other"]\n',
            ("monitors", 0),
            'unknown monitor "other" (known monitors: "m")',
        ),
        ('type = "mtw"\nmonitors = ["m"]\n', ("monitors",), 'monitor "m" cannot include itself'),
    ],
)
def test_monitor_errors(probe, fragment, path, message) -> None:
    e = probe.one_error(APP + '[[monitor]]\nname = "m"\n' + fragment, typed=True)
    assert (e.path, e.message) == (("monitor", 0, *path), message)


def test_monitor_without_target_recovers_the_local_server(probe) -> None:
    m = probe.valid(
        APP + '[[monitor]]\nname = "gw"\ntype = "ipw"\naddresses = ["198.18.0.1"]\n', typed=True
    ).monitor("gw")
    assert (m.target, m.recovery.target_type, m.recovery.target) == (None, "local_server", None)
