"""The incarnation number of a heartbeat sender: larger at every start, so that receivers can
tell a restarted sender (whose sequence starts again at 1) from a replay of old frames.

It is the larger of the last stored number + 1 and the wall clock in milliseconds: the stored
number guards against the clock going back, the clock against a lost state directory. Written
atomically (temporary file, fsync, rename) before the first frame goes out.
"""

from __future__ import annotations

import os
import time


def next_incarnation(path: str) -> int:
    try:
        with open(path) as f:
            stored = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        stored = 0
    value = max(stored + 1, int(time.time() * 1000))
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{value}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return value
