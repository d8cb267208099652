"""The event catalogue is the one table of alerts: every alert raised in the code is in it, the
documentation shows exactly it, and rendering never fails an actor."""

from __future__ import annotations

import os
import re

from actors.alerts.catalogue import DESTINATIONS, EVENTS, LEVELS, alert_event, render, routed_to
from actors.groups.actor import ALERT_KINDS
from cli.alerts import events_markdown

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RAISE = re.compile(r"""(?:\.alert|_alert|alert_event)\(\s*f?["']([a-z_{}]+)["']""")


LITERAL = re.compile(r"""["']([a-z_]+)["']""")


def sources() -> str:
    text = ""
    for top in ("actors", "supervisor", "bus", "cli"):
        for root, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if name.endswith(".py") and name != "catalogue.py":
                    with open(os.path.join(root, name)) as f:
                        text += f.read()
    return text


def raised_in_code() -> set[str]:
    return set(RAISE.findall(sources()))


def test_every_alert_raised_in_the_code_is_in_the_catalogue():
    raised = raised_in_code()
    assert len(raised) > 30, raised  # the pattern finds the raise sites
    expanded = set()
    for name in raised:
        if "{kind}" in name:
            for kind in ALERT_KINDS.values():
                for step in ("started", "completed", "failed"):
                    expanded.add(name.replace("{kind}", kind).replace("{step}", step))
        else:
            expanded.add(name)
    assert sorted(n for n in expanded if n not in EVENTS) == []
    # raised by a name held in a variable (membership's view events, the cluster operations):
    # the name is still written somewhere in the code
    named = expanded | set(LITERAL.findall(sources()))
    unraised = {n for n, s in EVENTS.items() if not s.reserved} - named
    assert unraised == set(), "catalogue events that nothing raises (mark them reserved)"


def test_entries_are_well_formed():
    for spec in EVENTS.values():
        assert spec.level in LEVELS and spec.routes <= set(DESTINATIONS), spec
        assert spec.template and not spec.template.endswith("."), spec
    assert all(EVENTS[n].routes >= {"mail", "snmp"} for n in ("server_down", "double_activation"))
    assert "mail" not in EVENTS["group_start_started"].routes  # mail only for what is urgent


def test_rendering_fills_details_and_never_raises():
    topic, body = alert_event("server_down", server="node2")
    assert topic == "alert.error" and body["id"] == 2 and body["module"] == "membership"
    assert body["message"] == "server node2 is down: every heartbeat path to it is silent"
    assert render(EVENTS["startup_wait"], {"wait": "30", "missing": ["node2", "node3"]}) == (
        "waiting up to 30s for the other servers to start: node2, node3"
    )
    assert render(EVENTS["group_start_started"], {}) == "group ?: starting on ?"


def test_routing_defaults_and_overrides():
    down, start = EVENTS["server_down"], EVENTS["group_start_started"]
    assert routed_to(down, "mail", None) and not routed_to(start, "mail", None)
    assert routed_to(start, "syslog", None)
    assert routed_to(start, "mail", ("group_start_started",))
    assert routed_to(start, "mail", ("groups",)) and routed_to(start, "mail", ("groups.10",))
    assert not routed_to(down, "mail", ("groups",))  # a list replaces the defaults ...
    assert routed_to(down, "mail", ("groups", "default"))  # ... unless it says `default`
    assert routed_to(start, "mail", ("all",)) and routed_to(None, "exec", ("all",))


def test_the_documentation_shows_the_catalogue():
    with open(os.path.join(REPO, "docs", "alerts.md")) as f:
        doc = f.read()
    assert events_markdown() in doc, "regenerate: haven alerts events --markdown"
