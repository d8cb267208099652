"""alert.snmp: our traps received and decoded by Debian's snmptrapd with mibs/HAVEN-MIB.txt —
SNMPv2c, SNMPv3 (noAuthNoPriv, authNoPriv, authPriv with SHA-1 and SHA-2), a wrong community or
key refused by it, a receiver that is down; the MIB checked by smilint and snmptranslate."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from harness import destinations, node_config, wait_destination
from snmp_mibs import MIB_DIR, mib_path

from actors.alerts import snmp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TRAPD = shutil.which("snmptrapd")
needs_trapd = pytest.mark.skipif(
    TRAPD is None, reason="no snmptrapd (Debian package snmptrapd; scripts/setup.sh installs it)"
)
ENGINE_NODE1 = "80007ed9046e6f646531"  # default_engine_id("node1"): 80007ed9 04 "node1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Trapd:
    """Debian's snmptrapd on 127.0.0.1, logging every trap it accepts, decoded with HAVEN-MIB,
    to a file."""

    def __init__(self, tmp_path, conf: str) -> None:
        self.port = free_udp_port()
        self.log = tmp_path / f"trapd-{self.port}.log"
        conf_file = tmp_path / f"trapd-{self.port}.conf"
        conf_file.write_text(conf)
        state = tmp_path / f"trapd-{self.port}.state"
        state.mkdir()
        self.proc = subprocess.Popen(
            [
                TRAPD, "-f", "-Lf", str(self.log), "-C", "-c", str(conf_file), "-n",
                f"--persistentDir={state}", "-M", mib_path(tmp_path),
                "-m", "HAVEN-MIB:SNMPv2-MIB", f"udp:127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_for("NET-SNMP version", 10)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, needle: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if needle in text:
                return text
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"snmptrapd never logged {needle!r}; its log:\n{text}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def trapd(tmp_path):
    started: list[Trapd] = []

    def start(conf: str) -> Trapd:
        t = Trapd(tmp_path, conf)
        started.append(t)
        return t

    yield start
    for t in started:
        t.stop()


def snmp_alert(name: str, port: int, **params: str) -> str:
    lines = [
        "[[alert]]",
        f'name = "{name}"',
        'type = "snmp"',
        'destination = "127.0.0.1"',
        f"port = {port}",
    ]
    lines += [f'{key} = "{value}"' for key, value in params.items()]
    return "\n" + "\n".join(lines) + "\n"


def secrets_left_out(node, *secrets: str) -> None:
    """No secret in the node's output, logs, alert log or the destination's state."""
    seen = [json.dumps(destinations(node))]
    for root, _, files in os.walk(node.state_dir):
        for f in files:
            path = os.path.join(root, f)
            if path != node.config_path and not os.path.islink(path):
                try:
                    with open(path, "rb") as fh:
                        seen.append(fh.read().decode(errors="replace"))
                except OSError:
                    pass
    for secret in secrets:
        assert not any(secret in text for text in seen), f"secret {secret!r} leaked"


# --- end to end, with snmptrapd -----------------------------------------------------------------


@needs_trapd
def test_a_v2c_trap_is_decoded_with_the_mib_names(start_node, trapd):
    receiver = trapd("authCommunity log c0mmunity-s3cret\n")
    config = node_config([]) + snmp_alert("traps", receiver.port, community="c0mmunity-s3cret")
    node = start_node(config=config)
    r = node.cli("alerts", "test", "--text", "hello snmp — ünïcode")
    assert r.returncode == 0, r.stderr
    log = receiver.wait_for("test alert to traps: hello snmp")
    line = next(x for x in log.splitlines() if "hello snmp" in x)
    year = time.strftime("%Y", time.gmtime())
    for expected in (
        "SNMPv2-MIB::sysUpTime.0 = Timeticks:",
        "SNMPv2-MIB::snmpTrapOID.0 = OID: HAVEN-MIB::havenAlertInfo",
        "HAVEN-MIB::havenAlertServer.0 = STRING: node1\t",
        "HAVEN-MIB::havenAlertModule.0 = STRING: alert\t",
        "HAVEN-MIB::havenAlertEventId.0 = Gauge32: 1\t",
        "HAVEN-MIB::havenAlertEventName.0 = STRING: alert_test\t",
        "HAVEN-MIB::havenAlertLevel.0 = INTEGER: info(1)",
        "HAVEN-MIB::havenAlertMessage.0 = STRING: test alert to traps: hello snmp — ünïcode\t",
        f"HAVEN-MIB::havenAlertTime.0 = STRING: {year}-",
    ):
        assert expected in line, f"{expected!r} not in {line!r}"
    assert ",+0:0" in line  # DateAndTime in UTC
    # the order v2 traps require: sysUpTime.0, snmpTrapOID.0, then the objects
    assert line.index("sysUpTime.0") < line.index("snmpTrapOID.0") < line.index("havenAlertServer")
    state = wait_destination(node, "traps", lambda s: s["sent"] >= 1)
    assert state["sent"] >= 1 and state["failures"] == 0 and state["version"] == "v2c"
    secrets_left_out(node, "c0mmunity-s3cret")


@needs_trapd
@pytest.mark.parametrize(
    ("auth", "priv", "level"),
    [
        (None, None, "noAuthNoPriv"),
        ("sha256", None, "authNoPriv"),
        ("sha", "aes", "authPriv"),
        ("sha512", "aes", "authPriv"),
    ],
)
def test_a_v3_trap_is_accepted_at_its_security_level(start_node, trapd, auth, priv, level):
    auth_key, priv_key = "auth-secret-1", "priv-secret-2"
    net_snmp = {None: "", "sha": "SHA", "sha256": "SHA-256", "sha512": "SHA-512"}
    user_line = f"createUser -e 0x{ENGINE_NODE1} ops"
    params = {"version": "v3", "user": "ops"}
    if auth:
        user_line += f" {net_snmp[auth]} {auth_key}"
        params |= {"auth_protocol": auth, "auth_key": auth_key}
    if priv:
        user_line += f" AES {priv_key}"
        params |= {"priv_protocol": priv, "priv_key": priv_key}
    # snmptrapd takes nothing below this level from the user: the level is really used
    minimum = {"noAuthNoPriv": "noauth", "authNoPriv": "auth", "authPriv": "priv"}[level]
    receiver = trapd(f"{user_line}\nauthUser log ops {minimum}\n")
    node = start_node(config=node_config([]) + snmp_alert("traps", receiver.port, **params))
    assert node.cli("alerts", "test", "--text", f"over {level}").returncode == 0
    log = receiver.wait_for(f"test alert to traps: over {level}")
    assert "OID: HAVEN-MIB::havenAlertInfo" in log and "havenAlertServer.0 = STRING: node1" in log
    state = wait_destination(node, "traps", lambda s: s["sent"] >= 1)
    assert state["engine_id"] == ENGINE_NODE1 and state["security_level"] == level
    assert state["failures"] == 0
    secrets_left_out(node, auth_key, priv_key)


@needs_trapd
def test_each_level_has_its_notification(trapd):
    from actors.alerts.record import Alert

    receiver = trapd("authCommunity log public\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, level in enumerate(("info", "warning", "error")):
            alert = Alert("node1", "groups", "x", 30 + i, level, f"a {level} alert", time.time())
            pdu = snmp.trap_pdu(i, snmp.alert_varbinds(alert, 0))
            s.sendto(snmp.v2c_message(b"public", pdu), ("127.0.0.1", receiver.port))
    lines = [x for x in receiver.wait_for("a error alert").splitlines() if "havenAlert" in x]
    for line, (name, value) in zip(
        lines, [("Info", "info(1)"), ("Warning", "warning(2)"), ("Error", "error(3)")], strict=True
    ):
        assert f"OID: HAVEN-MIB::havenAlert{name}\t" in line and f"INTEGER: {value}" in line, line


@needs_trapd
def test_a_wrong_key_or_community_is_refused_by_the_receiver(start_node, trapd):
    receiver = trapd(
        "authCommunity log public\n"
        f"createUser -e 0x{ENGINE_NODE1} ops SHA-256 right-auth-key AES right-priv-key\n"
        "authUser log ops priv\n"
    )
    v3 = {"version": "v3", "user": "ops", "auth_protocol": "sha256"}
    right, wrong = ("right-auth-key", "right-priv-key"), ("wrong-auth-key", "wrong-priv-key")
    config = node_config([])
    for name, (auth_key, priv_key) in {
        "good": right,
        "badauth": (wrong[0], right[1]),
        "badpriv": (right[0], wrong[1]),
    }.items():
        config += snmp_alert(name, receiver.port, **v3, auth_key=auth_key, priv_key=priv_key)
    config += snmp_alert("badcommunity", receiver.port, community="private")
    config += snmp_alert("goodcommunity", receiver.port, community="public")
    node = start_node(config=config)
    assert node.cli("alerts", "test", "--text", "key check").returncode == 0
    receiver.wait_for("test alert to good: key check")
    receiver.wait_for("test alert to goodcommunity: key check")
    receiver.wait_for("Authentication failed for ops")  # badauth, refused by its MAC
    time.sleep(1.0)  # all five were sent together; give the refused ones time to show up wrongly
    log = receiver.text()
    for refused in ("badauth", "badpriv", "badcommunity"):
        assert f"test alert to {refused}" not in log, log
    # (badpriv passes authentication, but what it decrypts to is no trap)
    states = destinations(node)
    assert all(states[n]["sent"] >= 1 for n in ("badauth", "badpriv", "badcommunity")), states


@needs_trapd
def test_a_receiver_that_is_down_does_not_disturb_the_node(start_node, trapd):
    dead_port = free_udp_port()  # nothing listens there
    receiver = trapd("authCommunity log public\n")
    config = (
        node_config([])
        + snmp_alert("nobody", dead_port, community="public")
        + snmp_alert("alive", receiver.port, community="public")
    )
    node = start_node(config=config)
    assert node.cli("alerts", "test", "--count", "20", "--text", "into the void").returncode == 0
    receiver.wait_for("test alert to alive: into the void (20 of 20)")
    state = wait_destination(node, "nobody", lambda s: s["sent"] >= 20)
    # UDP has no answer: the traps went out, nothing to retry, nothing failing
    assert state["sent"] >= 20 and state["queued"] == 0 and state["failing_since"] is None
    assert node.status()["node"]["state"] == "running"
    assert node.actor("alert.nobody")["restarts"] == 0


def test_a_send_the_system_refuses_is_a_failure_retried_and_told(start_node):
    # the limited broadcast address without SO_BROADCAST: the kernel refuses at once (EACCES)
    # and nothing leaves the machine
    config = node_config([]) + snmp_alert("traps", 162, community="public").replace(
        'destination = "127.0.0.1"', 'destination = "255.255.255.255"'
    )
    node = start_node(config=config)
    assert node.cli("alerts", "test").returncode == 0
    state = wait_destination(node, "traps", lambda s: s["failures"] >= 2)  # tried again
    assert state["failures"] >= 2 and state["failing_since"] and state["queued"] >= 1
    assert "ermission" in state["last_error"], state
    records = [json.loads(x) for x in node.cli("alerts", "--json").stdout.splitlines()]
    failing = [r for r in records if r["event"] == "alert_delivery_failing"]
    assert failing and failing[0]["details"]["destination"] == "traps"
    assert node.status()["node"]["state"] == "running"


# --- the parameters ------------------------------------------------------------------------------


def test_parameter_combinations_are_checked():
    check = snmp.config_problems
    assert check({"version": "v2c", "community": "public"}) == []
    assert check({"version": "v3", "user": "u"}) == []  # noAuthNoPriv
    assert (
        check({"version": "v3", "user": "u", "auth_key": "12345678", "priv_key": "abcdefgh"}) == []
    )
    keys = lambda params: [k for k, _ in check(params)]  # noqa: E731
    assert keys({"version": "v2c", "user": "u", "auth_key": "12345678"}) == ["user", "auth_key"]
    assert keys({"version": "v3", "community": "x", "user": "u"}) == ["community"]
    assert keys({"version": "v3"}) == ["user"]
    assert keys({"version": "v3", "user": "u", "auth_key": "1234567"}) == ["auth_key"]
    assert keys({"version": "v3", "user": "u", "priv_key": "abcdefgh"}) == ["priv_key"]
    assert keys({"version": "v3", "user": "u", "auth_protocol": "sha"}) == ["auth_protocol"]
    assert keys({"version": "v3", "user": "u", "auth_key": "12345678", "priv_protocol": "aes"}) == [
        "priv_protocol"
    ]
    assert keys(
        {"version": "v3", "user": "u", "auth_key": "12345678", "priv_key": "abcdefgh",
         "priv_protocol": "none"}
    ) == ["priv_key"]  # fmt: skip
    assert keys({"version": "v3", "user": "u", "engine_id": "0x8000"}) == ["engine_id"]
    assert keys({"version": "v3", "user": "u", "engine_id": "zz"}) == ["engine_id"]
    assert snmp.parse_engine_id("80:00:7e:d9:04:61") == bytes.fromhex("80007ed90461")


def test_the_configuration_takes_the_snmp_type_and_refuses_what_cannot_work():
    from config import check_text

    text = node_config([]) + snmp_alert(
        "traps", 162, version="v3", user="ops", auth_protocol="sha256", auth_key="x" * 8
    )
    cluster, issues = check_text(text)
    assert cluster is not None and issues == [], issues
    text = node_config([]) + snmp_alert(
        "traps", 162, version="v3", user="ops", auth_key="s3cret", priv_key="long-enough"
    )
    issues = "\n".join(str(i) for i in check_text(text)[1])
    assert "auth_key: too short: a key has at least 8 characters" in issues, (
        'config/typed.py ALERT_CHECKS needs the line  "snmp": snmp.config_problems,  '
        f"(and `snmp` beside mail, syslog in its import); the issues were: {issues!r}"
    )
    assert "s3cret" not in issues
    _, found = check_text(node_config([]) + snmp_alert("t", 162, user="u"))
    issues = "\n".join(str(i) for i in found)
    assert 'user: only for version = "v3"' in issues, issues


def test_key_localisation_matches_rfc_3414():
    # RFC 3414 A.3.2: password "maplesyrup", engine ID 000000000000000000000002, SHA
    ku = snmp.password_to_key(b"maplesyrup", "sha1")
    assert ku.hex() == "9fb5cc0381497b3793528939ff788d5d79145211"
    kul = snmp.localize_key(ku, bytes.fromhex("000000000000000000000002"), "sha1")
    assert kul.hex() == "6695febc9288e36282235fc7151f128497b38f3f"


def test_long_text_is_cut_at_a_character_boundary():
    assert snmp.cut_utf8("short", 1024) == b"short"
    cut = snmp.cut_utf8("é" * 600, 1024)  # 1200 bytes
    assert len(cut) <= 1024 and cut.decode().endswith("…") and cut.decode()[:-1] == "é" * 510


def test_the_default_engine_id_is_the_server_name_under_our_enterprise():
    assert snmp.default_engine_id("node1").hex() == ENGINE_NODE1
    long = snmp.default_engine_id("a-very-long-server-name-of-more-than-27-bytes")
    assert long[:5] == bytes.fromhex("80007ed905") and len(long) == 32


# --- the MIB -------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("smilint") is None, reason="no smilint (Debian package smitools)")
def test_the_mib_is_a_valid_smiv2_module(tmp_path):
    env = {**os.environ, "SMIPATH": mib_path(tmp_path)}
    r = subprocess.run(
        ["smilint", "-l", "9", "-s", os.path.join(MIB_DIR, "HAVEN-MIB.txt")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("snmptranslate") is None, reason="no snmptranslate (package snmp)")
def test_the_mib_names_the_oids_the_sender_sends(tmp_path):
    mibs = mib_path(tmp_path)

    def oid(name: str) -> tuple[int, ...]:
        r = subprocess.run(
            ["snmptranslate", "-M", mibs, "-m", "HAVEN-MIB", "-On", f"HAVEN-MIB::{name}"],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        return tuple(int(x) for x in r.stdout.strip().strip(".").split("."))

    assert oid("havenMIB") == (1, 3, 6, 1, 4, 1, 32473)
    for level, notification in snmp.NOTIFICATIONS.items():
        assert oid("havenAlert" + level.capitalize()) == notification
    columns = {
        "havenAlertServer": snmp.ALERT_SERVER,
        "havenAlertModule": snmp.ALERT_MODULE,
        "havenAlertEventId": snmp.ALERT_EVENT_ID,
        "havenAlertEventName": snmp.ALERT_EVENT_NAME,
        "havenAlertLevel": snmp.ALERT_LEVEL,
        "havenAlertMessage": snmp.ALERT_MESSAGE,
        "havenAlertTime": snmp.ALERT_TIME,
    }
    for name, column in columns.items():
        assert oid(name) == snmp.HAVEN_ALERT + (column,)
