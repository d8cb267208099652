"""The known monitor types (SPEC.md §6, reference §5) and their own parameters.

The settings every monitor has (interval, timeout, retry, start_wait, monitoring, target, servers,
delay_warning, recovery) are read by `config/monitors.py`; here are only the type-specific ones,
and which resource types a monitor's `target` may name. Nothing is implemented yet.
"""

from __future__ import annotations

from config.typespec import TypeSpec, flag, number, of_kind, one_of, path, port, secret, text

_LEVELS = ("select", "update", "create_drop")  # how deep a database check goes


def _db(name: str, description: str, table: str, *extra) -> TypeSpec:
    return TypeSpec(
        name,
        description,
        (
            *extra,
            text("user"),
            secret("password"),
            text("table", table),
            one_of("level", "update", *_LEVELS),
        ),
    )


def _service(name: str, description: str, default_port: int | None, *extra) -> TypeSpec:
    return TypeSpec(
        name, description, (text("host", "127.0.0.1"), port("port", default_port), *extra)
    )


_SPECS = (
    TypeSpec(
        "pidw",
        "the process started by an exec resource is alive",
        (),
        needs_target=True,
        target_types=("exec",),
    ),
    TypeSpec(
        "ipw",
        "external IP addresses answer ping",
        (of_kind("addresses", "ip_list", required=True),),
    ),
    TypeSpec(
        "diskw",
        "a disk answers (read, or SCSI Test Unit Ready)",
        (
            path("device", required=True, per_server=True),
            one_of("method", "read_direct", "read", "read_direct", "tur"),
            number("size", 512, 1, 2**20, help="bytes read per check"),
        ),
    ),
    TypeSpec(
        "raww",
        "a disk through a small raw read (a dedicated partition, never a mounted one)",
        (path("device", required=True, per_server=True), number("size", 512, 1, 2**20)),
    ),
    TypeSpec("mdw", "mirror disk state", (), needs_target=True, target_types=("md",)),
    TypeSpec("mdnw", "mirror-disk connect network", (), needs_target=True, target_types=("md",)),
    TypeSpec(
        "userw",
        "user space is not stalled (watchdog)",
        (
            one_of("method", "keepalive", "keepalive", "softdog", "ipmi"),
            one_of("action", "reset", "reset", "panic"),
            flag("use_heartbeat_timing", True),
        ),
    ),
    TypeSpec("miiw", "NIC link up/down", (text("interface", required=True, per_server=True),)),
    TypeSpec(
        "mtw",
        "multi-target: a combined status of several monitors",
        (
            of_kind("monitors", "monitor_list", required=True),
            number("error_threshold", None, 1, 999, help="default: all of them"),
        ),
    ),
    TypeSpec(
        "vipw",
        "sends the route announcements of a vip",
        (),
        needs_target=True,
        target_types=("vip",),
    ),
    TypeSpec(
        "arpw", "re-sends ARP for a fip/vip", (), needs_target=True, target_types=("fip", "vip")
    ),
    TypeSpec(
        "volumew",
        "an LVM volume (the original's vxvolw)",
        (),
        needs_target=True,
        target_types=("volume",),
    ),
    TypeSpec("lvmdw", "the LVM daemons (the original's vxdw)"),
    TypeSpec(
        "genw",
        "a custom check script: exit 0 = normal",
        (path("script", "genw.sh"), flag("sync", True)),
    ),
    _service(
        "httpw",
        "an HTTP server answers",
        80,
        text("uri", "/"),
        flag("https", False),
        one_of("method", "HEAD", "HEAD", "GET"),
        text("username"),
        secret("password"),
    ),
    _service("smtpw", "an SMTP server answers", 25),
    _service("nfsw", "an NFS server answers", None, path("share", required=True)),
    _service(
        "sambaw",
        "a Samba server answers",
        139,
        text("share", required=True),
        text("username"),
        secret("password"),
    ),
    _db(
        "psqlw",
        "PostgreSQL answers a real query",
        "psqlwatch",
        text("host", "127.0.0.1"),
        port("port", 5432),
        text("database", required=True),
    ),
    _db(
        "mysqlw",
        "MySQL answers a real query",
        "mysqlwatch",
        text("host", "127.0.0.1"),
        port("port", 3306),
        text("database", required=True),
        text("engine", "InnoDB"),
    ),
    _db(
        "oraclew", "Oracle answers a real query", "orawatch", text("connect_string", required=True)
    ),
    _db("db2w", "DB2 answers a real query", "db2watch", text("database", required=True)),
    _db(
        "sybasew",
        "Sybase answers a real query",
        "sybwatch",
        text("database", required=True),
        text("server"),
    ),
    TypeSpec("tuxw", "a Tuxedo application server answers", (path("config_file", required=True),)),
    TypeSpec(
        "wasw",
        "a WebSphere application server answers",
        (text("server_name", required=True), text("node_name")),
    ),
    TypeSpec(
        "wlsw",
        "a WebLogic application server answers",
        (text("url", required=True), text("username"), secret("password")),
    ),
    _service("otxw", "a WebOTX application server answers", 6212),
)

MONITOR_TYPES: dict[str, TypeSpec] = {spec.name: spec for spec in _SPECS}
