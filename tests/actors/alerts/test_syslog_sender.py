"""alert.syslog: RFC 5424 messages to real receivers — UDP and TCP sockets on 127.0.0.1, unix
datagram and stream sockets, and rsyslogd when it is installed."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import textwrap
import threading
import time

import pytest
from harness import destinations, exec_group, node_config, wait_destination

from actors.alerts import syslog
from actors.alerts.record import Alert

BOM = "\ufeff".encode()
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# --- an RFC 5424 parser of the test's own -------------------------------------------------------


def parse_5424(data: bytes) -> dict:
    """One message into its fields; the structured data unescaped (RFC 5424 §6.3.3)."""
    m = re.match(rb"<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) ", data)
    assert m, data
    pri, version, stamp, host, app, procid, msgid = (x.decode() for x in m.groups())
    rest = data[m.end() :].decode("utf-8")
    sd: dict[str, dict[str, str]] = {}
    i = 0
    if rest.startswith("-"):
        i = 1
    while i < len(rest) and rest[i] == "[":
        end = rest.index(" ", i) if " " in rest[i:] else len(rest)
        close = rest.find("]", i)
        sd_id = rest[i + 1 : min(end, close) if close != -1 else end]
        params: dict[str, str] = {}
        i += 1 + len(sd_id)
        while rest[i] == " ":
            eq = rest.index("=", i)
            name = rest[i + 1 : eq]
            assert rest[eq + 1] == '"', rest[i:]
            j, value = eq + 2, []
            while rest[j] != '"':
                if rest[j] == "\\" and rest[j + 1] in '"\\]':
                    value.append(rest[j + 1])
                    j += 2
                else:
                    assert rest[j] != "]", f"unescaped ] in {rest!r}"
                    value.append(rest[j])
                    j += 1
            params[name] = "".join(value)
            i = j + 1
        assert rest[i] == "]", rest[i:]
        sd[sd_id] = params
        i += 1
    msg = rest[i + 1 :] if i < len(rest) else ""
    return {
        "pri": int(pri),
        "version": int(version),
        "timestamp": stamp,
        "hostname": host,
        "app": app,
        "procid": procid,
        "msgid": msgid,
        "sd": sd,
        "msg": msg,
        "raw": data,
    }


# --- receivers --------------------------------------------------------------------------------


class Collector:
    """Messages a receiver thread got, to wait on."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self.lock:
            self.messages.append(data)

    def wait(self, pred, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = [parse_5424(m) for m in self.messages]
            if pred(got) or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


def only_tests(got: list[dict]) -> list[dict]:
    return [g for g in got if g["msgid"] == "alert_test"]


class DatagramReceiver(Collector):
    def __init__(self, family: int = socket.AF_INET, address=("127.0.0.1", 0)) -> None:
        super().__init__()
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            try:
                self.add(self.sock.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


class StreamReceiver(Collector):
    """A TCP (octet counting, RFC 6587) or unix stream (NUL-ended) syslog server; `conns` counts
    the connections it accepted; `drop()` closes the open ones (a server restart)."""

    def __init__(self, sock: socket.socket, framing: str) -> None:
        super().__init__()
        self.listener = sock
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.framing = framing
        self.conns: list[socket.socket] = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                if self.framing == "octets":
                    m = re.match(rb"(\d+) ", buf)
                    if not m or len(buf) < m.end() + int(m.group(1)):
                        break
                    end = m.end() + int(m.group(1))
                    self.add(buf[m.end() : end])
                    buf = buf[end:]
                else:
                    if b"\x00" not in buf:
                        break
                    frame, buf = buf.split(b"\x00", 1)
                    self.add(frame)

    def drop(self) -> None:
        for c in self.conns:
            if c.fileno() != -1:
                c.shutdown(socket.SHUT_RDWR)
                c.close()

    def close(self) -> None:
        self.stopping = True
        self.drop()
        self.listener.close()


@pytest.fixture
def receivers():
    made: list = []
    yield made
    for r in made:
        r.close()


@pytest.fixture
def short_dir():
    """A directory with a short path (a unix socket path is at most 107 bytes)."""
    d = tempfile.mkdtemp(prefix="hvsl-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def syslog_config(target: str, extra: str = "", before: str = "") -> str:
    return (
        node_config([])
        + before
        + f'\n[[alert]]\nname = "sl"\ntype = "syslog"\ntarget = "{target}"\n'
        + extra
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- with a node ------------------------------------------------------------------------------


def test_udp_receiver_gets_rfc5424_messages_with_escaped_structured_data(start_node, receivers):
    rx = DatagramReceiver()
    receivers.append(rx)
    port = rx.sock.getsockname()[1]
    node = start_node(
        config=syslog_config(f"udp://127.0.0.1:{port}", 'facility = "local3"\ntag = "hvtest"\n')
    )
    text = 'a "quoted" word] and a back\\slash, ünïcode'
    before = time.time()
    r = node.cli("alerts", "test", "--text", text)
    assert r.returncode == 0, r.stderr
    got = rx.wait(lambda g: only_tests(g) and any(x["msgid"] == "node_started" for x in g))
    test = only_tests(got)[0]
    assert test["pri"] == 19 * 8 + 6  # local3, informational
    assert test["version"] == 1
    assert STAMP.match(test["timestamp"]), test["timestamp"]
    when = datetime.datetime.fromisoformat(test["timestamp"].replace("Z", "+00:00"))
    assert before - 5 < when.timestamp() < time.time() + 1
    assert test["hostname"] == "node1" and test["app"] == "hvtest"
    assert test["procid"] == "-" and test["msgid"] == "alert_test"
    sd = test["sd"]["haven@32473"]
    assert sd["module"] == "alert" and sd["event"] == "alert_test" and sd["id"] == "1"
    assert sd["level"] == "info" and sd["server"] == "node1" and sd["destination"] == "sl"
    assert sd["text"] == text  # `"`, `]` and `\` escaped on the wire, back as they were
    assert b'\\"quoted\\" word\\] and a back\\\\slash' in test["raw"]
    assert test["msg"] == "\ufefftest alert to sl: " + text
    assert BOM + f"test alert to sl: {text}".encode() in test["raw"]
    started = next(x for x in got if x["msgid"] == "node_started")
    assert started["sd"]["haven@32473"]["module"] == "node" and started["pri"] == 158
    state = destinations(node)["sl"]
    assert state["sent"] >= 2 and state["failures"] == 0 and state["type"] == "syslog"


def test_a_udp_receiver_down_at_first_is_retried_and_loses_nothing(start_node, receivers):
    """ECONNREFUSED on the connected UDP socket (the ICMP refusal of the datagram before) fails
    the delivery; the refused datagram goes again first once the receiver is up."""
    port = free_port()
    node = start_node(config=syslog_config(f"udp://127.0.0.1:{port}", 'events = ["alert"]\n'))
    assert node.cli("alerts", "test", "--count", "3", "--text", "udp").returncode == 0
    state = wait_destination(node, "sl", lambda s: s["failures"] >= 1)
    assert state["last_error"] == f"udp://127.0.0.1:{port}: Connection refused", state
    rx = DatagramReceiver(address=("127.0.0.1", port))
    receivers.append(rx)
    got = rx.wait(lambda g: len(only_tests(g)) >= 3)
    assert [g["msg"][-12:] for g in only_tests(got)] == [f"udp ({i} of 3)" for i in (1, 2, 3)]
    state = wait_destination(node, "sl", lambda s: s["queued"] == 0 and s["failing_since"] is None)
    assert state["sent"] == 3 and state["failing_since"] is None


def test_tcp_receiver_down_at_first_gets_the_alerts_in_order_once_up(start_node, receivers):
    port = free_port()
    node = start_node(config=syslog_config(f"tcp://127.0.0.1:{port}", 'events = ["alert"]\n'))
    assert node.cli("alerts", "test", "--count", "5", "--text", "queued").returncode == 0
    # the first may fail before the fifth is queued: wait for both
    state = wait_destination(node, "sl", lambda s: s["failures"] >= 1 and s["queued"] == 5)
    assert "refused" in state["last_error"], state
    assert state["last_error"].startswith(f"tcp://127.0.0.1:{port}: ")
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    rx = StreamReceiver(listener, "octets")
    receivers.append(rx)
    got = rx.wait(lambda g: len(only_tests(g)) >= 5)
    assert [g["msg"] for g in only_tests(got)] == [
        f"\ufefftest alert to sl: queued ({i} of 5)" for i in range(1, 6)
    ]
    assert len(rx.conns) == 1  # one persistent connection for all of them
    state = wait_destination(node, "sl", lambda s: s["queued"] == 0 and s["failing_since"] is None)
    assert state["sent"] == 5 and state["failing_since"] is None
    # the server closes the connection (a restart): the next alerts go over a new one
    rx.drop()
    time.sleep(0.3)
    assert node.cli("alerts", "test", "--count", "2", "--text", "after").returncode == 0
    got = rx.wait(lambda g: len(only_tests(g)) >= 7)
    assert [g["msg"] for g in only_tests(got)[5:]] == [
        "\ufefftest alert to sl: after (1 of 2)",
        "\ufefftest alert to sl: after (2 of 2)",
    ]
    assert len(rx.conns) == 2
    records = [json.loads(x) for x in node.cli("alerts", "--json").stdout.splitlines()]
    events = [r["event"] for r in records if r["details"].get("destination") == "sl"]
    assert "alert_delivery_failing" in events and "alert_delivery_restored" in events


def test_a_unix_datagram_socket_missing_at_first_is_retried(start_node, receivers, short_dir):
    path = os.path.join(short_dir, "log")
    extra = 'events = ["alert"]\nformat = "rfc5424"\n'
    node = start_node(config=syslog_config(f"unix:{path}", extra))
    assert node.cli("alerts", "test", "--text", "local one").returncode == 0
    state = wait_destination(node, "sl", lambda s: s["failures"] >= 1)
    assert state["last_error"] == f"unix:{path}: no socket at {path}", state
    rx = DatagramReceiver(socket.AF_UNIX, path)
    receivers.append(rx)
    got = rx.wait(lambda g: only_tests(g))
    assert [g["msg"] for g in only_tests(got)] == ["\ufefftest alert to sl: local one"]
    assert only_tests(got)[0]["pri"] == 3 * 8 + 6  # daemon (the default facility)
    assert only_tests(got)[0]["app"] == "haven"  # the default tag
    # the daemon restarts (a new socket at the same path): the next message goes to it, at once
    rx.close()
    receivers.remove(rx)
    os.unlink(path)
    rx = DatagramReceiver(socket.AF_UNIX, path)
    receivers.append(rx)
    assert node.cli("alerts", "test", "--text", "again").returncode == 0
    got = rx.wait(lambda g: only_tests(g))
    assert [g["msg"] for g in only_tests(got)] == ["\ufefftest alert to sl: again"]
    state = destinations(node)["sl"]
    assert state["failures"] == 1 and state["sent"] == 2


def test_a_unix_stream_socket_is_used_as_a_stream(start_node, receivers, short_dir):
    path = os.path.join(short_dir, "log")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    rx = StreamReceiver(listener, "nul")
    receivers.append(rx)
    extra = 'events = ["alert"]\nformat = "rfc5424"\n'
    node = start_node(config=syslog_config(f"unix:{path}", extra))
    assert node.cli("alerts", "test", "--count", "2", "--text", "streamed").returncode == 0
    got = rx.wait(lambda g: len(only_tests(g)) >= 2)
    assert [g["msg"] for g in only_tests(got)] == [
        "\ufefftest alert to sl: streamed (1 of 2)",
        "\ufefftest alert to sl: streamed (2 of 2)",
    ]
    assert len(rx.conns) == 1 and destinations(node)["sl"]["failures"] == 0


def test_a_resource_that_fails_to_start_reaches_syslog(start_node, receivers, tmp_path):
    rx = DatagramReceiver()
    receivers.append(rx)
    port = rx.sock.getsockname()[1]
    fail = tmp_path / "fail.sh"
    fail.write_text('#!/bin/sh\necho "cannot start: port in use" >&2\nexit 1\n')
    fail.chmod(0o755)
    ok = tmp_path / "ok.sh"
    ok.write_text("#!/bin/sh\nexit 0\n")
    ok.chmod(0o755)
    groups = exec_group(fail, ok, "\n[group.resource.activation]\nretry = 0\n")
    start_node(config=syslog_config(f"udp://127.0.0.1:{port}", before=groups))
    got = rx.wait(lambda g: any(x["msgid"] == "resource_start_failed" for x in g), timeout=20)
    failed = next((x for x in got if x["msgid"] == "resource_start_failed"), None)
    assert failed is not None, [x["msgid"] for x in got]
    assert failed["pri"] == 3 * 8 + 3  # daemon, error
    sd = failed["sd"]["haven@32473"]
    assert sd["module"] == "groups" and sd["id"] == "32" and sd["level"] == "error"
    assert sd["group"] == "web" and sd["resource"] == "app" and sd["server"] == "node1"
    assert "\n" not in sd["error"]
    assert failed["msg"].startswith("\ufeffresource app of group web failed to start on node1")
    assert failed["hostname"] == "node1"
    # the group's own failure follows, an error too
    got = rx.wait(lambda g: any(x["msgid"] == "group_start_failed" for x in g), timeout=10)
    group = next((x for x in got if x["msgid"] == "group_start_failed"), None)
    assert group is not None, [x["msgid"] for x in got]
    assert group["pri"] == 27 and group["sd"]["haven@32473"]["group"] == "web"
    assert group["sd"]["haven@32473"]["id"] == "12"


# --- rsyslogd, when installed -------------------------------------------------------------------

RSYSLOG_TEMPLATE = (
    "%syslogfacility-text%|%syslogseverity-text%|%timereported:::date-rfc3339%|%hostname%|"
    "%app-name%|%msgid%|%structured-data%|%msg%\\n"
)


@pytest.mark.skipif(shutil.which("rsyslogd") is None, reason="no rsyslogd (Debian's rsyslog)")
def test_rsyslogd_takes_our_messages_over_udp_and_local_sockets(start_node, short_dir):
    """rsyslogd parses what we send: RFC 5424 over UDP; to a local socket with its default
    (special) parser the traditional form `auto` sends there; RFC 5424 to a local socket whose
    parser reads it."""
    port = free_port()
    old_sock, new_sock = os.path.join(short_dir, "old"), os.path.join(short_dir, "new")
    out = {name: os.path.join(short_dir, f"{name}.log") for name in ("remote", "old", "new")}
    conf = os.path.join(short_dir, "rsyslog.conf")
    rulesets = "".join(
        f'ruleset(name="{name}") {{ action(type="omfile" file="{path}" template="fields") }}\n'
        for name, path in out.items()
    )
    with open(conf, "w") as f:
        f.write(
            f'global(workDirectory="{short_dir}")\n'
            'module(load="imudp")\n'
            'module(load="imuxsock" SysSock.Use="off")\n'
            f'template(name="fields" type="string" string="{RSYSLOG_TEMPLATE}")\n'
            + rulesets
            + f'input(type="imudp" address="127.0.0.1" port="{port}" ruleset="remote")\n'
            f'input(type="imuxsock" socket="{old_sock}" ruleset="old")\n'
            f'input(type="imuxsock" socket="{new_sock}" ruleset="new" '
            'UseSpecialParser="off" ParseHostname="on")\n'
        )
    daemon = subprocess.Popen(
        ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(short_dir, "pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not (os.path.exists(old_sock) and os.path.exists(new_sock)):
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
            assert time.monotonic() < deadline, "rsyslogd did not start"
            time.sleep(0.05)
        config = node_config([]) + textwrap.dedent(
            f"""
            [[alert]]
            name = "remote"
            type = "syslog"
            target = "udp://127.0.0.1:{port}"
            facility = "local5"
            events = ["alert"]

            [[alert]]
            name = "old"
            type = "syslog"
            target = "unix:{old_sock}"
            tag = "haven-old"
            events = ["alert"]

            [[alert]]
            name = "new"
            type = "syslog"
            target = "unix:{new_sock}"
            format = "rfc5424"
            events = ["alert"]
            """
        )
        node = start_node(config=config)
        text = 'say "hi"] now'
        assert node.cli("alerts", "test", "--text", text).returncode == 0
        for name in ("remote", "new"):
            lines = wait_lines(out[name], 1)
            assert lines, name
            fac, sev, stamp, host, app, msgid, sd, msg = lines[0].split("|", 7)
            want_fac = "local5" if name == "remote" else "daemon"
            assert (fac, sev, host, app) == (want_fac, "info", "node1", "haven")
            assert msgid == "alert_test"
            head = '[haven@32473 module="alert" event="alert_test" id="1" level="info"'
            assert sd.startswith(head), sd
            assert 'text="say \\"hi\\"\\] now"' in sd, sd
            assert msg.lstrip("\ufeff").strip() == f"test alert to {name}: {text}"
        stamp = wait_lines(out["remote"], 1)[0].split("|")[2]
        assert STAMP.match(stamp), stamp  # ours, as sent (rsyslog keeps a remote's time)
        lines = wait_lines(out["old"], 1)
        fac, sev, stamp, host, app, msgid, sd, msg = lines[0].split("|", 7)
        assert (fac, sev, app, msgid, sd) == ("daemon", "info", "haven-old", "-", "-")
        assert msg.strip() == f"alert_test: test alert to old: {text}"
    finally:
        daemon.terminate()
        daemon.wait(10)


def wait_lines(path: str, count: int, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                lines = [x for x in f.read().splitlines() if x]
        except FileNotFoundError:
            lines = []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


# --- the message and the target, without a node -------------------------------------------------


def alert(**kw) -> Alert:
    base = dict(
        server="node1",
        module="groups",
        event="resource_start_failed",
        id=32,
        level="error",
        message="resource app of group web failed to start on node1: boom",
        time=1700000000.25,
        details={"server": "node1", "group": "web", "resource": "app", "error": "boom"},
    )
    return Alert(**{**base, **kw})


def test_the_message_fields():
    m = parse_5424(syslog.rfc5424(alert(), syslog.FACILITIES["local7"], "haven"))
    assert m["pri"] == 23 * 8 + 3 and m["timestamp"] == "2023-11-14T22:13:20.250Z"
    assert (m["hostname"], m["app"], m["procid"], m["msgid"]) == (
        "node1",
        "haven",
        "-",
        "resource_start_failed",
    )
    assert m["sd"] == {
        "haven@32473": {
            "module": "groups",
            "event": "resource_start_failed",
            "id": "32",
            "level": "error",
            "server": "node1",
            "group": "web",
            "resource": "app",
            "error": "boom",
        }
    }
    warning = parse_5424(syslog.rfc5424(alert(level="warning"), 3, "haven"))
    assert warning["pri"] == 3 * 8 + 4


def test_header_fields_are_printable_ascii_and_bounded():
    a = alert(server="nöde 1\t" + "x" * 300, event="")
    m = parse_5424(syslog.rfc5424(a, 3, "my tag"))
    assert m["hostname"] == "n_de_1_" + "x" * 248 and len(m["hostname"]) == 255
    assert m["app"] == "my_tag" and m["msgid"] == "-"
    assert parse_5424(syslog.rfc5424(alert(server=""), 3, "x" * 60))["hostname"] == "-"
    assert parse_5424(syslog.rfc5424(alert(), 3, "x" * 60))["app"] == "x" * 48


def test_only_plain_details_go_into_the_structured_data():
    details = {
        "names": ["a", "b"],
        "nested": {"k": 1},
        "none": None,
        "bad name": "x",
        "ok": True,
        "n": 3,
        "long": "y" * 1000,
        "multi": "line one\nline two",
    }
    sd = parse_5424(syslog.rfc5424(alert(details=details), 3, "h"))["sd"]["haven@32473"]
    assert "names" not in sd and "nested" not in sd and "none" not in sd and "bad name" not in sd
    assert sd["ok"] == "true" and sd["n"] == "3" and sd["multi"] == "line one line two"
    assert len(sd["long"]) == syslog.MAX_VALUE and sd["long"].endswith("...")


def test_a_long_message_is_cut_whole_characters():
    m = syslog.rfc5424(alert(message="é" * 10000), 3, "h")
    assert len(m) <= syslog.MAX_MESSAGE
    assert parse_5424(m)["msg"].startswith("\ufeffé")  # decodes: no half character


def test_rfc3164_form():
    line = syslog.rfc3164(alert(message="two\nlines"), 3, "haven", hostname=True).decode()
    assert re.match(r"<27>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d node1 haven: ", line), line
    assert line.endswith("resource_start_failed: two lines")
    local = syslog.rfc3164(alert(), 3, "haven", hostname=False).decode()
    assert " node1 haven:" not in local and re.match(r"<27>\w{3} [ \d]\d [\d:]{8} haven: ", local)


@pytest.mark.parametrize(
    "text, want",
    [
        ("local", ("unix", "/dev/log", 0)),
        ("unix:/run/x.sock", ("unix", "/run/x.sock", 0)),
        ("unix:///run/x.sock", ("unix", "/run/x.sock", 0)),
        ("udp://syslog.example", ("udp", "syslog.example", 514)),
        ("tcp://192.0.2.5:6514", ("tcp", "192.0.2.5", 6514)),
        ("udp://[2001:db8::1]:10514", ("udp", "2001:db8::1", 10514)),
    ],
)
def test_targets(text, want):
    t = syslog.parse_target(text)
    assert (t.transport, t.address, t.port) == want
    assert syslog.target_problem(text) is None


@pytest.mark.parametrize(
    "text, problem",
    [
        ("syslog.example", "expected local, unix:/path"),
        ("http://x", "expected local"),
        ("unix:relative", "absolute path"),
        ("udp://x:99999", "port"),
        ("tcp://x:0", "port"),
        ("udp://:514", "no host"),
        ("tcp://x:514/path", "only tcp://host[:port]"),
    ],
)
def test_bad_targets_say_why(text, problem):
    assert problem in (syslog.target_problem(text) or ""), syslog.target_problem(text)


def test_the_type_is_configurable():
    from config import check_text

    config = syslog_config("udp://127.0.0.1:5514", 'format = "rfc3164"\ntimeout = "2s"\n')
    cluster, issues = check_text(config)
    assert [str(i) for i in issues if i.level == "error"] == []
    params = cluster.alerts[0].params
    assert params["target"] == "udp://127.0.0.1:5514" and params["format"] == "rfc3164"
    assert params["timeout"] == 2.0 and params["facility"] == "daemon" and params["tag"] == "haven"
    _, issues = check_text(syslog_config("local", 'format = "json"\n'))
    assert any('"json"' in str(i) for i in issues), issues


def test_auto_format_is_traditional_to_local_sockets_only():
    from actors.alerts.syslog import SyslogSender

    def encoded(target: str, fmt: str) -> bytes:
        sender = SyslogSender.__new__(SyslogSender)
        sender.facility, sender.tag, sender.format = 3, "haven", fmt
        sender.target = syslog.parse_target(target)
        return sender.encode(alert())

    assert encoded("local", "auto").startswith(b"<27>") and b" haven: " in encoded("local", "auto")
    assert b" node1 " not in encoded("unix:/x", "auto")  # the local daemon adds its host name
    assert encoded("udp://h", "auto").startswith(b"<27>1 ")
    assert encoded("tcp://h", "auto").startswith(b"<27>1 ")
    assert encoded("local", "rfc5424").startswith(b"<27>1 ")
    assert b" node1 haven: " in encoded("udp://h", "rfc3164")


def test_an_unusable_target_is_refused_by_the_configuration_with_its_place():
    from config import check_text

    cluster, issues = check_text(syslog_config("udp//127.0.0.1", ""))
    assert cluster is None
    assert [(i.place, i.level) for i in issues] == [('alert "sl" → target', "error")]
    assert issues[0].message.startswith("expected local, unix:/path")
