"""Timing profiles, heartbeat interval/timeout, and the node supervision section."""

from __future__ import annotations

import pytest

from config import check_text, defaults


def timing(probe, fragment: str):
    return probe.valid("[timing]\n" + fragment).timing


@pytest.mark.parametrize(
    ("profile", "interval", "timeout"),
    [("default", 0.5, 2.0), ("fast", 0.04, 0.2), ("classic", 3.0, 90.0)],
)
def test_profiles(probe, profile: str, interval: float, timeout: float) -> None:
    t = timing(probe, f'profile = "{profile}"\n')
    assert (t.profile, t.heartbeat_interval, t.heartbeat_timeout) == (profile, interval, timeout)


def test_default_profile_without_a_timing_section(probe) -> None:
    t = probe.valid("").timing
    assert (t.profile, t.heartbeat_interval, t.heartbeat_timeout, t.startup_wait) == (
        "default",
        0.5,
        2.0,
        300.0,
    )


def test_explicit_values_override_the_profile(probe) -> None:
    t = timing(probe, 'profile = "classic"\nheartbeat_timeout = "60s"\n')
    assert (t.heartbeat_interval, t.heartbeat_timeout) == (3.0, 60.0)
    t = timing(probe, 'profile = "fast"\nheartbeat_interval = "20ms"\n')
    assert (t.heartbeat_interval, t.heartbeat_timeout) == (0.02, 0.2)
    t = timing(probe, 'heartbeat_interval = "1s"\nheartbeat_timeout = "10s"\nstartup_wait = "2m"\n')
    assert (t.profile, t.heartbeat_interval, t.heartbeat_timeout, t.startup_wait) == (
        "default",
        1.0,
        10.0,
        120.0,
    )


@pytest.mark.parametrize(
    ("fragment", "path", "message"),
    [
        (
            'heartbeat_interval = "2s"\nheartbeat_timeout = "2s"\n',
            ("timing", "heartbeat_interval"),
            "heartbeat_interval (2s) must be shorter than heartbeat_timeout (2s)",
        ),
        (
            'heartbeat_interval = "3s"\n',
            ("timing", "heartbeat_interval"),
            "heartbeat_interval (3s) must be shorter than "
            'heartbeat_timeout (2s, from profile "default")',
        ),
        (
            'profile = "classic"\nheartbeat_timeout = "2s"\n',
            ("timing", "heartbeat_timeout"),
            'heartbeat_interval (3s, from profile "classic") must be shorter than '
            "heartbeat_timeout (2s)",
        ),
    ],
)
def test_interval_must_be_shorter_than_timeout(probe, fragment, path, message) -> None:
    e = probe.one_error("[timing]\n" + fragment)
    assert (e.path, e.message) == (path, message)


def test_a_tight_timeout_is_a_warning(probe) -> None:
    (w,) = probe.warnings('[timing]\nprofile = "fast"\nheartbeat_timeout = "100ms"\n')[:1]
    assert w.path == ("timing", "heartbeat_timeout")
    assert w.message.startswith("heartbeat_timeout (100ms) is less than 3 x heartbeat_interval")


def test_unknown_profile(probe) -> None:
    e = probe.one_error('[timing]\nprofile = "fastest"\n')
    assert e.message == '"fastest" is not one of "default", "fast", "classic"; did you mean "fast"?'


# --- [node] ---------------------------------------------------------------------------------


def test_node_defaults(probe) -> None:
    n = probe.valid("").node
    assert (n.max_restarts, n.restart_window, n.beat_interval, n.beat_timeout, n.stop_timeout) == (
        5,
        30.0,
        0.5,
        3.0,
        10.0,
    )
    assert (n.on_critical_failure, n.actors) == ("stop_service", ())


def test_node_actor_settings(probe) -> None:
    n = probe.valid("""
[node]
max_restarts = 0
restart_window = "1h"
beat_interval = "100ms"
beat_timeout = "1s"
stop_timeout = "3s"
on_critical_failure = "panic"
[[node.actor]]
name = "echo"
kind = "echo"
[[node.actor]]
name = "vital-1"
kind = "echo"
critical = true
restart = "temporary"
stop_timeout = "500ms"
args = { interval = "1s", nested = { list = [1, 2] } }
""").node
    assert (n.max_restarts, n.restart_window, n.on_critical_failure) == (0, 3600.0, "panic")
    echo, vital = n.actors
    assert (echo.critical, echo.restart, echo.stop_timeout, echo.args) == (
        False,
        "permanent",
        3.0,
        {},
    )
    assert (vital.name, vital.critical, vital.restart, vital.stop_timeout) == (
        "vital-1",
        True,
        "temporary",
        0.5,
    )
    assert vital.args == {"interval": "1s", "nested": {"list": [1, 2]}}


@pytest.mark.parametrize(
    ("fragment", "path", "message"),
    [
        (
            '[node]\nbeat_timeout = "500ms"\n',
            ("node", "beat_timeout"),
            "beat_interval (500ms, the default) must be shorter than beat_timeout (500ms)",
        ),
        (
            '[node]\nbeat_interval = "5s"\n',
            ("node", "beat_interval"),
            "beat_interval (5s) must be shorter than beat_timeout (3s, the default)",
        ),
        (
            '[node]\non_critical_failure = "stop_group"\n',
            ("node", "on_critical_failure"),
            '"stop_group" cannot be a node-level final action '
            '(allowed: "stop_service", "shutdown", "reboot", "panic")',
        ),
        (
            '[node]\non_critical_failure = "halt"\n',
            ("node", "on_critical_failure"),
            'unknown final action "halt" (allowed: "stop_service", "shutdown", "reboot", "panic")',
        ),
        (
            '[[node.actor]]\nname = "a"\nkind = "echo"\nrestart = "always"\n',
            ("node", "actor", 0, "restart"),
            '"always" is not one of "permanent", "transient", "temporary"',
        ),
        (
            '[[node.actor]]\nname = "a"\nkind = "ecko"\n',
            ("node", "actor", 0, "kind"),
            'unknown actor kind "ecko"; did you mean "echo"?',
        ),
        ('[[node.actor]]\nname = "a"\n', ("node", "actor", 0, "kind"), "required key is missing"),
        (
            '[[node.actor]]\nname = "my actor"\nkind = "echo"\n',
            ("node", "actor", 0, "name"),
            '"my actor" is not a valid actor name: use 1-64 letters, digits, "_" or "-"',
        ),
        (
            '[[node.actor]]\nkind = "echo"\n',
            ("node", "actor", 0, "name"),
            "required key is missing",
        ),
        (
            '[node]\nactor = { name = "a" }\n',
            ("node", "actor"),
            "expected an array of tables: write [[actor]], not [actor]",
        ),
    ],
)
def test_node_errors(probe, fragment, path, message) -> None:
    e = probe.one_error(fragment)
    assert (e.path, e.message) == (path, message)


def test_a_short_beat_timeout_is_a_warning(probe) -> None:
    (w,) = probe.warnings('[node]\nbeat_interval = "1s"\nbeat_timeout = "2s"\n')[:1]
    assert w.path == ("node", "beat_interval")


def test_actor_kinds_come_from_the_caller(probe) -> None:
    text = probe.base + '[[node.actor]]\nname = "a"\nkind = "special"\n'
    cluster, issues = check_text(text, actor_kinds={"special"})
    assert cluster is not None, issues
    _, issues = check_text(text, actor_kinds=set())
    assert [i.message for i in issues if i.level == "error"] == [
        'unknown actor kind "special" (known kinds: none)'
    ]


def test_actor_kinds_default_to_the_registry(probe) -> None:
    registry = pytest.importorskip("actors.registry")
    kind = next(iter(registry.ACTOR_KINDS))
    cluster, issues = check_text(probe.base + f'[[node.actor]]\nname = "a"\nkind = "{kind}"\n')
    assert cluster is not None, issues


def test_final_action_table_is_the_one_place() -> None:
    assert defaults.final_actions_for("node") == ("stop_service", "shutdown", "reboot", "panic")
    for name in defaults.DO_NOTHING_ACTIONS:
        assert "deactivation" in defaults.FINAL_ACTIONS[name].contexts


def test_actor_args_must_be_plain_data_a_date_is_refused() -> None:
    from config import check_text

    text = (
        '[cluster]\nname = "x"\n[[network]]\nname = "public"\nsubnet = "198.18.0.0/24"\n'
        '[[server]]\nname = "a"\naddresses = { public = "198.18.0.1" }\n'
        '[[node.actor]]\nname = "e"\nkind = "echo"\n'
        'args = { ok = [1, "x"], deep = { d = 1979-05-27 } }\n'
    )
    cluster, issues = check_text(text, "t.toml")
    assert cluster is None
    assert [(i.path, "args.deep.d is a date" in i.message) for i in issues] == [
        (("node", "actor", 0, "args"), True)
    ]
