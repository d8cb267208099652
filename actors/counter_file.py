"""A number that only ever grows across restarts, kept in a file: heartbeat incarnations (so a
restarted sender is not taken for a replay) and membership epochs.

`next_counter` returns the larger of the stored number + 1 and the wall clock in milliseconds:
the stored number guards against the clock going back, the clock against a lost state directory.
Writes are atomic (temporary file, fsync, rename).
"""

from __future__ import annotations

import time

from actors.state_file import write_atomic


def next_counter(path: str) -> int:
    try:
        with open(path) as f:
            stored = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        stored = 0
    value = max(stored + 1, int(time.time() * 1000))
    store_counter(path, value)
    return value


def store_counter(path: str, value: int) -> None:
    write_atomic(path, f"{value}\n".encode())
