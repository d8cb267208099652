"""Heartbeats: one actor per heartbeat resource, each watching every peer on its path.

`base.py` is what every heartbeat does (frames, trackers, stalls, events, requests); `lanhb.py`
(UDP), `comhb.py` (serial line, framed by `serialframe.py`) and `diskhb.py` (shared-disk slots:
`diskslots.py`; their I/O thread is `actors/diskio.py`, shared with disk NP) only move the
bytes. `frame.py` is the one frame of every path; `paths.py` a peer's state; `timing.py` and
`realtime.py` the timing and priority.
"""
