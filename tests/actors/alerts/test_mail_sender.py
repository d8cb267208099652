"""alert.mail: real mail to a real SMTP server (aiosmtpd in this process, on 127.0.0.1)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from email.utils import getaddresses

import pytest
from harness import destinations, node_config, wait_destination

aiosmtpd = pytest.importorskip(
    "aiosmtpd", reason="aiosmtpd is not installed (pip install -e .[dev])"
)
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult  # noqa: E402

SECRET = "s3cret-Pa55word-xyzzy"
RECIPIENTS = ["Ops, Night <ops@example.com>", "Jürgen Müller <jm@example.com>", "dba@example.com"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """The aiosmtpd handler: keeps every mail with its envelope; refuses *@bad.example."""

    def __init__(self) -> None:
        self.mails: list[dict] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@bad.example"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.mails.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "message": email.message_from_bytes(
                        envelope.original_content, policy=email.policy.default
                    ),
                    "tls": session.ssl is not None  # STARTTLS, or implicit TLS:
                    or server.transport.get_extra_info("ssl_object") is not None,
                    "auth": session.authenticated,
                }
            )
        return "250 Message accepted"

    def wait(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:
            return list(self.mails)


def server_tls(tmp_path, name: str, *san: str) -> tuple[ssl.SSLContext, str]:
    """A self-signed certificate made now (it is its own CA): the server's TLS context and the
    certificate's path, for a client's `ca_file`."""
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"]
        + (["-addext", "subjectAltName=" + ",".join(san)] if san else []),
        check=True,
        capture_output=True,
    )
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(str(cert), str(key))
    return tls, str(cert)


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def smtp_server(inbox: Inbox, port: int, **kw) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kw)
    controller.start()
    return controller


@pytest.fixture
def servers():
    started: list[Controller] = []

    def start(inbox: Inbox, port: int | None = None, **kw) -> int:
        port = port or free_port()
        started.append(smtp_server(inbox, port, **kw))
        return port

    yield start
    for c in started:
        c.stop()


def mail_config(**params) -> str:
    params = {"group_window": "1s", "timeout": "3s", **params}
    lines = ['\n[[alert]]\nname = "mail"\ntype = "mail"\n']
    for key, value in params.items():
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}\n")
    return node_config([]) + "".join(lines)


def test_one_alert_is_one_well_formed_mail_to_every_recipient(start_node, servers):
    inbox = Inbox()
    port = servers(inbox)
    config = mail_config(
        to=RECIPIENTS, smtp_server=f"127.0.0.1:{port}", sender="Haven <haven@cluster.example>"
    )
    node = start_node(config=config)
    assert node.cli("alerts", "test", "--text", "hello").returncode == 0
    mails = inbox.wait(1)
    assert len(mails) == 1, mails
    mail = mails[0]
    msg = mail["message"]
    assert mail["mail_from"] == "haven@cluster.example"
    assert mail["rcpt_tos"] == ["ops@example.com", "jm@example.com", "dba@example.com"]
    # one To: header, parsing back to exactly the configured list (names with a comma, non-ASCII)
    assert len(msg.get_all("To")) == 1
    assert getaddresses([str(msg["To"])]) == [
        ("Ops, Night", "ops@example.com"),
        ("Jürgen Müller", "jm@example.com"),
        ("", "dba@example.com"),
    ]
    assert str(msg["From"]) == "Haven <haven@cluster.example>"
    assert str(msg["Subject"]) == "[Haven] info: test alert to mail: hello"
    assert email.utils.parsedate_to_datetime(str(msg["Date"])) is not None
    assert str(msg["Message-ID"]).startswith("<") and str(msg["Message-ID"]).endswith(">")
    assert str(msg["X-Haven-Server"]) == "node1" and str(msg["X-Haven-Level"]) == "info"
    body = msg.get_content()
    assert "node1  alert.1 alert_test  [info]" in body and "test alert to mail: hello" in body
    assert " UTC" in body and "destination: mail" in body
    # the raw header is ASCII: the non-ASCII name is RFC 2047-encoded, the comma name quoted
    raw = email.message_from_bytes(msg.as_bytes(), policy=email.policy.compat32)["To"]
    assert raw.isascii() and '"Ops, Night" <ops@example.com>' in raw and "=?utf-8?" in raw
    state = destinations(node)["mail"]
    assert state["sent"] == 1 and state["deliveries"] == 1 and state["failures"] == 0


@needs_openssl
def test_starttls_and_auth_with_a_private_ca_and_the_password_never_shown(
    start_node, servers, tmp_path
):
    tls, cert = server_tls(tmp_path, "127.0.0.1", "IP:127.0.0.1", "DNS:localhost")
    logins: list[tuple[str, str, bool]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, password = auth_data.login.decode(), auth_data.password.decode()
        logins.append((mechanism, user, password == SECRET))
        return AuthResult(success=user == "alerts" and password == SECRET, handled=False)

    inbox = Inbox()
    port = servers(
        inbox,
        tls_context=tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    common = {
        "to": ["ops@example.com"],
        "smtp_server": f"127.0.0.1:{port}",
        "security": "starttls",
        "ca_file": cert,
        "username": "alerts",
    }
    config = mail_config(password=SECRET, **common)
    config += '\n[[alert]]\nname = "wrong"\ntype = "mail"\ngroup_window = "1s"\n'
    config += "".join(f"{k} = {json.dumps(v)}\n" for k, v in common.items())
    config += 'password = "not-the-password"\n'
    node = start_node(config=config)
    assert node.cli("alerts", "test", "--destination", "mail").returncode == 0
    assert node.cli("alerts", "test", "--destination", "wrong").returncode == 0
    mails = inbox.wait(1)
    assert len(mails) == 1 and mails[0]["tls"] and mails[0]["auth"], mails
    assert mails[0]["rcpt_tos"] == ["ops@example.com"]
    assert any(ok for _, _, ok in logins) and {m for m, _, _ in logins} <= {"PLAIN", "LOGIN"}
    wrong = wait_destination(node, "wrong", lambda s: s["failures"] >= 1)
    assert wrong["failures"] >= 1 and wrong["sent"] == 0, (wrong, node.output())
    assert wrong["failures"] >= 1 and wrong["queued"] == 1
    assert "Authentication" in wrong["last_error"] and "535" in wrong["last_error"]
    # the password is nowhere an operator or a log reader looks
    shown = node.cli("alerts", "destinations", "--json").stdout
    shown += node.cli("alerts", "--json", "-n", "1000").stdout
    with open(node.log_path, errors="replace") as f:
        shown += f.read()
    assert "Authentication" in shown  # the wrong destination's failure was said
    assert SECRET not in shown and "not-the-password" not in shown
    for root, _, files in os.walk(node.state_dir):
        for name in files:
            path = os.path.join(root, name)
            if path != node.config_path and os.path.isfile(path):
                with open(path, "rb") as f:
                    assert SECRET.encode() not in f.read(), path


def test_mail_waits_for_a_server_that_is_down_and_arrives_when_it_is_up(start_node, servers):
    port = free_port()  # nothing listens there yet
    node = start_node(config=mail_config(to=["ops@example.com"], smtp_server=f"127.0.0.1:{port}"))
    assert node.cli("alerts", "test", "--text", "patience").returncode == 0
    state = wait_destination(node, "mail", lambda s: s["failures"] >= 1)
    assert state["failures"] >= 1 and state["queued"] == 1 and state["failing_since"]
    assert "127.0.0.1" in state["last_error"]
    inbox = Inbox()
    servers(inbox, port=port)
    mails = inbox.wait(1, timeout=30)
    assert len(mails) == 1, mails
    assert str(mails[0]["message"]["Subject"]) == "[Haven] info: test alert to mail: patience"
    state = wait_destination(node, "mail", lambda s: s["failing_since"] is None)
    assert state["sent"] == 1 and state["queued"] == 0 and state["failing_since"] is None
    events = [json.loads(x)["event"] for x in node.cli("alerts", "--json").stdout.splitlines()]
    assert "alert_delivery_failing" in events and "alert_delivery_restored" in events


def test_a_burst_of_200_alerts_is_a_few_mails_carrying_all_of_them(start_node, servers):
    inbox = Inbox()
    port = servers(inbox)
    node = start_node(config=mail_config(to=["ops@example.com"], smtp_server=f"127.0.0.1:{port}"))
    assert node.cli("alerts", "test", "--count", "200", "--text", "storm").returncode == 0
    state = wait_destination(node, "mail", lambda s: s["sent"] >= 200, timeout=30)
    assert state["sent"] == 200 and state["failures"] == 0
    mails = inbox.wait(state["deliveries"])
    assert 1 <= len(mails) <= 3, [str(m["message"]["Subject"]) for m in mails]
    bodies = "".join(m["message"].get_content() for m in mails)
    for i in range(1, 201):
        assert f"storm ({i} of 200)" in bodies
    assert sum(int(str(m["message"]["X-Haven-Alerts"])) for m in mails) == 200
    many = [m for m in mails if int(str(m["message"]["X-Haven-Alerts"])) > 1]
    assert str(many[0]["message"]["Subject"]).startswith("[Haven] test/node1: ")
    assert str(many[0]["message"]["Subject"]).endswith(" alerts, highest info")


def test_a_permanent_refusal_is_dropped_not_retried_and_a_partial_one_still_delivers(
    start_node, servers
):
    inbox = Inbox()
    port = servers(inbox)
    config = mail_config(to=["nobody@bad.example"], smtp_server=f"127.0.0.1:{port}")
    config += '\n[[alert]]\nname = "half"\ntype = "mail"\ngroup_window = "1s"\n'
    config += f'to = ["ops@example.com", "nobody@bad.example"]\nsmtp_server = "127.0.0.1:{port}"\n'
    node = start_node(config=config)
    assert node.cli("alerts", "test", "--destination", "mail").returncode == 0
    assert node.cli("alerts", "test", "--destination", "half").returncode == 0
    mails = inbox.wait(1)
    assert len(mails) == 1 and mails[0]["rcpt_tos"] == ["ops@example.com"], mails
    half = wait_destination(node, "half", lambda s: s["sent"] == 1)
    assert half["rejected_recipients"] == 1 and half["failures"] == 0
    bad = wait_destination(node, "mail", lambda s: s["rejected"] == 1)
    assert bad["rejected"] == 1 and bad["failures"] == 1 and bad["queued"] == 0
    assert "550" in bad["last_error"] and "nobody@bad.example" in bad["last_error"]
    time.sleep(2.5)  # a retry would come after 1 s, then 2 s
    assert destinations(node)["mail"]["failures"] == 1
    assert len(inbox.mails) == 1


@needs_openssl
def test_implicit_tls_falls_back_to_the_next_server_in_priority_order(
    start_node, servers, tmp_path
):
    tls, _ = server_tls(tmp_path, "mail.test")
    inbox = Inbox()
    port = servers(inbox, ssl_context=tls)
    config = mail_config(
        to=["ops@example.com"],
        smtp_server=f"127.0.0.1:{free_port()}",  # down
        fallback_servers=[f"127.0.0.1:{port}"],
        security="tls",
        verify=False,  # a name that is not 127.0.0.1 and an unknown CA: only with verify off
    )
    node = start_node(config=config)
    assert node.cli("alerts", "test").returncode == 0
    mails = inbox.wait(1)
    assert len(mails) == 1 and mails[0]["tls"], mails
    state = destinations(node)["mail"]
    assert state["last_server"] == f"127.0.0.1:{port}" and state["failures"] == 0


def test_a_hung_server_costs_only_its_timeout_then_the_next_one_is_tried(start_node, servers):
    hung = socket.socket()  # the kernel accepts connections; nothing ever answers on them
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    try:
        inbox = Inbox()
        port = servers(inbox)
        config = mail_config(
            to=["ops@example.com"],
            smtp_server=f"127.0.0.1:{hung.getsockname()[1]}",
            fallback_servers=[f"127.0.0.1:{port}"],
            timeout="1s",
        )
        node = start_node(config=config)
        assert node.cli("alerts", "test").returncode == 0
        mails = inbox.wait(1)
        assert len(mails) == 1, mails
        state = destinations(node)["mail"]
        assert state["last_server"] == f"127.0.0.1:{port}" and state["failures"] == 0
    finally:
        hung.close()


def test_a_password_without_tls_and_a_bad_address_are_refused_by_the_configuration():
    from config import check_text

    config = mail_config(
        to=["ops@example.com", "not an address"], smtp_server="127.0.0.1:25", username="u",
        password=SECRET,
    )  # fmt: skip
    cluster, issues = check_text(config)
    assert cluster is None
    places = {i.place: i.message for i in issues}
    assert set(places) == {'alert "mail" → to', 'alert "mail" → username'}, places
    assert "in clear" in places['alert "mail" → username']
    assert SECRET not in json.dumps(places)
