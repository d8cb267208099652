"""The lease of `disknp` (pure: the slot record, the timing rules, the verdict).
`actors/diskio.py` does the I/O and `disknp.py` runs it.

The area: one 4096-byte slot per server of the cluster, in the cluster's server order (slot i at
`offset + i * 4096`, aligned for O_DIRECT, SPEC §12-8), each written only by its own server: no
server ever overwrites another's data, so there is no lost update and no read-modify-write race.

A slot (fixed-width big-endian fields, then zeros): magic "HVNP" | version | state (idle, claim,
hold) | incarnation (random, new at each start of the actor) | seq (+1 at every write) |
hold_until and boot id (the owner's own clock: only the owner reads them, after a restart) |
digests of the NP resource's and the server's names | HMAC-SHA256 of all that, with a key
derived from the cluster key (so no heartbeat frame's MAC ever fits a slot). A slot that is not
one (garbage), whose MAC fails (another cluster's, corrupted or forged) or that names another
server or NP resource (misplaced) is counted and ignored: it is nobody's claim. That is safe
because a server wins only after reading its own slot back intact — one whose slot reads as
garbage cannot win either. An all-zero slot is empty.

Liveness without comparing clocks (a "delta lease", as in sanlock): a slot is live when it changed
between two reads taken more than a window apart. With D = io_timeout and L = lease:

- R1, the owner: while it claims or holds, every write of its slot starts within L - D of the
  previous one's start (renewals every (L - D) / 2) and completes within D (every I/O has that
  deadline; one that misses it has failed). Measured on its own clock.
- R2, a reader: reads every slot (S0), and later again (S1), S1 submitted more than
  W = L (1 + drift)² + slack after S0's result came back. A server keeping R1 through that time
  starts a write after S0 ended (S0 cannot show it) that completes before S1 began (S1 shows it
  or a later one): its slot changed, it is live. A dead, hung or cut-off server's slot does not
  change: not live, ignored.
- Acquiring (`check`): S0; write "claim" (its result back at c); keep renewing; S1 at the later
  of S0 + W and c + Wc, Wc = (2D + slack)(1 + drift)² + slack. Lose if S1 shows a live server
  holding, or a live server earlier in the server list (the master first) claiming; lose if our
  own slot does not read back intact or R1 broke since our claim began. Else write "hold": won if
  that write is back within 2D + slack of S1's submission.
- Holding: the winner renews "hold" for `hold` seconds (the cluster's fencing wait, longer than a
  contender's check can start after ours and last), then goes back to idle. If R1 breaks while it
  holds, someone may have seen it dead: it stands down.

Why two servers never both win. Say A comes before B in the server list and both won. B won, so
S1_B showed no live claim of A. Had A's claim completed before S1_B was submitted, S1_B would show
it or a later write of A (claim, then hold); and A was live for B: either A's claim began after S0_B
(S0_B cannot show it), or A kept R1 through B's whole window. So A's claim completed after S1_B's
submission, and A's S1 came more than Wc later: at least 2D + slack later in real time, whatever
the two clocks' rates. B's hold write was back within 2D + slack of S1_B (B's clock; drift allowed
for in Wc): A's S1 shows B holding, and B live (the same argument, B keeping R1 since its claim).
So A lost — a contradiction. A contender whose check begins later (up to the detection skew)
sees the winner's live hold, which lasts longer than that. A write that misses its deadline may
still land later; but then its writer has given up (it does not win; if it held, it stands down),
and a stale claim or hold seen by another can only make that one lose: never two winners.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum

from actors.np.leaseclock import DRIFT

SLOT_BYTES = 4096
MAGIC = b"HVNP"
VERSION = 1
MAC_BYTES = 32
SLACK = 0.05  # seconds: the processing between two I/Os, and rounding of the clocks

_RECORD = struct.Struct("!4sBBHQQQ16s16s16s")


class SlotState(IntEnum):
    IDLE = 0  # alive, no claim
    CLAIM = 1  # contending for the lease
    HOLD = 2  # won it; renewed until the hold ends


class SlotError(ValueError):
    """Not a slot we trust; the message is a fixed reason, usable as a counter key."""


@dataclass(frozen=True)
class Slot:
    state: SlotState
    incarnation: int
    seq: int
    hold_until_ms: int  # the owner's own clock (leaseclock), only for the owner after a restart
    boot_id: bytes
    np_digest: bytes
    server_digest: bytes

    @property
    def mark(self) -> tuple[int, int]:
        return (self.incarnation, self.seq)


def slot_key(cluster_key: bytes) -> bytes:
    """The MAC key of slots: the cluster key's, for this use only."""
    return hmac.digest(cluster_key, b"haven disknp slot v1", hashlib.sha256)


def name_digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()[:16]


def encode(key: bytes, slot: Slot) -> bytes:
    record = _RECORD.pack(
        MAGIC,
        VERSION,
        int(slot.state),
        0,
        slot.incarnation,
        slot.seq,
        slot.hold_until_ms,
        slot.boot_id,
        slot.np_digest,
        slot.server_digest,
    )
    sealed = record + hmac.digest(key, record, hashlib.sha256)
    return sealed.ljust(SLOT_BYTES, b"\0")


def decode(key: bytes, raw: bytes) -> Slot | None:
    """The slot in `raw`, None if it is empty (all zeros); SlotError if it is not to be trusted."""
    if len(raw) < _RECORD.size + MAC_BYTES:
        raise SlotError("garbage")
    head = raw[: _RECORD.size]
    if not any(raw[: _RECORD.size + MAC_BYTES]):
        return None
    magic, version, state, _flags, incarnation, seq, hold_until, boot, np_d, server_d = (
        _RECORD.unpack(head)
    )
    if magic != MAGIC:
        raise SlotError("garbage")
    if version != VERSION:
        raise SlotError("unsupported version")
    mac = raw[_RECORD.size : _RECORD.size + MAC_BYTES]
    if not hmac.compare_digest(mac, hmac.digest(key, head, hashlib.sha256)):
        raise SlotError("forged")  # or another cluster's, or corrupted
    try:
        slot_state = SlotState(state)
    except ValueError:
        raise SlotError("malformed") from None
    return Slot(slot_state, incarnation, seq, hold_until, boot, np_d, server_d)


def read_slot(key: bytes, raw: bytes, np_name: str, server: str) -> Slot | None:
    """The slot of `server` for NP resource `np_name`, None if empty; SlotError("misplaced") for
    an authentic slot that belongs elsewhere (another server's, another resource's area)."""
    slot = decode(key, raw)
    if slot is not None and (
        slot.np_digest != name_digest(np_name) or slot.server_digest != name_digest(server)
    ):
        raise SlotError("misplaced")
    return slot


# --- the timing rules ------------------------------------------------------------------------


def renew_period(lease: float, io_timeout: float) -> float:
    """How often the owner writes its slot (half its R1 allowance: room for a late timer)."""
    return (lease - io_timeout) / 2


def max_start_gap(lease: float, io_timeout: float) -> float:
    """R1: the longest time between the starts of two consecutive writes of a claim or a hold."""
    return lease - io_timeout


def window(lease: float) -> float:
    """R2: S1 is submitted more than this after S0 came back."""
    return lease * (1 + DRIFT) ** 2 + SLACK


def claim_wait(io_timeout: float) -> float:
    """S1 is submitted more than this after our claim write came back."""
    return (2 * io_timeout + SLACK) * (1 + DRIFT) ** 2 + SLACK


def hold_deadline(io_timeout: float) -> float:
    """The hold write must be back within this of S1's submission, or we did not win."""
    return 2 * io_timeout + SLACK


def check_time(lease: float, io_timeout: float) -> float:
    """The longest a `check` can take: S0, the claim (each up to D), the wait, S1 and the hold
    write (each up to D)."""
    wait = max(window(lease), io_timeout + claim_wait(io_timeout))
    return io_timeout + wait + 2 * io_timeout + 2 * SLACK


# --- the verdict -----------------------------------------------------------------------------


def live(before: Slot | None, after: Slot | None) -> bool:
    """R2: did the slot change between S0 and S1 (a slot unreadable in S0 and good in S1 counts
    as changed)?"""
    return after is not None and (before is None or before.mark != after.mark)


@dataclass(frozen=True)
class Verdict:
    win: bool
    reason: str


def judge(
    me: int,
    servers: list[str],
    before: list[Slot | None],
    after: list[Slot | None],
    mine: tuple[int, int],
) -> Verdict:
    """Do we (slot `me`) win? `before`/`after` are S0/S1 (None: empty or untrusted), `mine` our
    incarnation and the seq of our claim write."""
    own = after[me]
    if own is None or own.incarnation != mine[0] or own.seq < mine[1]:
        return Verdict(False, "our own slot did not read back as written")
    for i, server in enumerate(servers):
        if i == me or not live(before[i], after[i]):
            continue
        slot = after[i]
        assert slot is not None
        if slot.state is SlotState.HOLD:
            return Verdict(False, f"server {server} holds the lease")
        if slot.state is SlotState.CLAIM and i < me:
            return Verdict(False, f"server {server} (earlier in the server list) claims it too")
    return Verdict(True, "no other live claim")
