"""`alert.mail`: alerts as mail over SMTP, a burst gathered into one mail.

One mail carries every alert that arrived within `group_window` (up to `MAX_ALERTS`): a failover
storm is one mail, not a hundred. Its subject says what matters at a glance — for one alert
`[<subject>] <level>: <message>`, for several `[<subject>] <server>: <N> alerts, highest <level>` —
and its body has one block per alert (time UTC, server, module.ID event, level, message, details).
Headers are built with the stdlib `email` package so they are well formed whatever the names
hold (SPEC §12-37): every recipient in one `To:` header, display names quoted or RFC 2047-encoded
as needed, plus `Date`, `Message-ID`, `X-Haven-Server` and `X-Haven-Level`.

The SMTP client is asyncio's own (aiosmtplib): nothing blocks the actor's loop, and a server that
hangs costs at most `timeout` for its whole session (the session is cancelled at it). Servers are
tried in priority order (`smtp_server`, then `fallback_servers`). `security` is "none", "starttls"
(required: a server that does not offer it fails) or "tls" (implicit TLS, port 465); certificates
are verified against the system's CAs or `ca_file` unless `verify = false`. AUTH (CRAM-MD5, PLAIN
or LOGIN, as the server offers) only over TLS unless `allow_plain_auth = true`; the password is
never logged, put into an error, an alert or `state`.

Failures: a server that cannot be reached, times out, or answers 4xx (or refuses the login) →
`DeliveryError`: the base retries with back-off and keeps the alerts. A permanent 5xx refusal of
the message itself (every recipient, the sender or the data) by every server tried →
`PermanentDeliveryError`: the same mail can never go through, so the batch is logged, counted
(`rejected`) and dropped rather than retried forever — the alert log keeps the alerts. Some
recipients refused and others accepted: the mail went out; the refused ones are logged and counted
(`rejected_recipients`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.policy
import json
import os
import re
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib

from actors.alerts.catalogue import LEVELS
from actors.alerts.record import Alert
from actors.alerts.sender import AlertSender, DeliveryError, PermanentDeliveryError

MAX_ALERTS = 500  # alerts in one mail; a bigger burst is several mails
SUBJECT_MAX = 150  # characters of a subject before it is cut with "…"
BLOCK_MAX = 4096  # characters of one alert's block in the body
BODY_MAX = 1 << 20  # characters of full blocks in one body; past it, one line per alert
LINE_MAX = 300  # characters of such a line
QUIT_TIMEOUT = 2.0  # a server that took the mail but does not answer QUIT is not waited for
SECURITY = ("none", "starttls", "tls")

_WS = re.compile(r"\s+")
_NAMED = re.compile(r"^(?P<name>.*?)\s*<(?P<addr>[^<>]*)>\s*$", re.S)


class MailConfigError(ValueError):
    """A mail destination's parameters cannot work (the message says which and why)."""


# --- parameters --------------------------------------------------------------------------------


def mailbox(text: str) -> Address:
    """One mailbox as written in the configuration: `ops@example.com`, `Ops <ops@example.com>`,
    `"Ops, Night" <ops@example.com>` or `Ops, Night <ops@example.com>` (each entry is exactly one
    mailbox, so a comma in the name needs no quotes). Raises MailConfigError."""
    text = text.strip()
    m = _NAMED.match(text)
    name, addr = (m["name"].strip(), m["addr"].strip()) if m else ("", text)
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    name = _WS.sub(" ", name).strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or _WS.search(addr) or any(c in addr for c in '<>,;"'):
        raise MailConfigError(f'"{text}" is not a mail address (expected user@domain)')
    if any(ord(c) < 32 or ord(c) == 127 for c in name + addr):
        raise MailConfigError(f'"{text}" contains a control character')
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise MailConfigError(f'"{text}" is not a mail address: {exc}') from None


def server_address(text: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address → (host, port)."""
    text = text.strip()
    host, port = text, ""
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise MailConfigError(f'"{text}" is not host, host:port or [IPv6]:port')
        port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not host or _WS.search(host):
        raise MailConfigError(f'"{text}" is not host, host:port or [IPv6]:port')
    if port == "":
        return host, default_port
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise MailConfigError(f'"{text}": the port must be a number from 1 to 65535')
    return host, int(port)


def effective_security(params: dict[str, Any]) -> str:
    security = params.get("security")
    if security is None:
        return "starttls" if params.get("starttls") else "none"
    return security


def config_problems(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each way these validated parameters cannot work: for the configuration
    check (config/typed.py) and, should one slip through, the sender's failing state."""
    problems: list[tuple[str, str]] = []
    for key in ("to", "sender"):
        values = params.get(key)
        for value in [values] if isinstance(values, str) else values or ():
            try:
                mailbox(value)
            except MailConfigError as exc:
                problems.append((key, str(exc)))
    servers = [("smtp_server", params.get("smtp_server") or "localhost")]
    servers += [("fallback_servers", x) for x in params.get("fallback_servers") or ()]
    for key, value in servers:
        try:
            server_address(value, 25)
        except MailConfigError as exc:
            problems.append((key, str(exc)))
    security = params.get("security")
    if security == "none" and params.get("starttls"):
        problems.append(("starttls", 'contradicts security = "none" (starttls is its alias)'))
    has_user, has_password = bool(params.get("username")), bool(params.get("password"))
    if has_user != has_password:
        problems.append(
            ("password" if has_user else "username", "username and password go together")
        )
    if has_user and effective_security(params) == "none" and not params.get("allow_plain_auth"):
        problems.append(
            (
                "username",
                'the password would cross the network in clear: set security = "starttls" or '
                '"tls" (or allow_plain_auth = true for a trusted network)',
            )
        )
    return problems


# --- the mail ----------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _utc(t: float) -> str:
    try:
        when = datetime.datetime.fromtimestamp(t, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return "????-??-?? ??:??:??.??? UTC"
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def highest_level(alerts: list[Alert]) -> str:
    return max((a.level for a in alerts), key=lambda lv: LEVELS.index(lv) if lv in LEVELS else 0)


def subject_of(alerts: list[Alert], subject: str, where: str) -> str:
    if len(alerts) == 1:
        a = alerts[0]
        text = f"[{subject}] {a.level}: {_one_line(a.message) or a.event}"
    else:
        text = f"[{subject}] {where}: {len(alerts)} alerts, highest {highest_level(alerts)}"
    return _cut(_one_line(text), SUBJECT_MAX)


def _detail(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def alert_block(a: Alert) -> str:
    lines = [
        f"{_utc(a.time)}  {a.server}  {a.module}.{a.id} {a.event}  [{a.level}]",
        "    " + "\n    ".join(a.message.splitlines() or [""]),
    ]
    lines += [f"    {key}: {_one_line(_detail(v))}" for key, v in a.details.items()]
    return _cut("\n".join(lines), BLOCK_MAX)


def alert_line(a: Alert) -> str:
    return _cut(
        f"{_utc(a.time)}  {a.server}  {a.module}.{a.id} {a.event}  [{a.level}]  "
        + _one_line(a.message),
        LINE_MAX,
    )


def body_of(alerts: list[Alert], where: str, destination: str) -> str:
    counts = ", ".join(
        f"{n} {lv}" for lv in reversed(LEVELS) if (n := sum(a.level == lv for a in alerts))
    )
    if len(alerts) == 1:
        head = f"Haven on {where}: 1 alert ({alerts[0].level})."
    else:
        head = (
            f"Haven on {where}: {len(alerts)} alerts ({counts}), "
            f"from {_utc(min(a.time for a in alerts))} to {_utc(max(a.time for a in alerts))}."
        )
    parts, size, short = [head, ""], 0, 0
    for a in alerts:
        block = alert_block(a)
        if size + len(block) > BODY_MAX:
            block = alert_line(a)  # a huge batch: the rest one line each
            short += 1
        size += len(block) + 2
        parts += [block, ""]
    if short:
        parts.append(f"({short} alerts shortened to one line to keep this mail small.)")
    parts.append(
        f'-- \nSent by Haven\'s alert destination "{destination}". '
        "`haven alerts` on any server shows the whole cluster's alert log."
    )
    return "\n".join(parts) + "\n"


def build_message(
    alerts: list[Alert],
    *,
    sender: Address,
    to: list[Address],
    subject: str,
    server: str,
    cluster: str | None,
    destination: str,
) -> EmailMessage:
    where = f"{cluster}/{server}" if cluster else server
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject_of(alerts, subject, where)
    msg["Date"] = formatdate(usegmt=True)
    # the sender's domain, not socket.getfqdn(): that may wait on DNS inside the loop
    msg["Message-ID"] = make_msgid("haven", domain=sender.domain or "localhost")
    msg["X-Haven-Server"] = server
    if cluster:
        msg["X-Haven-Cluster"] = cluster
    msg["X-Haven-Level"] = highest_level(alerts)
    msg["X-Haven-Alerts"] = str(len(alerts))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    body = body_of(alerts, where, destination)
    plain = body.isascii() and max(len(x) for x in body.splitlines()) <= 998
    msg.set_content(body, cte="7bit" if plain else "quoted-printable")
    return msg


# --- sending -----------------------------------------------------------------------------------


def _permanent(exc: BaseException) -> bool:
    """Whether this server refused the message itself for good (5xx): every recipient, the
    envelope sender, or the data. A refused login, a greeting or a TLS failure is the session's,
    not the message's: that is retried (the operator may fix the server or the password)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPDataError):
        return exc.code >= 500
    # a non-ASCII address and a server without SMTPUTF8
    return isinstance(exc, aiosmtplib.SMTPNotSupported) and "SMTPUTF8" in str(exc)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "every recipient refused: " + "; ".join(
            f"{r.recipient}: {r.code} {_one_line(r.message)}" for r in exc.recipients
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = type(exc).__name__.removeprefix("SMTP")
        return f"{what}: {exc.code} {_one_line(exc.message)}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return _one_line(str(exc)) or type(exc).__name__


class MailSender(AlertSender):
    batch_window = 10.0  # set from `group_window`
    max_batch = MAX_ALERTS

    async def prepare(self) -> None:
        p = self.params
        self.timeout = float(p.get("timeout") or 30.0)
        self.batch_window = float(p["group_window"] if p.get("group_window") is not None else 10)
        self.security = effective_security(p)
        self.subject = str(p.get("subject") or "Haven")
        self.cluster: str | None = self.args.get("cluster")
        self.username: str | None = p.get("username")
        self._password: str | None = p.get("password")  # never logged nor in state
        self.counts["rejected"] = 0  # alerts dropped: their mail was refused for good
        self.counts["rejected_recipients"] = 0
        self.last_server: str | None = None
        self.problem: str | None = None
        try:
            problems = config_problems(p)
            if problems:
                raise MailConfigError("; ".join(f"{key}: {text}" for key, text in problems))
            self.sender = mailbox(p.get("sender") or "haven@localhost")
            self.to = [mailbox(x) for x in p["to"]]
            port = p.get("smtp_port") or (465 if self.security == "tls" else 25)
            names = [p.get("smtp_server") or "localhost", *(p.get("fallback_servers") or ())]
            self.servers = [server_address(x, port) for x in names]
            self.tls_context = self._tls_context() if self.security != "none" else None
        except (MailConfigError, OSError, ssl.SSLError) as exc:
            # a node still starts: the destination says what is wrong in its failing alert
            self.problem = f"cannot send mail: {exc}"
            self.servers = []
            self.log.error("mail destination misconfigured", error=self.problem)
        # each server's whole session is bounded by `timeout`; a margin for the base's own limit
        self.deliver_timeout = self.timeout * max(1, len(self.servers)) + 5.0

    def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.params.get("ca_file")
        if ca_file:
            ca_file = os.path.join(self.args.get("config_dir") or "", ca_file)
        ctx = ssl.create_default_context(cafile=ca_file)
        if self.params.get("verify") is False:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def deliver(self, alerts: list[Alert]) -> None:
        if self.problem:
            raise DeliveryError(self.problem)
        msg = build_message(
            alerts,
            sender=self.sender,
            to=self.to,
            subject=self.subject,
            server=self.me,
            cluster=self.cluster,
            destination=self.destination,
        )
        errors: list[str] = []
        permanent = True
        for host, port in self.servers:
            try:
                refused = await self._send(host, port, msg)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                permanent = permanent and _permanent(exc)
                errors.append(f"{host}:{port}: {_describe(exc, self.timeout)}")
                continue
            self.last_server = f"{host}:{port}"
            if refused:
                self.counts["rejected_recipients"] += len(refused)
                self.log.warning(
                    "mail refused for some recipients", server=self.last_server, refused=refused
                )
            return
        error = "; ".join(errors)
        if permanent:
            self.counts["rejected"] += len(alerts)
            self.log.error(
                "mail refused for good: these alerts are dropped (the alert log keeps them)",
                count=len(alerts),
                error=error,
            )
            raise PermanentDeliveryError(error)
        raise DeliveryError(error)

    async def _send(self, host: str, port: int, msg: EmailMessage) -> dict[str, str]:
        """One SMTP session; the recipients refused (others took the mail) by address."""
        smtp = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
            local_hostname=socket.gethostname(),  # not getfqdn(): no DNS inside the loop
        )
        try:
            async with asyncio.timeout(self.timeout):
                await smtp.connect()
                if self.username and self._password:
                    await smtp.login(self.username, self._password)
                errors, _ = await smtp.send_message(
                    msg,
                    sender=self.sender.addr_spec,
                    recipients=[a.addr_spec for a in self.to],
                )
        except BaseException:
            smtp.close()
            raise
        # the mail is taken: a slow QUIT must not make it look failed (and be sent twice)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(QUIT_TIMEOUT):
                await smtp.quit()
        smtp.close()
        return {addr: f"{r.code} {_one_line(r.message)}" for addr, r in errors.items()}

    def _state(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            **super()._state(body),
            "security": self.security,
            "servers": [f"{h}:{p}" for h, p in self.servers],
            "last_server": self.last_server,
            "recipients": len(getattr(self, "to", ())),
        }
