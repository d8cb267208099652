"""Storing a configuration file in place (`haven config push`): atomically, never half-written —
a crash leaves either the old file or the new one — and the previous version kept beside it."""

from __future__ import annotations

import contextlib
import os
import tempfile


def store_config(path: str, text: str) -> bool:
    """Write `text` over `path` atomically, keeping the previous file as `<path>.prev`; False
    when the file already says exactly that (nothing written)."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    except (OSError, UnicodeDecodeError):
        mode = 0o600
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".haven-config-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        with contextlib.suppress(FileNotFoundError):
            os.link(path, tmp + ".prev")
            os.replace(tmp + ".prev", path + ".prev")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True
