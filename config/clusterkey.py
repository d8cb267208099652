"""The cluster key: the shared secret that authenticates heartbeats (and, later, the link).

A file holding 32 random bytes as 64 hex digits, the same on every server, mode 0600. Loading
refuses a short, malformed or group/world-readable key with a message that says how to fix it;
the key itself never appears in any message, log or status.
"""

from __future__ import annotations

import os
import secrets
import stat

KEY_BYTES = 32


class ClusterKeyError(Exception):
    pass


def generate_cluster_key(path: str) -> None:
    """Write a new random key to `path` (mode 0600); an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ClusterKeyError(
            f"{path} exists already; a cluster key is never overwritten"
        ) from None
    except OSError as exc:
        raise ClusterKeyError(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_cluster_key(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ClusterKeyError(
            f"cannot read the cluster key {path}: {exc.strerror or exc} "
            "(create one with `haven config keygen FILE` and copy it to every server)"
        ) from None
    with os.fdopen(fd) as f:
        mode = os.fstat(f.fileno()).st_mode
        text = f.read(4 * KEY_BYTES + 16).strip()
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClusterKeyError(
            f"the cluster key {path} is accessible to others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise ClusterKeyError(
            f"the cluster key {path} is not {2 * KEY_BYTES} or more hex digits; "
            "create one with `haven config keygen FILE`"
        )
    return key
