"""The known types of heartbeat, NP resolution, group resource and alert destination.

Names and parameters follow SPEC.md §3-§9 and the original product (reference §2-§8). A type is
usable only once its implementation exists: the issue that implements one sets
`implemented=True` here, in the same change. Monitor types are in `config/catalog_monitors.py`.
"""

from __future__ import annotations

from config.catalog_monitors import MONITOR_TYPES
from config.typespec import (
    TypeSpec,
    TypeTables,
    dur,
    flag,
    listen_port,
    number,
    of_kind,
    one_of,
    path,
    port,
    secret,
    text,
)


def _table(*specs: TypeSpec) -> dict[str, TypeSpec]:
    return {spec.name: spec for spec in specs}


HEARTBEAT_TYPES = _table(
    TypeSpec(
        "lanhb",
        "LAN heartbeat (UDP)",
        (of_kind("network", "network", required=True), listen_port("port", 29002, "udp")),
        implemented=True,
    ),
    TypeSpec(
        "lankhb",
        "robust LAN heartbeat (the original's kernel-mode LAN heartbeat, without a kernel module)",
        (of_kind("network", "network", required=True), listen_port("port", 29006, "udp")),
        implemented=True,
    ),
    TypeSpec(
        "comhb",
        "serial (RS-232C) heartbeat over a cross cable",
        (
            path("device", required=True, per_server=True, help="e.g. /dev/ttyS0"),
            one_of("baud", "19200", "9600", "19200", "38400", "57600", "115200"),
        ),
        implemented=True,
    ),
    TypeSpec(
        "diskhb",
        "disk heartbeat on a small dedicated partition of the shared disk (O_DIRECT)",
        (
            path("device", required=True, per_server=True),
            number(
                "offset",
                0,
                0,
                2**40,
                help="bytes, a multiple of 4096; from there 4096 bytes per server of the cluster",
            ),
        ),
        implemented=True,
    ),
)

NP_TYPES = _table(
    TypeSpec(
        "pingnp",
        "ping NP: a server that cannot reach the targets is the isolated one",
        (
            of_kind("targets", "ip_list", required=True),
            dur("interval", "5s", "100ms", "1h"),
            dur("timeout", "3s", "100ms", "1h"),
            number("retry", 3, 0, 99),
        ),
        implemented=True,
    ),
    TypeSpec(
        "majority",
        "majority: a partition needs more than half of the servers (tie: master)",
        implemented=True,
    ),
    TypeSpec(
        "disknp",
        "disk NP: a lease on a shared disk area (actors/np/disklease.py)",
        (
            path("device", required=True, per_server=True, help="the shared disk or file"),
            number(
                "offset",
                0,
                0,
                2**40,
                help="bytes, a multiple of 4096; from there 4096 bytes per server of the cluster",
            ),
            dur(
                "lease",
                "10s",
                "1s",
                "10m",
                help="a server whose slot did not change for this long is taken for dead; "
                "a check takes a little more than this",
            ),
            dur(
                "io_timeout",
                "2s",
                "10ms",
                "2m",
                help="a disk I/O slower than this has failed (at most a quarter of the lease)",
            ),
        ),
        implemented=True,
    ),
    TypeSpec(
        "witness",
        "witness: a lease from `haven witness serve` on a third host",
        (
            text("url", required=True, help="http://HOST[:PORT], port 29005 by default"),
            dur("timeout", "3s", "100ms", "1m", help="per request; a check makes two"),
            dur("interval", "5s", "100ms", "1h", help="how often the witness is probed"),
        ),
        implemented=True,
    ),
)

_MOUNT = (
    path("mount_point", required=True),
    text("fs", required=True, help="ext4, xfs, ..."),
    text("mount_options", "rw"),
    dur("mount_timeout", "120s", "1s", "9999s"),
    number("mount_retry", 3, 0, 999),
    dur("umount_timeout", "300s", "1s", "9999s"),
    number("umount_retry", 3, 0, 999),
    one_of("umount_failure", "kill", "kill", "none"),
)
_FSCK = (
    text("fsck_options", "-y"),
    dur("fsck_timeout", "7200s", "1s", "99999s"),
    number("fsck_interval", 10, 0, 999, help="fsck every N mounts; 0 = never"),
)

RESOURCE_TYPES = _table(
    TypeSpec(
        "fip",
        "floating IP, announced with gratuitous ARP (IPv4) or neighbour advertisements (IPv6)",
        (
            of_kind("ip", "ip", required=True, per_server=True),
            text("interface", per_server=True, help="default: the NIC in the address's subnet"),
            number("prefix_length", None, 0, 128),
            flag("force", False, help="activate even if the address already answers"),
        ),
        implemented=True,
    ),
    TypeSpec(
        "vip",
        "virtual IP across network segments, announced as a route",
        (
            of_kind("ip", "ip", required=True, per_server=True),
            text("interface", per_server=True),
            of_kind("announce", "str_list", default=("rip",), choices=("rip", "ripng")),
            dur("announce_interval", "30s", "1s", "1h"),
        ),
    ),
    TypeSpec(
        "exec",
        "start and stop the application with scripts",
        (
            path("start", "start.sh", help="start.sh = scripts/<group>/<resource>/start.sh"),
            path("stop", "stop.sh"),
            flag("start_sync", True),
            flag("stop_sync", True),
            dur("start_timeout", "1800s", "1s", "9999s"),
            dur("stop_timeout", "1800s", "1s", "9999s"),
            flag("start_on_others", False, help="also run the start script on standby servers"),
            flag("stop_on_others", False),
            path("log", help="file receiving the scripts' output"),
            number("log_rotate_size", None, 1, 2**40),
        ),
        implemented=True,
    ),
    TypeSpec(
        "disk",
        "shared disk partition: fsck, mount on the owner, read-only elsewhere",
        (path("device", required=True, per_server=True), *_MOUNT, *_FSCK),
        implemented=True,
    ),
    TypeSpec(
        "md",
        "mirror disk: a partition mirrored to the peer over the mirror connect",
        (
            path("data_partition", required=True, per_server=True),
            path("cluster_partition", required=True, per_server=True),
            of_kind("mirror_networks", "network_list", required=True),
            one_of("mode", "sync", "sync", "async"),
            flag("initial_copy", True),
            flag("initial_mkfs", False),
            number("send_queue_size", 2048, 0, 2**31, help="async mode; 0 = unlimited"),
            listen_port("data_port", None, "tcp", help="default 29051 + n"),
            listen_port("driver_port", None, "tcp", help="default 29031 + n"),
            listen_port("keepalive_port", None, "tcp", help="default 29071 + n"),
            *_MOUNT,
            *_FSCK,
        ),
    ),
    TypeSpec(
        "raw",
        "raw device on the shared disk: read-write on the owner, read-only elsewhere",
        (path("device", required=True, per_server=True),),
        implemented=True,
    ),
    TypeSpec(
        "volume",
        "LVM volume group / logical volume (the original's vxdg / vxvol)",
        (text("volume_group", required=True), text("logical_volume")),
        implemented=True,
    ),
    TypeSpec(
        "nas",
        "mount of an NFS share",
        (
            text("server", required=True),
            path("share", required=True),
            path("mount_point", required=True),
            text("fs", "nfs"),
            text("mount_options", "rw"),
            dur("mount_timeout", "120s", "1s", "9999s"),
        ),
        implemented=True,
    ),
    TypeSpec(
        "ocf",
        "an OCF resource agent",
        (
            text("agent", required=True, help="provider:type, e.g. heartbeat:apache"),
            of_kind("parameters", "table", default=None),
        ),
        implemented=True,
    ),
)

ALERT_TYPES = _table(
    TypeSpec(
        "syslog",
        "syslog messages to the local syslog socket or a UDP/TCP syslog server (RFC 5424)",
        (
            one_of("facility", "daemon", "daemon", "user", *(f"local{i}" for i in range(8))),
            text("tag", "haven"),
            text(
                "target",
                "local",
                help="local (/dev/log), unix:/path, udp://host[:port] or tcp://host[:port]; "
                "port 514 by default",
            ),
            one_of(
                "format",
                "auto",
                "auto",
                "rfc5424",
                "rfc3164",
                help="auto: RFC 3164 to a local socket (what journald and rsyslog parse there), "
                "RFC 5424 over the network",
            ),
            dur("timeout", "5s", "100ms", "1m"),
        ),
        implemented=True,
    ),
    TypeSpec(
        "mail",
        "mail to one or more recipients",
        (
            of_kind("to", "str_list", required=True, help='"Name <user@domain>" or user@domain'),
            text("sender", "haven@localhost"),
            text("smtp_server", "localhost", help="host or host:port"),
            of_kind("fallback_servers", "str_list", help="tried in order when smtp_server fails"),
            port("smtp_port", None, help="default 465 with security = tls, else 25"),
            one_of("security", None, "none", "starttls", "tls", help="default from starttls"),
            flag("starttls", False, help='the same as security = "starttls"'),
            path("ca_file", help="CA certificate(s) to verify the server with (PEM)"),
            flag("verify", True, help="verify the server's certificate and name"),
            text("username"),
            secret("password"),
            flag("allow_plain_auth", False, help="let the password cross without TLS"),
            text("subject", "Haven"),
            dur("timeout", "30s", "1s", "10m", help="for each server's whole session"),
            dur("group_window", "10s", "0s", "10m", help="alerts within it go out as one mail"),
        ),
        implemented=True,
    ),
    TypeSpec(
        "snmp",
        "SNMP trap (v2c or v3; described by mibs/HAVEN-MIB.txt)",
        (
            text("destination", required=True, help="the trap receiver's host name or address"),
            port("port", 162),
            one_of("version", "v2c", "v2c", "v3"),
            secret("community", help='v2c; default "public"'),
            text("user", help="v3: the USM user name"),
            one_of(
                "auth_protocol",
                None,
                "sha",
                "sha224",
                "sha256",
                "sha384",
                "sha512",
                help='v3, with auth_key; default "sha" (HMAC-SHA-96)',
            ),
            secret("auth_key", help="v3: the authentication password (8 characters or more)"),
            one_of("priv_protocol", None, "aes", "none", help='v3; default "aes" with priv_key'),
            secret("priv_key", help="v3: the privacy password (8 characters or more)"),
            text("engine_id", help="v3: our engine ID in hex; default 80007ed904 + server name"),
        ),
        implemented=True,
    ),
    TypeSpec(
        "exec",
        "run a command with the alert in its environment",
        (path("command", required=True), dur("timeout", "30s", "1s", "10m")),
        implemented=True,
    ),
)

DEFAULT_TYPES = TypeTables(
    heartbeat=HEARTBEAT_TYPES,
    np=NP_TYPES,
    resource=RESOURCE_TYPES,
    monitor=MONITOR_TYPES,
    alert=ALERT_TYPES,
)
