"""`alert.snmp`: each alert as an SNMP trap (an SNMPv2-Trap-PDU over UDP), SNMPv2c or SNMPv3.

The trap is described by mibs/HAVEN-MIB.txt: its snmpTrapOID is `havenAlertInfo`,
`havenAlertWarning` or `havenAlertError` (by the alert's level), and after `sysUpTime.0` and
`snmpTrapOID.0` (as every v2 trap) it carries `havenAlertServer`, `...Module`, `...EventId`,
`...EventName`, `...Level`, `...Message` (UTF-8, cut at 1024 bytes) and `...Time` (DateAndTime,
UTC), each as instance .0. The subtree is under 1.3.6.1.4.1.32473, IANA's example enterprise
number (Haven has none of its own).

SNMPv3 uses the User-based Security Model (RFC 3414) with this server as the authoritative
engine, as for every trap: the receiver must know our engine ID (`engine_id`, by default
derived from the server name — `haven alerts destinations --json` shows it) to localise the
user's keys (net-snmp's snmptrapd: `createUser -e <engine id> <user> SHA <auth key> AES <priv
key>`). Authentication is HMAC-SHA-96 (`sha`) or HMAC-SHA-2 (RFC 7860: `sha224` ... `sha512`),
privacy AES-128-CFB (RFC 3826, through the `cryptography` package). The security level follows
the keys given: `auth_key` → authNoPriv, `auth_key` and `priv_key` → authPriv, neither →
noAuthNoPriv. Our engine's boots and time follow the wall clock (boots 1, time = seconds since
2020-01-01 UTC): a restarted sender is never behind what a receiver remembers of it, so its
traps are never refused as "not in time window", with nothing to keep on disk (a receiver does
drop authenticated traps while this server's clock is more than 150 s behind a time it sent).

Why our own small encoder rather than a library: a trap is one datagram in one direction, a few
hundred lines of BER and USM, and every part of it is checked against Debian's snmptrapd in the
tests; pysnmp (the maintained 7.x line) would bring pyasn1 and an engine of its own, whose boots
and time start over with the process unless we persisted them — and snmptrapd silently drops
authenticated traps whose boots are the same and time lower than before (checked by hand).
AES comes from `cryptography`, a well-kept library, loaded only when privacy is configured.

UDP gives no answer: a trap sent is counted as sent whether or not anything listens (a dead
receiver costs nothing and blocks nothing); an error the system reports at once (no route, an
unresolvable name) fails the delivery, which is retried.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from actors.alerts.record import Alert
from actors.alerts.sender import AlertSender, DeliveryError

DEFAULT_PORT = 162
KEY_MIN = 8  # RFC 3414 §11.2: a password shorter than 8 characters is refused
TEXT_MAX = 1024  # bytes of havenAlertServer / havenAlertMessage (HavenUtf8String)
NAME_MAX = 255  # bytes of havenAlertModule / havenAlertEventName (DisplayString)
MAX_MESSAGE = 65507  # msgMaxSize we announce: the largest UDP payload
ENGINE_EPOCH = 1577836800  # 2020-01-01T00:00:00Z: our engine's "boot" for snmpEngineTime
ENTERPRISE = 32473  # IANA's example enterprise number (RFC 5612)

# OIDs ---------------------------------------------------------------------------------------------
SYS_UPTIME_0 = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0 = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
HAVEN_MIB = (1, 3, 6, 1, 4, 1, ENTERPRISE)
NOTIFICATIONS = {  # havenNotifications = havenMIB.0
    "info": HAVEN_MIB + (0, 1),
    "warning": HAVEN_MIB + (0, 2),
    "error": HAVEN_MIB + (0, 3),
}
LEVEL_VALUES = {"info": 1, "warning": 2, "error": 3}  # HavenLevel
HAVEN_ALERT = HAVEN_MIB + (1, 1)  # havenObjects.havenAlert
ALERT_SERVER, ALERT_MODULE, ALERT_EVENT_ID, ALERT_EVENT_NAME = 1, 2, 3, 4
ALERT_LEVEL, ALERT_MESSAGE, ALERT_TIME = 5, 6, 7

# BER (X.690) — just what an SNMP message needs ----------------------------------------------------
INTEGER, OCTET_STRING, OBJECT_ID, SEQUENCE = 0x02, 0x04, 0x06, 0x30
UNSIGNED32, TIMETICKS = 0x42, 0x43  # [APPLICATION 2] / [APPLICATION 3] IMPLICIT INTEGER
TRAP_V2 = 0xA7  # SNMPv2-Trap-PDU, [7] IMPLICIT PDU


def ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + ber_length(len(content)) + content


def ber_int(value: int, tag: int = INTEGER) -> bytes:
    """A two's complement integer in its fewest octets (an unsigned type gets a leading 0 octet
    where its top bit is set, as X.690 wants)."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def ber_octets(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def ber_oid(oid: tuple[int, ...]) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] > 39):
        raise ValueError(f"not an object identifier: {oid}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(OBJECT_ID, bytes(out))


def ber_seq(*parts: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(parts))


# the trap -----------------------------------------------------------------------------------------
def cut_utf8(text: str, limit: int) -> bytes:
    """`text` in UTF-8, at most `limit` bytes: a longer one is cut at a character boundary and
    ends with an ellipsis."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data
    ellipsis = "…".encode()
    return data[: limit - len(ellipsis)].decode("utf-8", "ignore").encode() + ellipsis


def date_and_time(when: float) -> bytes:
    """SNMPv2-TC DateAndTime, the 11-octet form in UTC."""
    t = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return (
        t.year.to_bytes(2, "big")
        + bytes([t.month, t.day, t.hour, t.minute, t.second, t.microsecond // 100000])
        + b"+\x00\x00"
    )


def alert_varbinds(alert: Alert, uptime_ticks: int) -> bytes:
    """The trap's variable bindings: sysUpTime.0, snmpTrapOID.0, then the alert's fields."""

    def bind(oid: tuple[int, ...], value: bytes) -> bytes:
        return ber_seq(ber_oid(oid), value)

    def field(column: int, value: bytes) -> bytes:
        return bind(HAVEN_ALERT + (column, 0), value)

    level = alert.level if alert.level in LEVEL_VALUES else "info"
    return ber_seq(
        bind(SYS_UPTIME_0, ber_int(uptime_ticks % 2**32, TIMETICKS)),
        bind(SNMP_TRAP_OID_0, ber_oid(NOTIFICATIONS[level])),
        field(ALERT_SERVER, ber_octets(cut_utf8(alert.server, TEXT_MAX))),
        field(ALERT_MODULE, ber_octets(cut_utf8(alert.module, NAME_MAX))),
        field(ALERT_EVENT_ID, ber_int(max(0, alert.id) % 2**32, UNSIGNED32)),
        field(ALERT_EVENT_NAME, ber_octets(cut_utf8(alert.event, NAME_MAX))),
        field(ALERT_LEVEL, ber_int(LEVEL_VALUES[level])),
        field(ALERT_MESSAGE, ber_octets(cut_utf8(alert.message, TEXT_MAX))),
        field(ALERT_TIME, ber_octets(date_and_time(alert.time))),
    )


def trap_pdu(request_id: int, varbinds: bytes) -> bytes:
    return tlv(TRAP_V2, ber_int(request_id) + ber_int(0) + ber_int(0) + varbinds)


def v2c_message(community: bytes, pdu: bytes) -> bytes:
    return ber_seq(ber_int(1), ber_octets(community), pdu)  # version 1 = SNMPv2c


# USM (RFC 3414, RFC 7860, RFC 3826) ---------------------------------------------------------------
@dataclass(frozen=True)
class AuthProtocol:
    hash: str  # hashlib name
    mac_length: int  # octets of msgAuthenticationParameters


AUTH_PROTOCOLS = {
    "sha": AuthProtocol("sha1", 12),  # usmHMACSHAAuthProtocol (HMAC-SHA-96)
    "sha224": AuthProtocol("sha224", 16),  # usmHMAC128SHA224AuthProtocol
    "sha256": AuthProtocol("sha256", 24),  # usmHMAC192SHA256AuthProtocol
    "sha384": AuthProtocol("sha384", 32),  # usmHMAC256SHA384AuthProtocol
    "sha512": AuthProtocol("sha512", 48),  # usmHMAC384SHA512AuthProtocol
}
PRIV_PROTOCOLS = ("aes", "none")  # usmAesCfb128Protocol
FLAG_AUTH, FLAG_PRIV = 0x01, 0x02  # msgFlags (never reportable: a trap gets no answer)
USM = 3  # msgSecurityModel


def password_to_key(password: bytes, hash_name: str) -> bytes:
    """RFC 3414 A.2: the digest of the password repeated to 1 MiB."""
    stretched = password * (1048576 // len(password) + 1)
    return hashlib.new(hash_name, stretched[:1048576]).digest()


def localize_key(key: bytes, engine_id: bytes, hash_name: str) -> bytes:
    """RFC 3414 A.2: Kul = H(Ku || engineID || Ku)."""
    return hashlib.new(hash_name, key + engine_id + key).digest()


def default_engine_id(server: str) -> bytes:
    """snmpEngineID (RFC 3411) in the administratively assigned text format under our
    enterprise number: 80007ed9 04 <the server name> — readable, the same on every start. A
    name longer than 27 bytes is replaced by its SHA-256 (format 05, octets)."""
    name = server.encode()
    head = (0x80000000 | ENTERPRISE).to_bytes(4, "big")
    if 1 <= len(name) <= 27:
        return head + b"\x04" + name
    return head + b"\x05" + hashlib.sha256(name).digest()[:27]


def parse_engine_id(text: str) -> bytes:
    """An engine ID written in hex (`0x` and `:` separators allowed), 5 to 32 octets."""
    digits = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        raise ValueError("must be hexadecimal, e.g. 0x80007ed9046e6f646531") from None
    if not 5 <= len(value) <= 32:
        raise ValueError(f"must be 5 to 32 octets (this one has {len(value)})")
    return value


@dataclass
class Usm:
    """The sending side of USM for one user, with our engine authoritative."""

    engine_id: bytes
    user: bytes
    auth: AuthProtocol | None
    auth_key: bytes | None  # localised
    priv_key: bytes | None  # localised, AES-128: its first 16 octets

    @classmethod
    def create(
        cls,
        engine_id: bytes,
        user: str,
        auth_protocol: str | None,
        auth_password: str | None,
        priv_password: str | None,
    ) -> Usm:
        auth = AUTH_PROTOCOLS[auth_protocol] if auth_protocol and auth_password else None
        auth_key = priv_key = None
        if auth is not None and auth_password:
            ku = password_to_key(auth_password.encode(), auth.hash)
            auth_key = localize_key(ku, engine_id, auth.hash)
            if priv_password:
                ku = password_to_key(priv_password.encode(), auth.hash)
                priv_key = localize_key(ku, engine_id, auth.hash)[:16]
        return cls(engine_id, user.encode(), auth, auth_key, priv_key)

    @property
    def level(self) -> str:
        if self.priv_key is not None:
            return "authPriv"
        return "authNoPriv" if self.auth is not None else "noAuthNoPriv"

    def message(self, msg_id: int, pdu: bytes, boots: int, engine_time: int, salt: int) -> bytes:
        """A whole SNMPv3 message carrying `pdu`, authenticated and encrypted as configured."""
        scoped = ber_seq(ber_octets(self.engine_id), ber_octets(b""), pdu)
        flags = 0
        priv_params = b""
        if self.priv_key is not None:
            flags |= FLAG_PRIV
            priv_params = salt.to_bytes(8, "big")
            iv = boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big") + priv_params
            data = ber_octets(aes_cfb128(self.priv_key, iv, scoped))
        else:
            data = scoped
        mac_length = 0
        if self.auth is not None:
            flags |= FLAG_AUTH
            mac_length = self.auth.mac_length
        before_mac = (
            ber_octets(self.engine_id)
            + ber_int(boots)
            + ber_int(engine_time)
            + ber_octets(self.user)
            + bytes([OCTET_STRING])
            + ber_length(mac_length)
        )
        after_mac = ber_octets(priv_params)
        security = ber_seq(before_mac + b"\x00" * mac_length + after_mac)
        header = ber_seq(
            ber_int(msg_id), ber_int(MAX_MESSAGE), ber_octets(bytes([flags])), ber_int(USM)
        )
        head = ber_int(3) + header + bytes([OCTET_STRING]) + ber_length(len(security))
        whole = ber_seq(head + security + data)
        if self.auth is None or self.auth_key is None:
            return whole
        # the MAC's place: after the outer header, `head`, the security SEQUENCE's header and
        # what comes before the MAC in it
        outer_header = len(whole) - len(head) - len(security) - len(data)
        security_header = len(security) - len(before_mac) - mac_length - len(after_mac)
        at = outer_header + len(head) + security_header + len(before_mac)
        mac = hmac.new(self.auth_key, whole, self.auth.hash).digest()[:mac_length]
        return whole[:at] + mac + whole[at + mac_length :]


def aes_cfb128(key: bytes, iv: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.CFB(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


# the parameters -----------------------------------------------------------------------------------
def config_problems(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each way these validated parameters cannot work — which keys go with
    which version, the keys' lengths, the engine ID's form: for the configuration check
    (config/typed.py) and, should one slip through, the sender's failing state. Never a secret's
    value in a message."""
    problems: list[tuple[str, str]] = []
    version = params.get("version") or "v2c"
    v3_keys = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key", "engine_id")
    if version == "v2c":
        for key in v3_keys:
            if params.get(key) is not None:
                problems.append((key, 'only for version = "v3" (this destination is v2c)'))
        return problems
    if params.get("community") is not None:
        problems.append(("community", 'only for version = "v2c" (v3 sends as a user)'))
    if not params.get("user"):
        problems.append(("user", 'required key is missing (version = "v3" sends as a user)'))
    auth_key, priv_key = params.get("auth_key"), params.get("priv_key")
    for key, value in (("auth_key", auth_key), ("priv_key", priv_key)):
        if value is not None and len(value) < KEY_MIN:
            problems.append((key, f"too short: a key has at least {KEY_MIN} characters"))
    if params.get("auth_protocol") is not None and auth_key is None:
        problems.append(("auth_protocol", "set without auth_key (leave both out: noAuthNoPriv)"))
    if priv_key is not None and auth_key is None:
        problems.append(("priv_key", "set without auth_key: SNMPv3 has no privacy without it"))
    priv = params.get("priv_protocol")
    if priv == "aes" and priv_key is None:
        problems.append(("priv_protocol", '"aes" without priv_key'))
    if priv == "none" and priv_key is not None:
        problems.append(("priv_key", 'set while priv_protocol = "none"'))
    engine_id = params.get("engine_id")
    if engine_id is not None:
        try:
            parse_engine_id(str(engine_id))
        except ValueError as exc:
            problems.append(("engine_id", str(exc)))
    return problems


class SnmpSender(AlertSender):
    deliver_timeout = 10.0  # a name lookup that hangs

    async def prepare(self) -> None:
        p = self.params
        self.host = str(p["destination"])
        self.port = int(p.get("port") or DEFAULT_PORT)
        self.version = str(p.get("version") or "v2c")
        self.started = time.monotonic()
        self.request_id = secrets.randbelow(2**30)
        self.salt = secrets.randbits(64)
        self.usm: Usm | None = None
        self.community = b""
        problems = config_problems(p)
        self.broken = "; ".join(f"{key}: {problem}" for key, problem in problems) or None
        if self.broken:
            self.log.error(
                "snmp destination misconfigured", destination=self.destination, problems=self.broken
            )
            return
        if self.version == "v2c":
            self.community = str(p.get("community") or "public").encode()
            return
        engine_id = (
            parse_engine_id(str(p["engine_id"]))
            if p.get("engine_id")
            else default_engine_id(self.me)
        )
        self.usm = Usm.create(
            engine_id,
            str(p["user"]),
            str(p.get("auth_protocol") or "sha"),
            p.get("auth_key"),
            p.get("priv_key"),
        )
        if self.usm.priv_key is not None:
            try:
                aes_cfb128(b"\x00" * 16, b"\x00" * 16, b"")
            except ImportError:
                self.broken = "priv_key: AES needs the Python package cryptography (not installed)"
                self.log.error("snmp destination cannot encrypt", destination=self.destination)
                return
        self.log.info(
            "snmp v3 destination",
            destination=self.destination,
            engine_id=engine_id.hex(),
            level=self.usm.level,
        )

    def trap(self, alert: Alert) -> bytes:
        """The whole datagram for one alert."""
        self.request_id = (self.request_id + 1) % 2**31
        uptime = int((time.monotonic() - self.started) * 100)
        pdu = trap_pdu(self.request_id, alert_varbinds(alert, uptime))
        if self.usm is None:
            return v2c_message(self.community, pdu)
        self.salt = (self.salt + 1) % 2**64
        engine_time = max(0, int(time.time()) - ENGINE_EPOCH) % 2**31
        return self.usm.message(self.request_id, pdu, 1, engine_time, self.salt)

    async def deliver(self, alerts: list[Alert]) -> None:
        if self.broken:
            raise DeliveryError(f"misconfigured: {self.broken}")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise DeliveryError(f"cannot resolve {self.host}: {exc.strerror or exc}") from None
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setblocking(False)
            for alert in alerts:
                await loop.sock_sendto(sock, self.trap(alert), address)

    def _state(self, body: dict[str, Any]) -> dict[str, Any]:
        state = super()._state(body)
        state["version"] = self.version
        if self.usm is not None:
            state["engine_id"] = self.usm.engine_id.hex()
            state["security_level"] = self.usm.level
        return state
