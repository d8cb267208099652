"""Small JSON files in the state directory, written atomically (temporary file, fsync, rename):
a crash leaves the old version or the new one, never half of either."""

from __future__ import annotations

import json
import os
from typing import Any


def write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
    write_atomic(path, json.dumps(value, sort_keys=True).encode())


def read_json(path: str) -> Any:
    """The stored value, or None if the file is missing or damaged (the caller starts afresh)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
